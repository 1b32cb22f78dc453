package gateway_test

// How each protocol's connection ends when the client misbehaves: an
// over-limit frame, a client that stops reading. The client must always
// read the protocol's close code, never an abnormal closure (1006), and a
// slow consumer's cut must be counted and logged once. One table over the
// three front doors: the close paths are the gateway's (ReadMessage,
// Linger, Writer), the codes each protocol's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/actioncable"
	"switchboard/gateway/centrifuge"
	"switchboard/gateway/pusher"
)

const (
	doorSecret = "closing-test-secret"
	member     = "42"
	memberChan = "notification-channel-" + member
	// doorQueue is every door's MaxQueue: small, so a stalled client
	// overflows after a few frames once the (small) socket buffers fill.
	doorQueue = 16
)

// door is one protocol's endpoint on a served node.
type door struct {
	name  string
	proto gateway.Protocol
	// tooBig and slow are the close codes for an over-limit frame and for
	// a client that fell too far behind.
	tooBig, slow int
	// serve starts the adapter on node and returns the endpoint's URL
	// (ws://…) and a function that opens a connection for member,
	// subscribed to memberChan, with everything before the first event
	// read; it also returns the connection id the client was told, if
	// the protocol tells it ("" otherwise).
	serve func(t *testing.T, node *gateway.Node, signer *domain.Signer) (url string, open func(t *testing.T) (*websocket.Conn, string))
}

var doors = []door{
	{name: "pusher", proto: gateway.ProtoPusher, tooBig: 1009, slow: pusher.CodeOverCapacity, serve: servePusher},
	{name: "centrifuge", proto: gateway.ProtoCentrifuge, tooBig: 1009, slow: centrifuge.DisconnectSlow.Code, serve: serveCentrifuge},
	{name: "actioncable", proto: gateway.ProtoActionCable, tooBig: 1009, slow: websocket.CloseNormalClosure, serve: serveActionCable},
}

// An over-limit frame closes with 1009 every time: the server reads and
// discards the rest of the frame and waits for the client's close before
// dropping the socket, so no reset overtakes the close frame.
func TestOversizedFrameClosesWith1009(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	for _, d := range doors {
		t.Run(d.name, func(t *testing.T) {
			node, signer := newDoorNode(t, io.Discard)
			base, _ := d.serve(t, node, signer)
			u, subprotocols := base, []string(nil)
			if d.proto == gateway.ProtoActionCable {
				u += "?token=" + memberToken(t, signer)
				subprotocols = []string{actioncable.Subprotocol}
			}
			for i := range 20 {
				ws := dialDoor(t, u, subprotocols)
				if err := ws.WriteMessage(websocket.TextMessage, big); err != nil {
					t.Fatalf("try %d: writing the 1 MB frame: %v", i, err)
				}
				if code, err := closeCode(ws); err != nil || code != d.tooBig {
					t.Fatalf("try %d: close code %d (%v), want %d", i, code, err, d.tooBig)
				}
				_ = ws.Close()
			}
		})
	}
}

