package gateway

import (
	"encoding/binary"
	"net"
	"time"
)

// Server-to-client WebSocket frames are unmasked and simple, so the gateway
// builds them itself: a broadcast's frame (header and payload) is built once
// and the same bytes go to every subscriber with one writev per batch.

// WebSocket opcodes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// TextFrame wraps payload in a final text frame.
func TextFrame(payload []byte) []byte { return frame(opText, payload) }

// PingFrame is a control ping with payload (≤ 125 bytes).
func PingFrame(payload []byte) []byte { return frame(opPing, payload) }

// PongFrame is a control pong echoing payload (≤ 125 bytes).
func PongFrame(payload []byte) []byte { return frame(opPong, payload) }

// CloseFrame is a close frame with a status code and reason (≤ 123 bytes).
func CloseFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	copy(p[2:], reason)
	return frame(opClose, p)
}

func frame(op byte, payload []byte) []byte {
	n := len(payload)
	var hdr [10]byte
	hdr[0] = 0x80 | op
	h := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xFFFF:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	out := make([]byte, h+n)
	copy(out, hdr[:h])
	copy(out[h:], payload)
	return out
}

// maxJoinedWrite is the largest batch NetIO's Write copies into one buffer
// rather than handing to writev.
const maxJoinedWrite = 4 << 10

// NetIO returns WriterConfig's Write (one writev per batch under a write
// deadline) and TryWrite (one non-blocking write; nil where c has no file
// descriptor to write to without blocking, e.g. net.Pipe). The Writer
// calls them from one goroutine at a time (its running flag) and nothing
// else writes to c, so they never interleave bytes; TryWrite therefore
// skips c's write lock and deadline (see rawWriter), and deadline here
// needs no lock.
//
// The deadline is moved only when less than 3/4 of timeout is left: every
// batch still gets between 3/4 timeout and timeout, but a busy connection
// does not re-arm the runtime's deadline timer on every write (about 3% of
// server CPU in the fan-out profile, see BENCHMARKS.md). TryWrite never
// waits, so it needs no deadline: what it cannot write goes to Write.
func NetIO(c net.Conn, timeout time.Duration) (write func([][]byte) error, try func([]byte) (int, error)) {
	io := &netIO{c: c, timeout: timeout}
	if io.rawInit() {
		try = io.try
	}
	return io.write, try
}

// netIO is one connection's NetIO: a struct rather than closures so a
// TryWrite allocates nothing (see rawInit), and the state is one object of
// every connection.
type netIO struct {
	c        net.Conn
	timeout  time.Duration
	deadline time.Time
	raw      rawIO // the non-blocking write's state (wsframe_unix.go)
}

// arm moves the write deadline (see NetIO for when).
func (io *netIO) arm() {
	if io.timeout > 0 {
		if now := time.Now(); io.deadline.Sub(now) < io.timeout*3/4 {
			io.deadline = now.Add(io.timeout)
			_ = io.c.SetWriteDeadline(io.deadline)
		}
	}
}

func (io *netIO) write(frames [][]byte) error {
	io.arm()
	c := io.c
	// A small batch goes out as one write of a joined copy: writev
	// makes the descriptor keep its iovec array for good (≈ 40 bytes
	// of every connection that ever had a batch, BENCHMARKS.md
	// "Session 10"), and copying a few KB costs less than the syscall.
	if len(frames) == 1 {
		_, err := c.Write(frames[0])
		return err
	}
	if queuedBytes(frames) <= maxJoinedWrite {
		bp, buf := joinFrames(frames)
		_, err := c.Write(buf)
		putJoined(bp, buf)
		return err
	}
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(c)
	return err
}
