package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// chunkConn returns its chunks one per Read, then EOF.
type chunkConn struct {
	net.Conn
	chunks [][]byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func serverFrame(op byte, payload string) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	default:
		b = append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

// TestFramedConnNeverReadsPastABoundary checks that gorilla is handed the
// HTTP response and then one frame at a time, however the socket splits
// them, so the bytes it was not given are exactly what follows the last
// frame it read.
func TestFramedConnNeverReadsPastABoundary(t *testing.T) {
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	f1 := serverFrame(0x1, `{"event":"a"}`)
	f2 := serverFrame(0x1, strings.Repeat("x", 300)) // 16-bit length
	f3 := serverFrame(0x1, `{"event":"c"}`)
	stream := append(append(append([]byte(resp), f1...), f2...), f3...)
	tests := []struct {
		name   string
		splits []int // chunk boundaries in stream
		bufLen int   // the caller's read size
	}{
		{"everything in one read", nil, 4096},
		{"response end split inside \\r\\n\\r\\n", []int{len(resp) - 2}, 4096},
		{"header split after one byte", []int{len(resp) + len(f1) + 1}, 4096},
		{"one byte at a time", func() []int {
			var s []int
			for i := 1; i < len(stream); i++ {
				s = append(s, i)
			}
			return s
		}(), 4096},
		{"small reader buffer", nil, 7},
	}
	wantEnds := []int{len(resp), len(resp) + len(f1), len(resp) + len(f1) + len(f2)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chunks [][]byte
			prev := 0
			for _, s := range append(tt.splits, len(stream)) {
				chunks = append(chunks, append([]byte(nil), stream[prev:s]...))
				prev = s
			}
			fc := &framedConn{Conn: &chunkConn{chunks: chunks}}
			// Read until the end of f2, as gorilla would before the
			// handover, checking that no read crosses a boundary.
			pos := 0
			p := make([]byte, tt.bufLen)
			for pos < wantEnds[2] {
				n, err := fc.Read(p)
				if err != nil {
					t.Fatalf("read at %d: %v", pos, err)
				}
				if !bytes.Equal(p[:n], stream[pos:pos+n]) {
					t.Fatalf("read at %d gave the wrong bytes", pos)
				}
				for _, e := range wantEnds {
					if pos < e && pos+n > e {
						t.Fatalf("a read of %d bytes at %d crossed the boundary at %d", n, pos, e)
					}
				}
				pos += n
			}
			// What gorilla was not given may be only part of f3 so far
			// (it was not needed); with the rest of the socket it is f3.
			unread, _ := io.ReadAll(fc.Conn)
			rest := append(fc.leftover(), unread...)
			if !bytes.Equal(rest, f3) {
				t.Fatalf("leftover plus the unread socket = %q, want f3 %q", rest, f3)
			}
		})
	}
}

// pusherStub is the least of a Pusher server the client needs: the
// handshake, then the frames the test asks for. It checks the reader, not
// the protocol (the conformance suite drives the real pusher-js).
func pusherStub(t *testing.T, after func(ws *websocket.Conn), pongs chan<- string) string {
	up := websocket.Upgrader{WriteBufferSize: 64} // small: long messages go out fragmented
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetPongHandler(func(s string) error { pongs <- "ws:" + s; return nil })
		est, _ := json.Marshal(`{"socket_id":"1.1"}`)
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:connection_established","data":`+string(est)+`}`))
		if _, _, err := ws.ReadMessage(); err != nil { // pusher:subscribe
			return
		}
		// The confirmation and the first event in one write: the event
		// reaches the client in the read that ends its handshake.
		var both []byte
		both = append(both, serverFrame(0x1, `{"event":"pusher_internal:subscription_succeeded","channel":"c"}`)...)
		both = append(both, serverFrame(0x1, `{"event":"e","channel":"c","data":"`+Stamp(0, time.Now())+`"}`)...)
		_, _ = ws.NetConn().Write(both)
		after(ws)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			pongs <- string(msg)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws://" + strings.TrimPrefix(srv.URL, "http://")
}

// eachReader runs fn once with each client reader.
func eachReader(t *testing.T, fn func(t *testing.T, mode string)) {
	for _, mode := range []string{"epoll", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			if err := SetReadMode(mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = SetReadMode("epoll") })
			fn(t, mode)
		})
	}
}

// dialStub connects a Pusher client to the stub at url; the client is
// closed when the test ends, and ctx bounds the test's waits.
func dialStub(t *testing.T, url string, cur *atomic.Pointer[Recorder]) (*Client, context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := NewDialer(0).Dial(ctx, Target{Protocol: Pusher, WSURL: url, Channels: []string{"c"}}, cur)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, ctx
}

// TestClientReadersRecordAndAnswer runs both readers against the stub:
// every stamped event is recorded once (one that came with the handshake's
// last frame, one fragmented) and pings of both kinds are answered.
func TestClientReadersRecordAndAnswer(t *testing.T) {
	eachReader(t, func(t *testing.T, mode string) {
		pongs := make(chan string, 10)
		proceed := make(chan struct{})
		url := pusherStub(t, func(ws *websocket.Conn) {
			<-proceed
			long := strings.Repeat("p", 500) + Stamp(1, time.Now())
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"e","channel":"c","data":"`+long+`"}`))
			_ = ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second))
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:ping","data":{}}`))
		}, pongs)
		rec := NewRecorder(4)
		var cur atomic.Pointer[Recorder]
		cur.Store(rec)
		c, ctx := dialStub(t, url, &cur)
		if got := c.polled(); got != (mode == "epoll") {
			t.Fatalf("polled = %v in mode %s", got, mode)
		}
		close(proceed)
		want := map[string]bool{"ws:hi": true, `{"event":"pusher:pong","data":{}}`: true}
		for len(want) > 0 {
			select {
			case got := <-pongs:
				if !want[got] {
					t.Fatalf("server got %q", got)
				}
				delete(want, got)
			case <-ctx.Done():
				t.Fatalf("answers missing: %v", want)
			}
		}
		for seq := range 2 {
			deadline := time.Now().Add(5 * time.Second)
			for rec.got[seq].Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := rec.got[seq].Load(); n != 1 {
				t.Fatalf("event %d recorded %d times, want once", seq, n)
			}
		}
		if s := rec.Stray.Load(); s != 0 {
			t.Fatalf("%d stray deliveries", s)
		}
		if !c.Alive() {
			t.Fatalf("client died: %v", c.Err())
		}
	})
}

// TestClientEndsWithTheServersClose checks that a close frame from the
// server ends the client with its code, in both readers.
func TestClientEndsWithTheServersClose(t *testing.T) {
	eachReader(t, func(t *testing.T, _ string) {
		url := pusherStub(t, func(ws *websocket.Conn) {
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4200, "bye"), time.Now().Add(time.Second))
		}, make(chan string, 10))
		var cur atomic.Pointer[Recorder]
		c, ctx := dialStub(t, url, &cur)
		select {
		case <-c.done:
		case <-ctx.Done():
			t.Fatal("the client outlived the server's close")
		}
		var ce *websocket.CloseError
		if !errors.As(c.Err(), &ce) || ce.Code != 4200 {
			t.Fatalf("Err = %v, want close 4200", c.Err())
		}
	})
}
