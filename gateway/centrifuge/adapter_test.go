package centrifuge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/centrifuge"
	"switchboard/outbox"
)

const apiKey = "test-key"

type env struct {
	t      *testing.T
	url    string
	signer *domain.Signer
	node   *gateway.Node
}

// start serves an adapter on a real HTTP server, with the outbox relayed
// into the node like in `switchboard serve`.
func start(t *testing.T, db *domain.DB, tweak func(*centrifuge.Config, *gateway.Node)) *env {
	t.Helper()
	signer, _ := domain.NewSigner("secret")
	node := gateway.NewNode(nil, nil)
	if err := domain.Migrate(context.Background(), db, gateway.Migrations()); err != nil {
		t.Fatal(err)
	}
	broker := gateway.NewLocalBroker()
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	broker.Subscribe(node.DispatchBatch)
	cfg := centrifuge.Config{Signer: signer, DB: db, APIKey: apiKey}
	if tweak != nil {
		tweak(&cfg, node)
	}
	a, err := centrifuge.New(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, gateway.Pipeline{History: node.History, Broker: broker}, outbox.Config{PollInterval: 50 * time.Millisecond, Mode: outbox.ModePoll}) // counts outbox rows, which logical decoding deletes once delivered
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	e := domain.NewEcho(nil)
	a.Routes(e)
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), time.Second)
		defer c()
		a.Shutdown(sctx)
		srv.Close()
		cancel()
		<-done
	})
	return &env{t: t, url: srv.URL, signer: signer, node: node}
}

func (e *env) token(claims jwt.MapClaims) string {
	tok, err := e.signer.SignMap(claims)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) userToken(sub string, ttl time.Duration) string {
	return e.token(jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix(), "info": map[string]string{"name": "U" + sub}})
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
	id uint32
}

func (e *env) dial() *client {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/connection/websocket", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = ws.Close() })
	return &client{t: e.t, ws: ws}
}

// send writes one command (id assigned) and returns its id.
func (c *client) send(cmd map[string]any) uint32 {
	c.id++
	cmd["id"] = c.id
	if err := c.ws.WriteJSON(cmd); err != nil {
		c.t.Fatal(err)
	}
	return c.id
}

// read returns the next reply, skipping server pings.
func (c *client) read() map[string]any {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				c.t.Fatalf("bad reply %q: %v", line, err)
			}
			if len(m) > 0 {
				return m
			}
		}
	}
}

// closeCode reads until the server closes and returns the close code.
func (c *client) closeCode() int {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("read ended without a close frame: %v", err)
	}
}

func (c *client) connect(token string) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"connect": map[string]any{"token": token, "name": "test"}})
	return c.read()
}

func errCode(r map[string]any) float64 {
	e, _ := r["error"].(map[string]any)
	if e == nil {
		return 0
	}
	return e["code"].(float64)
}