// A client that stops reading is cut with its protocol's code once its
// queue overflows; the cut is counted for its protocol and logged once at
// info level with the connection, the user and the backlog.
func TestSlowConsumerCutCountedAndLogged(t *testing.T) {
	payload, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 16<<10)})
	for _, d := range doors {
		t.Run(d.name, func(t *testing.T) {
			logs := &syncBuffer{}
			node, signer := newDoorNode(t, logs)
			_, open := d.serve(t, node, signer)
			stats := node.Stats()
			before := stats.SlowConsumerCuts(d.proto)
			others := otherCuts(stats, d.proto)

			ws, connID := open(t)
			// The client reads nothing from here on: frames fill both
			// (small) socket buffers, then the writer's queue.
			deadline := time.Now().Add(10 * time.Second)
			for stats.SlowConsumerCuts(d.proto) == before {
				if time.Now().After(deadline) {
					t.Fatal("a client that never reads was not cut")
				}
				node.Publish(&gateway.Message{Channel: memberChan, Event: "big", Data: payload})
			}
			// Now it reads again: what was written, then the close code.
			if code, err := closeCode(ws); err != nil || code != d.slow {
				t.Fatalf("close code %d (%v), want %d", code, err, d.slow)
			}
			if n := stats.SlowConsumerCuts(d.proto) - before; n != 1 {
				t.Fatalf("%d cuts counted for %s, want 1", n, d.proto)
			}
			if got := otherCuts(stats, d.proto); got != others {
				t.Fatalf("other protocols' counters moved: %d, want %d", got, others)
			}

			var cuts []map[string]any
			for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
				var rec map[string]any
				if json.Unmarshal(line, &rec) == nil && rec["msg"] == "slow consumer cut" {
					cuts = append(cuts, rec)
				}
			}
			if len(cuts) != 1 {
				t.Fatalf("%d slow consumer log lines, want 1:\n%s", len(cuts), logs.Bytes())
			}
			rec := cuts[0]
			queued, _ := rec["queued_bytes"].(float64)
			if rec["level"] != "INFO" || rec["proto"] != d.name || rec["user"] != member ||
				rec["cause"] != "queue_full" || queued <= 0 || rec["conn"] == "" ||
				(connID != "" && rec["conn"] != connID) {
				t.Fatalf("log line %v: want INFO, proto %s, conn %q, user %s, cause queue_full, queued_bytes > 0",
					rec, d.name, connID, member)
			}
		})
	}
}

func otherCuts(s *gateway.Stats, p gateway.Protocol) uint64 {
	var n uint64
	for _, q := range gateway.Protocols() {
		if q != p {
			n += s.SlowConsumerCuts(q)
		}
	}
	return n
}

// newDoorNode returns a node logging JSON to w (at debug level, so the
// test sees the level each line was logged at).
func newDoorNode(t *testing.T, w io.Writer) (*gateway.Node, *domain.Signer) {
	t.Helper()
	signer, err := domain.NewSigner(doorSecret)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return gateway.NewNode(nil, log), signer
}

func memberToken(t *testing.T, signer *domain.Signer) string {
	t.Helper()
	c := domain.Claims{Name: "Jane"}
	c.Subject = member
	tok, err := signer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serveHTTP serves h with small socket send buffers, so a stalled client
// backs the writer up after kilobytes instead of megabytes.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// dialDoor connects with a small receive buffer (see serveHTTP).
func dialDoor(t *testing.T, u string, subprotocols []string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		Subprotocols:     subprotocols,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(8 << 10)
			}
			return c, err
		},
	}
	ws, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// closeCode reads until the connection ends and returns the close code
// the server sent; err is set when it ended without a close frame.
func closeCode(ws *websocket.Conn) (int, error) {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, nil
		}
		return 0, err
	}
}

func readJSON(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %q: %v", b, err)
	}
	return m
}

