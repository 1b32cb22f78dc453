package gateway

// The read side (socket.go) in both modes, over real TCP with gorilla's
// client: what the client sees and what the adapter's callbacks get must be
// the same whether a poller or a goroutine reads the connection.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readServer serves WebSockets whose messages are recorded, each
// connection read by Serve with cfg (Handle and OnEnd are filled in).
type readServer struct {
	url     string
	mu      sync.Mutex
	msgs    []string
	ends    chan error
	hold    chan struct{} // when set, Handle waits for it to close
	writers chan *Writer
	ws      chan *websocket.Conn
}

func newReadServer(t *testing.T, mode string, cfg ReadConfig) *readServer {
	t.Helper()
	SetReadMode(mode)
	t.Cleanup(func() { SetReadMode(ReadPoll) })
	rs := &readServer{ends: make(chan error, 1024), writers: make(chan *Writer, 1024), ws: make(chan *websocket.Conn, 1024)}
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 512, WriteBufferPool: &sync.Pool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		write, try := NetIO(ws.NetConn(), 5*time.Second)
		wr := NewWriter(WriterConfig{Write: write, TryWrite: try, MaxQueue: 1024,
			OnError: func(error) { Shutdown(ws.NetConn()) }})
		c := cfg
		c.Handle = func(b []byte) {
			if rs.hold != nil {
				<-rs.hold
			}
			rs.mu.Lock()
			rs.msgs = append(rs.msgs, string(b))
			rs.mu.Unlock()
		}
		c.OnEnd = func(err error) {
			Hangup(ws.NetConn(), wr, time.Second)
			rs.ends <- err
		}
		rs.writers <- wr
		rs.ws <- ws
		Serve(ws, wr, c)
	}))
	t.Cleanup(srv.Close)
	rs.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return rs
}

func (rs *readServer) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(rs.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (rs *readServer) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rs.ends:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("OnEnd was not called")
		return nil
	}
}

func (rs *readServer) got() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.msgs...)
}

// closeOf reads until the server's close frame and returns its code and text.
func closeOf(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			t.Fatalf("read ended without a close frame: %v", err)
		}
	}
}

// rawFrame is a client frame built by hand, for what gorilla's client
// would refuse to send.
func rawFrame(b0 byte, masked bool, payload []byte) []byte {
	f := []byte{b0, byte(len(payload))}
	if masked {
		f[1] |= 0x80
		key := []byte{1, 2, 3, 4}
		f = append(f, key...)
		p := append([]byte(nil), payload...)
		unmask(key, p)
		return append(f, p...)
	}
	return append(f, payload...)
}

var readModes = []string{ReadPoll, ReadGoroutine}

func TestServeMessagesInOrder(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			rs := newReadServer(t, mode, ReadConfig{Limit: 1 << 20, TooBig: "too big"})
			c := rs.dial(t)
			var want []string
			for i := range 200 {
				m := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i*37))
				want = append(want, m)
				if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			// A fragmented message with a ping between its fragments, and
			// one large enough to arrive over several reads.
			nc := c.NetConn()
			frag := append(rawFrame(0x01, true, []byte("frag-")), rawFrame(0x89, true, []byte("p1"))...)
			frag = append(frag, rawFrame(0x80, true, []byte("ment"))...)
			if _, err := nc.Write(frag); err != nil {
				t.Fatal(err)
			}
			want = append(want, "frag-ment")
			big := strings.Repeat("0123456789", 30000)
			if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
				t.Fatal(err)
			}
			want = append(want, big)
			pong := make(chan string, 1)
			c.SetPongHandler(func(s string) error { pong <- s; return nil })
			go func() { _, _, _ = c.ReadMessage() }()
			select {
			case p := <-pong:
				if p != "p1" {
					t.Fatalf("pong %q, want p1", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no pong")
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(rs.got()) < len(want) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			got := rs.got()
			if len(got) != len(want) {
				t.Fatalf("got %d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("message %d differs (len %d vs %d)", i, len(got[i]), len(want[i]))
				}
			}
		})
	}
}

