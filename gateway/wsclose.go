package gateway

import (
	"errors"
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// Reading client messages under a size limit, and closing so that the
// client reads the close code instead of an abnormal closure (1006).

// ErrMessageTooBig is ReadMessage's answer to a message over its limit.
var ErrMessageTooBig = errors.New("gateway: message exceeds the size limit")

// CloseTooBig is the close code for an over-limit message (RFC 6455
// §7.4.1, 1009 "message too big"), the same in all three protocols.
const CloseTooBig = websocket.CloseMessageTooBig

// ReadMessage reads ws's next data message, refusing one of more than
// limit bytes: it then returns ErrMessageTooBig, having read limit+1 bytes,
// and rest, the message's unread remainder, for Linger.
//
// Adapters use it instead of gorilla's SetReadLimit, whose over-limit path
// does two things that end in 1006 on the client: it writes its own close
// frame straight to the socket, racing the Writer (which may be half-way
// through a frame: the client then reads a torn frame), and it leaves the
// rest of the message unread, so the socket is closed with unread input
// and the kernel answers the still-sending client with a reset.
func ReadMessage(ws *websocket.Conn, limit int) (data []byte, rest io.Reader, err error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return nil, nil, err
	}
	data, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > limit {
		return nil, r, ErrMessageTooBig
	}
	return data, nil, nil
}

// Linger bounds: long enough for a browser on a slow uplink to finish
// sending a message of a few MB (a pasted file, a runaway client) and
// answer the close; short and small enough that a client streaming
// garbage costs a goroutine for a few seconds and no memory (input is
// discarded through a small buffer).
const (
	lingerTimeout = 5 * time.Second
	lingerBytes   = 16 << 20
)

// CloseGrace is how long a connection whose close frame has been written
// waits for the client's close frame before dropping the socket itself
// (the read loop ends sooner when the client answers). Closing earlier
// risks the same reset as unread input: a client that sends anything
// after the socket is gone gets a reset, which can reach it before it has
// read our close frame. One second covers any sane round trip.
const CloseGrace = time.Second

// Linger completes the close handshake of RFC 6455 §7.1.1 after the
// server queued its close frame (sent is closed once it is written, or
// the writer failed): it reads and discards what the client still sends
// (rest, the remainder of an oversized message, first; then whole
// messages) until the client's close frame arrives, the client hangs up,
// lingerBytes were discarded or lingerTimeout passed; then it waits, within
// the same time, for the close frame to be written. The caller closes the
// socket afterwards: the server closes TCP first, as §7.1.1 asks, and
// never with input left unread, which would turn its FIN into a reset
// (RFC 1122 §4.2.2.13) that can overtake or discard the close frame.
//
// Linger must run on the connection's reading goroutine (it is one).
// It replaces the ping and pong handlers: pings need no answer any more,
// and the adapters' handlers would queue pongs on a closed writer or move
// the read deadline.
func Linger(ws *websocket.Conn, rest io.Reader, sent <-chan struct{}) {
	deadline := time.Now().Add(lingerTimeout)
	_ = ws.SetReadDeadline(deadline)
	ws.SetPingHandler(func(string) error { return nil })
	ws.SetPongHandler(func(string) error { return nil })
	budget := int64(lingerBytes)
	if rest != nil {
		n, _ := io.CopyN(io.Discard, rest, budget)
		budget -= n
	}
	for budget > 0 {
		_, r, err := ws.NextReader()
		if err != nil {
			break // the client's close frame (*websocket.CloseError), EOF or the deadline
		}
		n, _ := io.CopyN(io.Discard, r, budget)
		budget -= n
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-sent:
	case <-t.C:
	}
}

// ReadLoop is the read side every protocol adapter shares: it reads
// messages of at most limit bytes until the connection ends and hands each
// to handle, which returns false to stop reading. A larger message is
// answered with a 1009 close frame carrying tooBig (queued on w behind what
// is already queued) while the rest of it is drained (Linger), and ReadLoop
// returns ErrMessageTooBig; otherwise it returns the read error that ended
// the connection (nil when handle stopped it).
//
// Every connection's read side ends here, so this is where w learns how
// the connection ended when no close frame said so (see Writer.End).
func ReadLoop(ws *websocket.Conn, w *Writer, limit int, tooBig string, handle func(data []byte) bool) error {
	for {
		data, rest, err := ReadMessage(ws, limit)
		if errors.Is(err, ErrMessageTooBig) {
			done := w.CloseWith(CloseFrame(CloseTooBig, tooBig))
			Linger(ws, rest, done)
			return err
		}
		if err != nil {
			w.noteReadEnd(err)
			return err
		}
		if !handle(data) {
			w.noteReadEnd(nil)
			return nil
		}
	}
}

// ReadUntilClosed completes the close handshake of a connection the
// server closed before reading it (a refused connect: the adapter queued
// its close frame on w), then drops the socket. It blocks, at most about
// lingerTimeout.
func ReadUntilClosed(ws *websocket.Conn, w *Writer) {
	ws.SetCloseHandler(EchoClose(w))
	Linger(ws, nil, w.CloseWith(nil)) // the channel the adapter's close got
	_ = ws.NetConn().Close()
}
