package gateway

import (
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// The close handshake when the client starts it (RFC 6455 §5.5.1 and
// §7.1.2): the endpoint that receives a Close frame answers with one,
// "typically echoing the status code it received", and only then drops the
// TCP connection. Without the answer a browser or the ws package reports an
// abnormal closure (1006) for a close the client itself asked for. The
// three front doors share both halves below.

// EchoClose is the close handler every adapter installs on its socket
// (ws.SetCloseHandler): it queues the answer to the client's Close frame
// on w, behind what is already queued, with the client's code. A Close
// frame without a code (1005, which must never be sent) is answered with
// an empty Close frame. gorilla's default handler would write the answer
// straight to the socket, racing the Writer.
func EchoClose(w *Writer) func(code int, text string) error {
	return func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			w.closeWith(frame(opClose, nil), "", true)
			return nil
		}
		w.CloseEcho(code)
		return nil
	}
}

// Hangup ends a connection whose read loop has returned: it waits, at most
// wait, for w's last frames (a close frame of the server's, or EchoClose's
// answer) to be written, then drops the socket. Closing at once would
// discard the answer still queued, and the client would see 1006.
func Hangup(nc net.Conn, w *Writer, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.CloseWith(nil):
	case <-t.C:
	}
	_ = nc.Close()
}
