//go:build linux

package load

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// The client poller reads every client's socket by readiness: a few
// goroutines, each waiting in epoll_wait on its own epoll instance, read
// whichever sockets have data. A goroutine blocked in a read per client
// costs the load tool a wake-up, a park and a second read that finds
// nothing, per message; at 10k × 20/s that was ≈ 0.8 cores of a 2-core box
// the server under test shares (BENCHMARKS.md, session 12). The tool
// measures servers, so its own cost is kept as low as the server's.
//
// Registrations are level-triggered: a socket gets one read per round,
// and what is left is reported again on the next.

// clientPoll is a client's state in the poller, touched only by the
// poller goroutine that owns the client (and by finish, under mu).
type clientPoll struct {
	p       *clientPoller
	id      int32
	rc      syscall.RawConn
	proto   Protocol
	pending []byte // the start of an incomplete frame
	msg     []byte // a fragmented message's payload so far
}

type clientPoller struct {
	epfd  int
	ep    syscall.RawConn // epfd in the runtime's netpoller (see run)
	mu    sync.Mutex
	conns map[int32]*Client
	next  int32
	buf   []byte
}

var clientPollers struct {
	once sync.Once
	list []*clientPoller
	next atomic.Uint32
}

var goroutineReader atomic.Bool

// SetReadMode chooses how clients read: "epoll" (the default) or
// "goroutine" (a blocked gorilla reader per client, the tool's old way, kept
// to measure the difference).
func SetReadMode(mode string) error {
	switch mode {
	case "epoll":
		goroutineReader.Store(false)
	case "goroutine":
		goroutineReader.Store(true)
	default:
		return fmt.Errorf("read mode %q: want epoll or goroutine", mode)
	}
	return nil
}

func pickClientPoller() *clientPoller {
	clientPollers.once.Do(func() {
		for range min(runtime.GOMAXPROCS(0), 4) {
			fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			var ep syscall.RawConn
			if err == nil {
				// Non-blocking, so that os.NewFile registers it with the
				// netpoller.
				err = unix.SetNonblock(fd, true)
			}
			if err == nil {
				ep, err = os.NewFile(uintptr(fd), "epoll").SyscallConn()
			}
			if err != nil {
				slog.Warn("epoll unavailable: a reader goroutine per client", "err", err)
				return
			}
			p := &clientPoller{epfd: fd, ep: ep, conns: map[int32]*Client{}, buf: make([]byte, 64<<10)}
			clientPollers.list = append(clientPollers.list, p)
			go p.run()
		}
	})
	if len(clientPollers.list) == 0 {
		return nil
	}
	return clientPollers.list[clientPollers.next.Add(1)%uint32(len(clientPollers.list))]
}

// startReader starts reading c once its handshake is done; fc holds what
// the socket gave that gorilla did not consume.
func (c *Client) startReader(proto Protocol, fc *framedConn) {
	p := (*clientPoller)(nil)
	if !goroutineReader.Load() {
		p = pickClientPoller()
	}
	var rc syscall.RawConn
	if sc, ok := fc.Conn.(syscall.Conn); ok && p != nil {
		rc, _ = sc.SyscallConn()
	}
	if rc == nil {
		go c.read(proto, fc)
		return
	}
	c.poll = clientPoll{p: p, rc: rc, proto: proto}
	rest, ok := c.consume(fc.leftover())
	if !ok {
		return
	}
	c.poll.pending = rest
	p.mu.Lock()
	p.next++
	c.poll.id = p.next
	p.conns[c.poll.id] = c
	var cerr error
	err := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.poll.id}
		cerr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	p.mu.Unlock()
	if err = errors.Join(err, cerr); err != nil {
		c.finish(fmt.Errorf("epoll: %w", err))
	}
}

// polled reports whether the poller reads c.
func (c *Client) polled() bool { return c.poll.p != nil }