func writeJSON(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	if err := ws.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

func servePusher(t *testing.T, node *gateway.Node, signer *domain.Signer) (string, func(*testing.T) (*websocket.Conn, string)) {
	a, err := pusher.New(node, pusher.Config{
		Apps:   []pusher.App{{ID: "app-id", Key: "app-key", Secret: "app-secret"}},
		Signer: signer, MaxQueue: doorQueue,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := domain.NewEcho(node.Log)
	a.Routes(e)
	base := serveHTTP(t, e)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/app/app-key?protocol=7&client=js&version=8.4.0"
	return wsURL, func(t *testing.T) (*websocket.Conn, string) {
		ws := dialDoor(t, wsURL, nil)
		var est struct {
			SocketID string `json:"socket_id"`
		}
		_ = json.Unmarshal([]byte(readJSON(t, ws)["data"].(string)), &est)
		// Authorize like pusher-js: the endpoint records the bearer as the
		// connection's user.
		const ch = "private-" + memberChan
		form := url.Values{"socket_id": {est.SocketID}, "channel_name": {ch}}
		req, _ := http.NewRequest("POST", base+"/broadcasting/auth", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+memberToken(t, signer))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var auth struct{ Auth string }
		_ = json.NewDecoder(res.Body).Decode(&auth)
		res.Body.Close()
		writeJSON(t, ws, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch, "auth": auth.Auth}})
		if f := readJSON(t, ws); f["event"] != "pusher_internal:subscription_succeeded" {
			t.Fatalf("subscribe answered %v", f)
		}
		return ws, est.SocketID
	}
}

func serveCentrifuge(t *testing.T, node *gateway.Node, signer *domain.Signer) (string, func(*testing.T) (*websocket.Conn, string)) {
	db := dbtest.SQLite(t, domain.CoreMigrations())
	if err := domain.Migrate(context.Background(), db, gateway.Migrations()); err != nil {
		t.Fatal(err)
	}
	a, err := centrifuge.New(node, centrifuge.Config{Signer: signer, DB: db, MaxQueue: doorQueue})
	if err != nil {
		t.Fatal(err)
	}
	e := domain.NewEcho(node.Log)
	a.Routes(e)
	wsURL := "ws" + strings.TrimPrefix(serveHTTP(t, e), "http") + "/connection/websocket"
	return wsURL, func(t *testing.T) (*websocket.Conn, string) {
		ws := dialDoor(t, wsURL, nil)
		tok, err := signer.SignMap(jwt.MapClaims{"sub": member, "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		writeJSON(t, ws, map[string]any{"id": 1, "connect": map[string]any{"token": tok}})
		res, _ := readJSON(t, ws)["connect"].(map[string]any)
		if res == nil {
			t.Fatal("connect refused")
		}
		writeJSON(t, ws, map[string]any{"id": 2, "subscribe": map[string]any{"channel": memberChan}})
		if r := readJSON(t, ws); r["subscribe"] == nil {
			t.Fatalf("subscribe answered %v", r)
		}
		// The subscription buffers publications until just after its reply
		// left, and a flood in that moment is 3010, not a slow consumer.
		// Commands run in order: once a later one is answered, it is live.
		writeJSON(t, ws, map[string]any{"id": 3, "ping": map[string]any{}})
		if r := readJSON(t, ws); r["id"] != 3.0 {
			t.Fatalf("ping answered %v", r)
		}
		client, _ := res["client"].(string)
		return ws, client
	}
}

func serveActionCable(t *testing.T, node *gateway.Node, signer *domain.Signer) (string, func(*testing.T) (*websocket.Conn, string)) {
	a, err := actioncable.New(node, actioncable.Config{Signer: signer, MaxQueue: doorQueue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.Shutdown(ctx) // stops the heartbeat goroutine
	})
	mux := http.NewServeMux()
	mux.Handle("/cable", a.Handler())
	wsURL := "ws" + strings.TrimPrefix(serveHTTP(t, mux), "http") + "/cable"
	return wsURL, func(t *testing.T) (*websocket.Conn, string) {
		ws := dialDoor(t, wsURL+"?token="+memberToken(t, signer), []string{actioncable.Subprotocol})
		if m := readJSON(t, ws); m["type"] != "welcome" {
			t.Fatalf("first frame %v", m)
		}
		const id = `{"channel":"NotificationChannel"}`
		writeJSON(t, ws, map[string]any{"command": "subscribe", "identifier": id})
		for {
			m := readJSON(t, ws)
			if m["type"] == "confirm_subscription" {
				break
			}
			if m["type"] != "ping" {
				t.Fatalf("subscribe answered %v", m)
			}
		}
		// The connection id is internal to ActionCable: the log line's is
		// checked for presence only.
		return ws, ""
	}
}

// syncBuffer is a bytes.Buffer the adapters' goroutines may log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
