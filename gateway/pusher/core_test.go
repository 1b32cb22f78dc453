package pusher_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/pusher"
)

type fixture struct {
	srv    *httptest.Server
	node   *gateway.Node
	signer *domain.Signer
	app    *pusher.App
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	signer, _ := domain.NewSigner("s")
	node := gateway.NewNode(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, err := pusher.New(node, pusher.Config{Apps: []pusher.App{{ID: "1", Key: "k", Secret: "sec"}}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.Routes(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, node: node, signer: signer, app: a.DefaultApp()}
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// dataObject decodes data that is either an object or a JSON string of one.
func (f frame) dataObject(t *testing.T) map[string]any {
	t.Helper()
	raw := f.Data
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("data %s: %v", f.Data, err)
	}
	return m
}

func (fx *fixture) dial(t *testing.T, key string) *client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(fx.srv.URL, "http") + "/app/" + key + "?protocol=7&client=js&version=8.4.0"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	var f frame
	if err := c.ws.ReadJSON(&f); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *client) established() string {
	c.t.Helper()
	f := c.read()
	if f.Event != "pusher:connection_established" {
		c.t.Fatalf("first frame %+v", f)
	}
	var s string
	if err := json.Unmarshal(f.Data, &s); err != nil {
		c.t.Fatalf("connection_established data must be a JSON string: %s", f.Data)
	}
	d := f.dataObject(c.t)
	id, _ := d["socket_id"].(string)
	if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(id) || d["activity_timeout"].(float64) < 1 {
		c.t.Fatalf("handshake data %v", d)
	}
	return id
}

func TestHandshakePingAndErrors(t *testing.T) {
	fx := newFixture(t)
	c := fx.dial(t, "k")
	c.established()
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	if f := c.read(); f.Event != "pusher:pong" {
		t.Fatalf("ping answered with %+v", f)
	}
	// Garbage gets an error frame and the connection stays usable.
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if f := c.read(); f.Event != "pusher:error" {
		t.Fatalf("garbage answered with %+v", f)
	}
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	if f := c.read(); f.Event != "pusher:pong" {
		t.Fatalf("after garbage: %+v", f)
	}
}

func TestUnknownAppKey(t *testing.T) {
	fx := newFixture(t)
	c := fx.dial(t, "nope")
	f := c.read()
	if f.Event != "pusher:error" || f.dataObject(t)["code"].(float64) != 4001 {
		t.Fatalf("unknown key answered %+v", f)
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err := c.ws.ReadMessage()
	var ce *websocket.CloseError
	if !asClose(err, &ce) || ce.Code != 4001 {
		t.Fatalf("want close 4001, got %v", err)
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

func TestSubscribeAndReceive(t *testing.T) {
	fx := newFixture(t)
	c := fx.dial(t, "k")
	sid := c.established()
	const priv = "private-dashboard.project.demo.attendees"
	for _, tc := range []struct {
		name    string
		channel string
		auth    string
		event   string
		status  float64
	}{
		{"public app channel", "news", "", "pusher_internal:subscription_succeeded", 0},
		{"private with valid auth", priv, fx.app.ChannelAuth(sid, priv, ""), "pusher_internal:subscription_succeeded", 0},
		{"private without auth", "private-other", "", "pusher:subscription_error", 401},
		{"private with forged auth", "private-x", "k:" + strings.Repeat("0", 64), "pusher:subscription_error", 401},
		{"auth for another socket", "private-y", fx.app.ChannelAuth("1.1", "private-y", ""), "pusher:subscription_error", 401},
		{"canonical channel as public", "dashboard.project.demo.attendees", "", "pusher:subscription_error", 403},
		{"illegal characters", "bad channel!", "", "pusher:subscription_error", 4009},
		{"name too long", strings.Repeat("a", 201), "", "pusher:subscription_error", 4009},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": tc.channel, "auth": tc.auth}})
			f := c.read()
			if f.Event != tc.event || f.Channel != tc.channel {
				t.Fatalf("got %+v, want %s on %s", f, tc.event, tc.channel)
			}
			if tc.status != 0 && f.dataObject(t)["status"].(float64) != tc.status {
				t.Fatalf("status %v, want %v", f.dataObject(t)["status"], tc.status)
			}
		})
	}
	// A domain event on the canonical channel arrives on the private name,
	// data as a JSON string.
	fx.node.Dispatch(domain.Envelope{ID: "e1", Name: "AttendeeCreated", Scope: domain.Scope{Project: "demo", Family: "attendees"},
		Data: json.RawMessage(`{"attendee_id":1}`)})
	f := c.read()
	if f.Event != "AttendeeCreated" || f.Channel != priv || string(f.Data) != `"{\"attendee_id\":1}"` {
		t.Fatalf("event frame %+v (data %s)", f, f.Data)
	}
	// After unsubscribing nothing more arrives.
	c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": priv}})
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	if f := c.read(); f.Event != "pusher:pong" {
		t.Fatalf("%+v", f)
	}
	fx.node.Dispatch(domain.Envelope{ID: "e2", Name: "AttendeeCreated", Scope: domain.Scope{Project: "demo", Family: "attendees"},
		Data: json.RawMessage(`{"attendee_id":2}`)})
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	if f := c.read(); f.Event != "pusher:pong" {
		t.Fatalf("event delivered after unsubscribe: %+v", f)
	}
}

func TestBroadcastingAuth(t *testing.T) {
	fx := newFixture(t)
	tok := func(projects ...string) string {
		c := domain.Claims{Name: "Jane", Projects: projects}
		c.Subject = "42"
		s, _ := fx.signer.Mint(c, time.Hour)
		return s
	}
	for _, tc := range []struct {
		name, ctype, body, token string
		status                   int
	}{
		{"form, allowed", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=private-dashboard.project.demo.attendees", tok("demo"), 200},
		{"json, allowed", "application/json", `{"socket_id":"1.2","channel_name":"private-dashboard.project.demo.attendees"}`, tok("demo"), 200},
		{"wildcard", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=private-dashboard.project.demo.access", tok("*"), 200},
		{"other project", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=private-dashboard.project.demo.attendees", tok("expo"), 403},
		{"another member's channel", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=private-notification-channel-43", tok("demo"), 403},
		{"own member channel", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=private-notification-channel-42", tok(), 200},
		{"no bearer", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=private-dashboard.project.demo.attendees", "", 401},
		{"bad socket id", "application/x-www-form-urlencoded", "socket_id=abc&channel_name=private-dashboard.project.demo.attendees", tok("demo"), 422},
		{"public channel", "application/x-www-form-urlencoded", "socket_id=1.2&channel_name=news", tok("demo"), 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", fx.srv.URL+"/broadcasting/auth", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d %v, want %d", res.StatusCode, body, tc.status)
			}
			if tc.status == 200 {
				vals, _ := url.ParseQuery(tc.body)
				ch := vals.Get("channel_name")
				if ch == "" {
					ch = "private-dashboard.project.demo.attendees"
				}
				if body["auth"] != fx.app.ChannelAuth("1.2", ch, "") {
					t.Fatalf("auth %v is not the HMAC of 1.2:%s", body["auth"], ch)
				}
			} else if e, _ := body["error"].(map[string]any); e["code"] == nil || e["message"] == nil {
				t.Fatalf("error body %v", body)
			}
		})
	}
}

func TestSignatureVector(t *testing.T) {
	// Official worked example (pusher.com auth-signatures).
	app := &pusher.App{Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
	want := "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
	if got := app.ChannelAuth("1234.1234", "private-foobar", ""); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