// stopPolling takes c out of its poller (part of finish).
func (c *Client) stopPolling() {
	p := c.poll.p
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.conns[c.poll.id] == c {
		delete(p.conns, c.poll.id)
		_ = c.poll.rc.Control(func(fd uintptr) { _ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	}
	p.mu.Unlock()
}

// run waits for readiness without blocking a thread: an epoll instance is
// itself pollable, so the runtime's netpoller parks the goroutine until
// one of its sockets has data, and epoll_wait is only called with a zero
// timeout. A blocking epoll_wait would hand the thread's P off and back on
// every idle moment.
func (p *clientPoller) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var err error
		if rerr := p.ep.Read(func(uintptr) bool {
			n, err = unix.EpollWait(p.epfd, events, 0)
			return n != 0 || err != nil
		}); rerr != nil {
			slog.Error("client poller: wait", "err", rerr)
			return
		}
		if err != nil {
			if !errors.Is(err, unix.EINTR) {
				slog.Error("client poller: epoll_wait", "err", err)
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		for i := range n {
			p.mu.Lock()
			c := p.conns[events[i].Fd]
			p.mu.Unlock()
			if c != nil {
				c.readable(p.buf)
			}
		}
	}
}

// readable reads what c's socket holds (one read) and handles the
// complete frames in it.
func (c *Client) readable(buf []byte) {
	var n int
	var rerr error
	// RawConn.Read holds the descriptor open for the call, so a Close in
	// another goroutine cannot hand its number to a new socket meanwhile.
	// A raw syscall: the socket is non-blocking, and entersyscall and
	// exitsyscall around each read are measurable at 100k reads/s (see
	// gateway/wsframe_unix.go for the server's side of the same).
	err := c.poll.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		n = int(r)
		if e != 0 {
			n, rerr = 0, e
		}
		return true
	})
	switch {
	case err != nil:
		c.finish(err)
		return
	case errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR):
		return
	case rerr != nil:
		c.finish(rerr)
		return
	case n <= 0:
		c.finish(io.EOF)
		return
	}
	data := buf[:n]
	if len(c.poll.pending) > 0 {
		c.poll.pending = append(c.poll.pending, data...)
		data = c.poll.pending
	}
	rest, ok := c.consume(data)
	if !ok {
		return
	}
	// rest may alias pending; copy handles the overlap.
	c.poll.pending = append(c.poll.pending[:0], rest...)
}

// consume handles the complete server frames at the start of b and returns
// the incomplete rest; ok is false when the connection ended.
func (c *Client) consume(b []byte) (rest []byte, ok bool) {
	for {
		h, n, known := frameLen(b)
		if !known || len(b) < n {
			return b, true
		}
		frame := b[:n]
		b = b[n:]
		if frame[1]&0x80 != 0 {
			c.finish(errors.New("server sent a masked frame"))
			return nil, false
		}
		fin, op, payload := frame[0]&0x80 != 0, frame[0]&0x0f, frame[h:]
		switch op {
		case websocket.TextMessage, websocket.BinaryMessage, 0: // 0: continuation
			if !fin || len(c.poll.msg) > 0 {
				c.poll.msg = append(c.poll.msg, payload...)
				if !fin {
					continue
				}
				payload = c.poll.msg
			}
			c.handle(c.poll.proto, payload)
			c.poll.msg = c.poll.msg[:0]
		case websocket.PingMessage:
			_ = c.ws.WriteControl(websocket.PongMessage, payload, time.Now().Add(10*time.Second))
		case websocket.CloseMessage:
			ce := &websocket.CloseError{Code: websocket.CloseNoStatusReceived}
			if len(payload) >= 2 {
				ce = &websocket.CloseError{Code: int(payload[0])<<8 | int(payload[1]), Text: string(payload[2:])}
			}
			echo := websocket.FormatCloseMessage(ce.Code, "")
			if ce.Code == websocket.CloseNoStatusReceived {
				echo = nil
			}
			_ = c.ws.WriteControl(websocket.CloseMessage, echo, time.Now().Add(time.Second))
			c.finish(ce)
			return nil, false
		}
	}
}
