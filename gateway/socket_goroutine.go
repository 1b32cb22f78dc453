package gateway

import (
	"time"

	"github.com/gorilla/websocket"
)

// serveGoroutine reads ws on the calling goroutine until the connection
// ends (see socket.go).
func serveGoroutine(ws *websocket.Conn, w *Writer, cfg ReadConfig, in *Inbox) {
	activity := func() {
		if cfg.IdleTimeout > 0 {
			_ = ws.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		if cfg.OnActivity != nil {
			cfg.OnActivity()
		}
	}
	// Control frames are answered through the writer: gorilla's default
	// handlers would write to the socket concurrently with it.
	ws.SetPingHandler(func(data string) error {
		activity()
		w.Enqueue(PongFrame([]byte(data)))
		return nil
	})
	ws.SetPongHandler(func(string) error { activity(); return nil })
	ws.SetCloseHandler(EchoClose(w))
	activity()
	err := ReadLoop(ws, w, cfg.Limit, cfg.TooBig, func(data []byte) bool {
		activity()
		if cfg.Stopped != nil && cfg.Stopped() {
			return false
		}
		in.Push(data)
		return true
	})
	in.Wait()
	cfg.OnEnd(err)
}
