package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs the real serve() in-process and returns its address and a
// stop func that triggers graceful shutdown and returns serve's error.
func startServe(t *testing.T, databaseURL string) (addr string, stop func() error) {
	t.Helper()
	return startServeLogging(t, databaseURL, io.Discard, nil)
}

// startServeLogging is startServe with the server's log written to logs and
// extra environment variables set.
func startServeLogging(t *testing.T, databaseURL string, logs io.Writer, env map[string]string) (addr string, stop func() error) {
	t.Helper()
	addr = freeAddr(t)
	t.Setenv("SWITCHBOARD_ADDR", addr)
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("DATABASE_URL", databaseURL)
	t.Setenv("SWITCHBOARD_JWT_SECRET", testJWTSecret)
	t.Setenv("SWITCHBOARD_APP_KEY", testAppKey)
	t.Setenv("SWITCHBOARD_APP_SECRET", testAppSecret)
	t.Setenv("SWITCHBOARD_LOG_LEVEL", "warn")
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, nil, io.Discard, logs) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var stopped bool
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

func mint(t *testing.T, sub string, projects []string, admin bool) string {
	t.Helper()
	s, _ := domain.NewSigner(testJWTSecret)
	c := domain.Claims{Projects: projects, Admin: admin}
	c.Subject = sub
	tok, err := s.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func post(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

type wsFrame struct {
	Event   string `json:"event"`
	Channel string `json:"channel"`
	Data    any    `json:"data"`
}

func readFrame(t *testing.T, ws *websocket.Conn) wsFrame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f wsFrame
	if err := ws.ReadJSON(&f); err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

func TestServeEndToEnd(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			url := ""
			if store == "postgres" {
				dsn, drop := dbtest.NewSchema(t)
				t.Cleanup(drop)
				url = dsn
			}
			addr, stop := startServe(t, url)
			base := "http://" + addr
			if st, b := post(t, base+"/api/v1/projects", mint(t, "1", nil, true), `{"slug":"demo","name":"Demo"}`); st != 201 {
				t.Fatalf("project: %d %s", st, b)
			}
			jane := mint(t, "42", []string{"demo"}, false)

			ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/app/"+testAppKey+"?protocol=7", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			const ch = "private-dashboard.project.demo.attendees"
			subscribePrivate(t, ws, base, jane, ch)

			req, _ := http.NewRequest("POST", base+"/api/v1/projects/demo/attendees",
				bytes.NewBufferString(`{"first_name":"Jane","last_name":"Smith","email":"jane@example.com","attendee_type_id":1}`))
			req.Header.Set("Authorization", "Bearer "+jane)
			req.Header.Set("X-Request-ID", "e2e-1")
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != 201 {
				t.Fatalf("create attendee: %v %v", err, res)
			}
			res.Body.Close()

			f := readFrame(t, ws)
			var data map[string]any
			_ = json.Unmarshal([]byte(f.Data.(string)), &data)
			tb, _ := data["x-triggered-by"].(map[string]any)
			if f.Event != "AttendeeCreated" || f.Channel != ch || data["email"] != "jane@example.com" ||
				tb["operation_id"] != "v1.project.attendees.store" || tb["request_id"] != "e2e-1" {
				t.Fatalf("event %+v data %v", f, data)
			}

			// Graceful shutdown: the client is told to reconnect (4200).
			if err := stop(); err != nil {
				t.Fatalf("serve returned %v", err)
			}
			for {
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _, err := ws.ReadMessage()
				if err == nil {
					continue
				}
				ce, ok := err.(*websocket.CloseError)
				if !ok || ce.Code != 4200 {
					t.Fatalf("after shutdown: %v, want close 4200", err)
				}
				break
			}
		})
	}
}

func TestSecretRules(t *testing.T) {
	for _, tc := range []struct {
		name, dbURL, secret string
		ok                  bool
	}{
		{"embedded falls back to the dev secret", "", "", true},
		{"postgres needs a secret", "postgres://x/y", "", false},
		{"postgres with a secret", "postgres://x/y", "s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config{DatabaseURL: tc.dbURL, JWTSecret: tc.secret}.secret(nil)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestTokenCommand(t *testing.T) {
	t.Setenv("SWITCHBOARD_JWT_SECRET", "cmd-secret")
	var out, errOut bytes.Buffer
	if err := run([]string{"token", "--sub", "42", "--name", "Jane Smith", "--projects", "demo, expo", "--admin", "--ttl", "1h"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	s, _ := domain.NewSigner("cmd-secret")
	c, err := s.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "42" || c.Name != "Jane Smith" || !c.Admin || len(c.Projects) != 2 || c.Projects[1] != "expo" ||
		time.Until(c.ExpiresAt.Time) > time.Hour || time.Until(c.ExpiresAt.Time) < 59*time.Minute {
		t.Fatalf("claims %+v", c)
	}
	if err := run([]string{"token"}, &out, &errOut); err == nil {
		t.Fatal("token without --sub must fail")
	}
	if err := run([]string{"bogus"}, &out, &errOut); err == nil {
		t.Fatal("unknown command must fail")
	}
}

// The credentials of the servers tests start: production mode (PostgreSQL)
// refuses short or public secrets and the default app key and secret.
const (
	testJWTSecret = "e2e-jwt-secret-of-at-least-32-bytes"
	testAppKey    = "e2e-app-key"
	testAppSecret = "e2e-app-secret-0123456789"
)

// subscribePrivate reads a Pusher socket's handshake, authorizes channel at
// /broadcasting/auth with token and subscribes, failing t on any refusal.
// It returns the socket id.
func subscribePrivate(t *testing.T, ws *websocket.Conn, base, token, channel string) string {
	t.Helper()
	var hs struct {
		SocketID string `json:"socket_id"`
	}
	_ = json.Unmarshal([]byte(readFrame(t, ws).Data.(string)), &hs)
	st, b := post(t, base+"/broadcasting/auth", token, "socket_id="+hs.SocketID+"&channel_name="+channel)
	if st != 200 {
		t.Fatalf("auth: %d %s", st, b)
	}
	var auth struct{ Auth string }
	_ = json.Unmarshal(b, &auth)
	_ = ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": channel, "auth": auth.Auth}})
	if f := readFrame(t, ws); f.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("subscribe: %+v", f)
	}
	return hs.SocketID
}