func TestServeEnds(t *testing.T) {
	cases := []struct {
		name string
		cfg  ReadConfig
		// act makes the connection end; code is the close code the client
		// must read (0: none expected), check judges OnEnd's error.
		act   func(t *testing.T, rs *readServer, c *websocket.Conn)
		code  int
		text  string
		check func(error) bool
	}{
		{"client close echoed", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
			}, 4001, "", func(err error) bool {
				var ce *websocket.CloseError
				return errors.As(err, &ce) && ce.Code == 4001 && ce.Text == "bye"
			}},
		{"too big", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				_ = c.WriteMessage(websocket.TextMessage, make([]byte, 5000))
			}, websocket.CloseMessageTooBig, "too big", func(err error) bool { return errors.Is(err, ErrMessageTooBig) }},
		{"too big in fragments", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				w, _ := c.NextWriter(websocket.TextMessage)
				for range 5 {
					_, _ = w.Write(make([]byte, 900))
				}
				_ = w.Close()
			}, websocket.CloseMessageTooBig, "too big", func(err error) bool { return errors.Is(err, ErrMessageTooBig) }},
		{"unmasked frame", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				_, _ = c.NetConn().Write(rawFrame(0x81, false, []byte("hi")))
			}, websocket.CloseProtocolError, "", func(err error) bool { return err != nil }},
		{"reserved bit", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				_, _ = c.NetConn().Write(rawFrame(0xC1, true, []byte("hi")))
			}, websocket.CloseProtocolError, "", func(err error) bool { return err != nil }},
		{"bad close code", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				p := make([]byte, 2)
				binary.BigEndian.PutUint16(p, 1005)
				_, _ = c.NetConn().Write(rawFrame(0x88, true, p))
			}, websocket.CloseProtocolError, "", func(err error) bool { return err != nil }},
		{"client vanishes", ReadConfig{},
			func(t *testing.T, _ *readServer, c *websocket.Conn) { _ = c.NetConn().Close() },
			0, "", func(err error) bool { return err != nil }},
		{"server shutdown", ReadConfig{},
			func(t *testing.T, rs *readServer, _ *websocket.Conn) {
				Shutdown((<-rs.ws).NetConn())
			}, 0, "", func(err error) bool { return err != nil }},
		{"idle timeout", ReadConfig{IdleTimeout: 300 * time.Millisecond},
			func(t *testing.T, _ *readServer, _ *websocket.Conn) {}, 0, "", IsTimeout},
		{"stopped", ReadConfig{Stopped: func() bool { return true }},
			func(t *testing.T, _ *readServer, c *websocket.Conn) {
				_ = c.WriteMessage(websocket.TextMessage, []byte("x"))
			}, 0, "", func(err error) bool { return err == nil }},
	}
	for _, mode := range readModes {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				cfg := tc.cfg
				cfg.Limit, cfg.TooBig = 4096, "too big"
				rs := newReadServer(t, mode, cfg)
				c := rs.dial(t)
				tc.act(t, rs, c)
				if tc.code != 0 {
					code, text := closeOf(t, c)
					if code != tc.code || (tc.text != "" && text != tc.text) {
						t.Fatalf("client read close %d %q, want %d %q", code, text, tc.code, tc.text)
					}
				}
				if err := rs.end(t); !tc.check(err) {
					t.Fatalf("OnEnd got %v", err)
				}
			})
		}
	}
}

// A full Inbox pauses reading instead of blocking the poller: the other
// connections on it go on, and nothing is lost or reordered.
func TestServeBackPressure(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			rs := newReadServer(t, mode, ReadConfig{Limit: 4096})
			rs.hold = make(chan struct{})
			slow := rs.dial(t)
			const n = 300
			go func() {
				for i := range n {
					_ = slow.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint(i)))
				}
			}()
			time.Sleep(200 * time.Millisecond)
			// Another connection still gets its pings answered meanwhile.
			other := rs.dial(t)
			pong := make(chan struct{}, 1)
			other.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
			go func() { _, _, _ = other.ReadMessage() }()
			_ = other.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
			select {
			case <-pong:
			case <-time.After(5 * time.Second):
				t.Fatal("a paused connection stalled the others")
			}
			close(rs.hold)
			deadline := time.Now().Add(10 * time.Second)
			for len(rs.got()) < n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			got := rs.got()
			if len(got) != n {
				t.Fatalf("handled %d of %d", len(got), n)
			}
			for i, m := range got {
				if m != fmt.Sprint(i) {
					t.Fatalf("message %d is %q", i, m)
				}
			}
		})
	}
}

// The point of the poller: an idle connection holds no goroutine.
func TestPollHoldsNoGoroutine(t *testing.T) {
	rs := newReadServer(t, ReadPoll, ReadConfig{Limit: 4096})
	c0 := rs.dial(t)
	_ = c0
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 200
	for range n {
		rs.dial(t)
	}
	time.Sleep(300 * time.Millisecond)
	// The client side holds none either (gorilla's client reads on demand).
	if grown := runtime.NumGoroutine() - before; grown > n/10 {
		t.Fatalf("%d goroutines for %d idle polled connections", grown, n)
	}
	SetReadMode(ReadGoroutine)
	before = runtime.NumGoroutine()
	for range 20 {
		rs.dial(t)
	}
	time.Sleep(300 * time.Millisecond)
	if grown := runtime.NumGoroutine() - before; grown < 20 {
		t.Fatalf("goroutine mode: %d goroutines for 20 connections, want one each", grown)
	}
}
