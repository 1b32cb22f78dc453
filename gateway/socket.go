package gateway

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The read side of every WebSocket connection, shared by the protocol
// adapters. Two implementations sit behind Serve:
//
//   - socket_epoll.go (Linux, plain TCP): no goroutine per connection.
//     A few pollers wait for readiness on epoll and parse the frames
//     themselves (wsread.go); an idle connection costs its structs and no
//     stack or read buffer.
//   - socket_goroutine.go (TLS, other systems, or SWITCHBOARD_WS_READS=
//     goroutine): one goroutine per connection blocked in gorilla's
//     reader.
//
// Both hand messages to an Inbox, answer pings through the Writer, echo
// the client's close (EchoClose), close an oversized message with 1009 and
// drain the rest (Linger), and report the end once.

// ReadConfig is what an adapter asks of a connection's read side.
type ReadConfig struct {
	// Limit is the largest message; a larger one is answered with a 1009
	// close frame carrying TooBig, and the connection ends with
	// ErrMessageTooBig.
	Limit  int
	TooBig string
	// Handle gets every message, in order, on an Inbox goroutine (never on
	// the reading goroutine, which a slow command would stall).
	Handle func(data []byte)
	// Stopped, when set, is asked before each message: true ends reading.
	Stopped func() bool
	// OnActivity, when set, runs on every frame from the client (messages,
	// pings, pongs), on the reading goroutine: it must not block.
	OnActivity func()
	// IdleTimeout, when set, ends a connection that sent no frame for that
	// long, with an error for which IsTimeout is true.
	IdleTimeout time.Duration
	// OnEnd runs once, after the last Handle returned: err is
	// ErrMessageTooBig, the client's *websocket.CloseError, the error that
	// ended reading (EOF, reset, timeout), or nil when Stopped said so.
	OnEnd func(err error)
}

// Read modes (SetReadMode).
const (
	ReadPoll      = "poll"
	ReadGoroutine = "goroutine"
)

var pollReads atomic.Bool

func init() { pollReads.Store(true) }

// SetReadMode chooses how connections accepted from now on are read:
// ReadPoll (the default; connections the poller cannot take, such as TLS
// ones, are still read by a goroutine) or ReadGoroutine.
func SetReadMode(mode string) { pollReads.Store(mode != ReadGoroutine) }

// Serve starts reading ws and returns at once. w carries every frame the
// read side answers with (pongs, close frames).
func Serve(ws *websocket.Conn, w *Writer, cfg ReadConfig) {
	in := NewInbox(cfg.Handle)
	if pollReads.Load() && servePolled(ws, w, cfg, in) {
		return
	}
	go serveGoroutine(ws, w, cfg, in)
}

// Shutdown ends both directions of c without releasing its descriptor:
// the read side then sees end-of-file and ends the connection the usual
// way (OnEnd, the adapter's cleanup, Hangup closes the socket). Closing
// instead would take the descriptor out of the poller silently, and the
// connection would never end.
func Shutdown(c net.Conn) {
	if shutdownFD(c) {
		return
	}
	_ = c.Close()
}

// DropUnanswered drops nc CloseGrace after done (the server's close frame
// written) and returns done. The read side ends the connection sooner when
// the client answers the close; this ends one that does not (a failed
// write has already shut the socket down, through the Writer's OnError).
func DropUnanswered(done <-chan struct{}, nc net.Conn) <-chan struct{} {
	go func() {
		<-done
		time.Sleep(CloseGrace)
		Shutdown(nc)
	}()
	return done
}

// IsTimeout reports whether err ended a read or write at its deadline: a
// write that timed out (a client that stopped reading, not one that went
// away), or a read past IdleTimeout. gorilla's reader hides the runtime's
// error behind its own type, which only keeps Timeout().
func IsTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