func TestConnectOutcomes(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	t.Run("valid token reports expiry, ping and pong", func(t *testing.T) {
		r := e.dial().connect(e.userToken("42", time.Hour))
		res := r["connect"].(map[string]any)
		if res["client"] == "" || res["expires"] != true || res["ttl"].(float64) < 3590 || res["ping"] != 25.0 || res["pong"] != true {
			t.Fatalf("connect result %v", r)
		}
	})
	t.Run("expired token is error 109", func(t *testing.T) {
		r := e.dial().connect(e.token(jwt.MapClaims{"sub": "42", "exp": time.Now().Add(-time.Minute).Unix()}))
		if errCode(r) != 109 {
			t.Fatalf("got %v, want error 109", r)
		}
	})
	for name, tok := range map[string]string{
		"forged token":       "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl",
		"subscription token": e.token(jwt.MapClaims{"sub": "42", "channel": "voice:calls", "exp": time.Now().Add(time.Hour).Unix()}),
		"token without sub":  e.token(jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}),
		"token of another secret": func() string {
			s, _ := domain.NewSigner("other")
			t, _ := s.SignMap(jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()})
			return t
		}(),
		"garbage in the token field": "not a jwt",
	} {
		t.Run(name+" closes with 3500", func(t *testing.T) {
			c := e.dial()
			c.send(map[string]any{"connect": map[string]any{"token": tok}})
			if code := c.closeCode(); code != 3500 {
				t.Fatalf("close %d, want 3500", code)
			}
		})
	}
	for name, frame := range map[string]string{
		"malformed JSON":          `{"id":1,"connect":`,
		"command before connect":  `{"id":1,"subscribe":{"channel":"voice:calls"}}`,
		"command without id":      `{"subscribe":{"channel":"voice:calls"}}`,
		"empty line in the batch": `{"id":1,"connect":{"token":"x"}}` + "\n\n" + `{"id":2,"ping":{}}`,
	} {
		t.Run(name+" closes with 3501", func(t *testing.T) {
			c := e.dial()
			_ = c.ws.WriteMessage(websocket.TextMessage, []byte(frame))
			if code := c.closeCode(); code != 3501 {
				t.Fatalf("close %d, want 3501", code)
			}
		})
	}
	t.Run("oversized frame closes with 1009", func(t *testing.T) {
		c := e.dial()
		_ = c.ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{"token":"`+strings.Repeat("x", 70<<10)+`"}}`))
		if code := c.closeCode(); code != 1009 {
			t.Fatalf("close %d, want 1009", code)
		}
	})
}

func TestTimersAndLimits(t *testing.T) {
	db := dbtest.SQLite(t, domain.CoreMigrations())
	e := start(t, db, func(c *centrifuge.Config, n *gateway.Node) {
		c.StaleDelay = 100 * time.Millisecond
		c.PingInterval, c.PongTimeout = 300*time.Millisecond, 100*time.Millisecond
		c.ExpiredCloseDelay = 100 * time.Millisecond
		c.MaxSubscriptions = 2
		n.Users = gateway.NewUserConns(2)
	})
	t.Run("no connect: 3502 stale", func(t *testing.T) {
		if code := e.dial().closeCode(); code != 3502 {
			t.Fatalf("close %d, want 3502", code)
		}
	})
	t.Run("no pong: 3012", func(t *testing.T) {
		c := e.dial()
		c.connect(e.userToken("1", time.Hour))
		if code := c.closeCode(); code != 3012 {
			t.Fatalf("close %d, want 3012", code)
		}
	})
	t.Run("pongs keep the connection, expiry without refresh closes with 3005", func(t *testing.T) {
		c := e.dial()
		c.connect(e.userToken("2", 1500*time.Millisecond))
		start := time.Now()
		for {
			_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := c.ws.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				if ce.Code != 3005 || time.Since(start) < 500*time.Millisecond {
					t.Fatalf("close %d after %v, want 3005 after expiry", ce.Code, time.Since(start))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(b) == "{}" {
				_ = c.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
			}
		}
	})
	t.Run("refresh extends, a refresh for another user is 3500", func(t *testing.T) {
		c := e.dial()
		c.connect(e.userToken("3", 1500*time.Millisecond))
		c.send(map[string]any{"refresh": map[string]any{"token": e.userToken("3", time.Hour)}})
		r := c.read()
		if res, _ := r["refresh"].(map[string]any); res == nil || res["expires"] != true || res["ttl"].(float64) < 3590 {
			t.Fatalf("refresh reply %v", r)
		}
		c.send(map[string]any{"refresh": map[string]any{"token": e.userToken("4", time.Hour)}})
		if code := c.closeCode(); code != 3500 {
			t.Fatalf("close %d, want 3500", code)
		}
	})
	t.Run("a refreshed connection outlives its first token", func(t *testing.T) {
		// One timer serves pings and expiry (conn.armLocked): the first
		// token's deadline must not close the connection once refreshed.
		c := e.dial()
		c.connect(e.userToken("6", 1500*time.Millisecond))
		c.send(map[string]any{"refresh": map[string]any{"token": e.userToken("6", time.Hour)}})
		refreshed := false
		deadline := time.Now().Add(3 * time.Second)
		for {
			_ = c.ws.SetReadDeadline(deadline)
			_, b, err := c.ws.ReadMessage()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				t.Fatalf("the connection ended after its refresh: %v", err)
			}
			switch {
			case string(b) == "{}":
				_ = c.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
			case strings.Contains(string(b), `"refresh"`):
				refreshed = true
			}
		}
		if !refreshed {
			t.Fatal("no refresh reply")
		}
	})
	t.Run("subscription limit 106, already subscribed 105, user connection limit 3504", func(t *testing.T) {
		c := e.dial()
		tok := e.userToken("5", time.Hour)
		c.connect(tok)
		for _, ch := range []string{"voice:calls", "voice:agents"} {
			c.send(map[string]any{"subscribe": map[string]any{"channel": ch}})
			if r := c.read(); r["subscribe"] == nil {
				t.Fatalf("subscribe %s: %v", ch, r)
			}
		}
		c.send(map[string]any{"subscribe": map[string]any{"channel": "voice:calls"}})
		if r := c.read(); errCode(r) != 105 {
			t.Fatalf("duplicate subscribe: %v", r)
		}
		c.send(map[string]any{"subscribe": map[string]any{"channel": "tickets:all"}})
		if r := c.read(); errCode(r) != 106 {
			t.Fatalf("over the limit: %v", r)
		}
		c2 := e.dial()
		c2.connect(tok)
		c3 := e.dial()
		c3.send(map[string]any{"connect": map[string]any{"token": tok}})
		if code := c3.closeCode(); code != 3504 {
			t.Fatalf("third connection of the user: close %d, want 3504", code)
		}
	})
}

// The server API writes to the outbox; the publication reaches a
// subscriber after commit, on both stores, numbered by the history.
func TestServerAPIThroughOutbox(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := start(t, db, nil)
		c := e.dial()
		c.connect(e.userToken("42", time.Hour))
		c.send(map[string]any{"subscribe": map[string]any{"channel": "voice:calls"}})
		sub := c.read()["subscribe"].(map[string]any)
		if sub["recoverable"] != true || sub["epoch"] == "" {
			t.Fatalf("subscribe result %v", sub)
		}
		body := `{"channel":"voice:calls","data":{"type":"call.started","data":{"call_id":"call_123"}}}`
		for _, auth := range []func(*http.Request){
			func(r *http.Request) { r.Header.Set("X-API-Key", apiKey) },
			func(r *http.Request) { r.Header.Set("Authorization", "apikey "+apiKey) },
		} {
			req, _ := http.NewRequest("POST", e.url+"/api/publish", strings.NewReader(body))
			auth(req)
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("publish: %v %v", err, res)
			}
			res.Body.Close()
		}
		var rows int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM watermill_events`).Scan(&rows); err != nil || rows != 2 {
			t.Fatalf("outbox rows %d (%v), want 2", rows, err)
		}
		for want := 1.0; want <= 2; want++ {
			push := c.read()["push"].(map[string]any)
			pub := push["pub"].(map[string]any)
			data, _ := json.Marshal(pub["data"])
			if push["channel"] != "voice:calls" || pub["offset"] != want || string(data) != `{"data":{"call_id":"call_123"},"type":"call.started"}` {
				t.Fatalf("push %v", push)
			}
		}
		// Wrong key: 401 in Switchboard's error shape; no row written.
		req, _ := http.NewRequest("POST", e.url+"/api/publish", strings.NewReader(body))
		req.Header.Set("X-API-Key", "nope")
		res, _ := http.DefaultClient.Do(req)
		if res.StatusCode != 401 {
			t.Fatalf("wrong key: %d", res.StatusCode)
		}
		res.Body.Close()
		// Canonical channels are the modules' business.
		req, _ = http.NewRequest("POST", e.url+"/api/publish", strings.NewReader(`{"channel":"notification-channel-42","data":{}}`))
		req.Header.Set("X-API-Key", apiKey)
		res, _ = http.DefaultClient.Do(req)
		var out struct{ Error struct{ Code int } }
		_ = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if out.Error.Code != 103 {
			t.Fatalf("publish to a canonical channel: %+v", out)
		}
	}, domain.CoreMigrations())
}

// Join/leave and presence are safe under concurrent subscribers (run with -race).
func TestConcurrentSubscribers(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := e.dial()
			c.connect(e.userToken(string(rune('a'+i)), time.Hour))
			c.send(map[string]any{"subscribe": map[string]any{"channel": "presence:online"}})
			c.send(map[string]any{"presence_stats": map[string]any{"channel": "presence:online"}})
			c.send(map[string]any{"unsubscribe": map[string]any{"channel": "presence:online"}})
			for got := 0; got < 3; {
				if r := c.read(); r["id"] != nil {
					got++
				}
			}
		}(i)
	}
	wg.Wait()
	if clients, users := e.node.Presence.Count("centrifugo:presence:online"); clients != 0 || users != 0 {
		t.Fatalf("presence after everyone left: %d clients %d users", clients, users)
	}
}
