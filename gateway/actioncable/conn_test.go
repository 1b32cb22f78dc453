package actioncable_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/actioncable"
)

const secret = "actioncable-test-secret"

type server struct {
	t      *testing.T
	node   *gateway.Node
	a      *actioncable.Adapter
	url    string
	signer *domain.Signer
}

func newServer(t *testing.T, mod func(*actioncable.Config)) *server {
	t.Helper()
	signer, err := domain.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	node := gateway.NewNode(&gateway.Authorizer{Membership: rooms{}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	reg, err := actioncable.NewRegistry(append(actioncable.BuiltinClasses(),
		actioncable.Class{Name: "TypingRoomChannel", Stream: "chat-room-{room}-channel", Actions: []string{"typing"}})...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := actioncable.Config{Signer: signer, Registry: reg, Rooms: rooms{},
		PingInterval: 100 * time.Millisecond, IdleTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	a, err := actioncable.New(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/cable", a.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		hs.Close()
	})
	return &server{t: t, node: node, a: a, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/cable", signer: signer}
}

func (s *server) token(sub string, projects ...string) string {
	c := domain.Claims{Projects: projects}
	c.Subject = sub
	tok, err := s.signer.Mint(c, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

type client struct {
	t    *testing.T
	ws   *websocket.Conn
	msgs chan frame
}

type frame struct {
	raw string
	err error
}

// dial connects like @rails/actioncable: offering the two subprotocols. The
// client does not read until read() is called.
func (s *server) dial(query string, h http.Header) (*client, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-json", "actioncable-unsupported"}, HandshakeTimeout: 2 * time.Second}
	ws, resp, err := d.Dial(s.url+query, h)
	if err != nil {
		return nil, resp, err
	}
	s.t.Cleanup(func() { _ = ws.Close() })
	return &client{t: s.t, ws: ws}, resp, nil
}

// read starts the client's reader. gorilla connections cannot be read again
// after a read deadline passes, so one goroutine reads (answering WebSocket
// pings as browsers do) and tests wait on its channel.
func (c *client) read() *client {
	c.msgs = make(chan frame, 256)
	go func() {
		for {
			_, b, err := c.ws.ReadMessage()
			if err != nil {
				c.msgs <- frame{err: err}
				close(c.msgs)
				return
			}
			c.msgs <- frame{raw: string(b)}
		}
	}()
	return c
}

func (s *server) connect(sub string) *client {
	s.t.Helper()
	c, _, err := s.dial("?token="+s.token(sub, "demo"), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	c.read().expect(`{"type":"welcome"}`)
	return c
}

var errTimeout = errors.New("timeout")

// next returns the next message that is not a ping.
func (c *client) next(timeout time.Duration) (map[string]any, string, error) {
	if c.msgs == nil {
		c.read()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case f, ok := <-c.msgs:
			if !ok {
				return nil, "", io.EOF
			}
			if f.err != nil {
				return nil, "", f.err
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(f.raw), &m); err != nil {
				c.t.Fatalf("server sent non-JSON %q", f.raw)
			}
			if m["type"] == "ping" {
				continue
			}
			return m, f.raw, nil
		case <-t.C:
			return nil, "", errTimeout
		}
	}
}

func (c *client) expect(raw string) {
	c.t.Helper()
	_, got, err := c.next(2 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", raw, err)
	}
	if got != raw {
		c.t.Fatalf("got  %s\nwant %s", got, raw)
	}
}

func (c *client) silent(d time.Duration) {
	c.t.Helper()
	if _, got, err := c.next(d); err == nil {
		c.t.Fatalf("unexpected message %s", got)
	}
}

func (c *client) send(cmd, identifier string, data any) {
	c.t.Helper()
	m := map[string]any{"command": cmd, "identifier": identifier}
	if data != nil {
		b, _ := json.Marshal(data)
		m["data"] = string(b)
	}
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func confirm(id string) string {
	return `{"identifier":` + quote(id) + `,"type":"confirm_subscription"}`
}
func reject(id string) string { return `{"identifier":` + quote(id) + `,"type":"reject_subscription"}` }

func TestHandshake(t *testing.T) {
	s := newServer(t, nil)
	c, resp, err := s.dial("?token="+s.token("42"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != actioncable.Subprotocol {
		t.Fatalf("selected subprotocol %q", got)
	}
	c.read().expect(`{"type":"welcome"}`)
	// Heartbeats: {"type":"ping","message":<unix seconds>}, every interval.
	var pings int
	start := time.Now()
	for pings < 3 {
		var f frame
		select {
		case f = <-c.msgs:
		case <-time.After(time.Second):
			t.Fatal("no ping within a second")
		}
		if f.err != nil {
			t.Fatal(f.err)
		}
		var m struct {
			Type    string `json:"type"`
			Message int64  `json:"message"`
		}
		if err := json.Unmarshal([]byte(f.raw), &m); err != nil || m.Type != "ping" {
			t.Fatalf("expected a ping, got %s", f.raw)
		}
		if d := time.Now().Unix() - m.Message; d < -1 || d > 1 {
			t.Fatalf("ping time %d is not now", m.Message)
		}
		pings++
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("3 pings took %v at a 100ms interval", el)
	}
	if s.a.ConnCount() != 1 || s.node.Users.Count("42") != 1 {
		t.Fatalf("conns %d, user conns %d", s.a.ConnCount(), s.node.Users.Count("42"))
	}
}

func TestSubprotocolRequired(t *testing.T) {
	s := newServer(t, nil)
	_, resp, err := (&websocket.Dialer{}).Dial(s.url+"?token="+s.token("42"), nil)
	if err == nil {
		t.Fatal("connected without the actioncable subprotocol")
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("response %v", resp)
	}
}

func TestIdentification(t *testing.T) {
	s := newServer(t, nil)
	self := "http://" + strings.TrimSuffix(strings.TrimPrefix(s.url, "ws://"), "/cable")
	past := jwtSub("42")
	past.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	expired, _ := s.signer.SignMap(jwt.MapClaims{"sub": "42", "exp": past.ExpiresAt.Unix()})
	other, _ := domain.NewSigner("another-secret")
	forged, _ := other.Mint(domain.Claims{RegisteredClaims: jwtSub("42")}, time.Hour)
	good := s.token("42")
	cookie := func(v, origin string) http.Header {
		h := http.Header{"Cookie": {"Authorization=" + v}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	tests := []struct {
		name   string
		query  string
		header http.Header
		ok     bool
	}{
		{"query token", "?token=" + good, nil, true},
		{"bearer header", "", http.Header{"Authorization": {"Bearer " + good}}, true},
		{"cookie", "", cookie(good, ""), true},
		{"cookie with Bearer prefix, url-encoded, same origin", "", cookie("Bearer%20"+good, self), true},
		{"token from any origin", "?token=" + good, http.Header{"Origin": {"https://elsewhere.example"}}, true},
		{"no token", "", nil, false},
		{"garbage token", "?token=abc", nil, false},
		{"expired token", "?token=" + expired, nil, false},
		{"token signed with another secret", "?token=" + forged, nil, false},
		{"cookie from a foreign origin", "", cookie(good, "https://evil.example"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := s.dial(tt.query, tt.header)
			if err != nil {
				t.Fatal(err)
			}
			c.t = t
			if tt.ok {
				c.expect(`{"type":"welcome"}`)
				return
			}
			c.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
			if _, _, err := c.next(2 * time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("expected a normal close after the disconnect, got %v", err)
			}
		})
	}
}

func TestAllowedOrigins(t *testing.T) {
	s := newServer(t, func(c *actioncable.Config) { c.AllowedOrigins = []string{"https://app.example"} })
	good := s.token("42")
	// Listed origins may use cookies; others are refused at the upgrade,
	// whatever identity they carry.
	c, _, err := s.dial("", http.Header{"Cookie": {"Authorization=" + good}, "Origin": {"https://app.example"}})
	if err != nil {
		t.Fatal(err)
	}
	c.expect(`{"type":"welcome"}`)
	if _, resp, err := s.dial("?token="+good, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin accepted: %v", err)
	}
}

func TestSubscriptions(t *testing.T) {
	s := newServer(t, nil)
	c := s.connect("42")
	// Identifiers are echoed byte for byte: odd key order and spacing kept.
	notif := `{ "channel" : "NotificationChannel" , "z":1}`
	tests := []struct {
		name       string
		identifier string
		want       string
	}{
		{"own notifications", notif, confirm(notif)},
		{"chat rooms", `{"channel":"ChatRoomChannel"}`, confirm(`{"channel":"ChatRoomChannel"}`)},
		{"room member", `{"channel":"Chats::RoomChannel","chat_room_id":7}`, confirm(`{"channel":"Chats::RoomChannel","chat_room_id":7}`)},
		{"room member by uuid", `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-7"}`, confirm(`{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-7"}`)},
		{"threads", `{"channel":"Chats::CommunityMemberThreadsChannel"}`, confirm(`{"channel":"Chats::CommunityMemberThreadsChannel"}`)},
		{"dashboard", `{"channel":"DashboardChannel","project":"demo","family":"attendees"}`, confirm(`{"channel":"DashboardChannel","project":"demo","family":"attendees"}`)},
		{"html characters kept", `{"channel":"NotificationChannel","tag":"<b>&"}`, `{"identifier":"{\"channel\":\"NotificationChannel\",\"tag\":\"<b>&\"}","type":"confirm_subscription"}`},
		{"not a room member", `{"channel":"Chats::RoomChannel","chat_room_id":8}`, reject(`{"channel":"Chats::RoomChannel","chat_room_id":8}`)},
		{"foreign project", `{"channel":"DashboardChannel","project":"expo","family":"attendees"}`, reject(`{"channel":"DashboardChannel","project":"expo","family":"attendees"}`)},
		{"unknown class", `{"channel":"AdminChannel"}`, reject(`{"channel":"AdminChannel"}`)},
		{"malformed identifier", `{channel`, reject(`{channel`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send("subscribe", tt.identifier, nil)
			c.expect(tt.want)
		})
	}
	t.Run("duplicates confirmed once", func(t *testing.T) {
		c.send("subscribe", notif, nil)
		c.send("subscribe", notif, nil)
		c.silent(300 * time.Millisecond)
	})
	t.Run("store failure leaves the subscribe unanswered", func(t *testing.T) {
		c.send("subscribe", `{"channel":"Chats::RoomChannel","chat_room_id":500}`, nil)
		c.silent(300 * time.Millisecond)
	})
	t.Run("garbage commands are ignored", func(t *testing.T) {
		for _, raw := range []string{`nope`, `{"command":"dance"}`, `{"command":"message","identifier":"{}","data":"x"}`, `[]`} {
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
				t.Fatal(err)
			}
		}
		c.send("subscribe", `{"channel":"NotificationChannel","after":"garbage"}`, nil)
		c.expect(confirm(`{"channel":"NotificationChannel","after":"garbage"}`))
	})
}

func TestBroadcast(t *testing.T) {
	s := newServer(t, nil)
	c := s.connect("42")
	id1 := `{"channel":"NotificationChannel"}`
	id2 := `{"channel":"NotificationChannel","v":2}`
	room := `{"channel":"Chats::RoomChannel","chat_room_id":7}`
	for _, id := range []string{id1, id2, room} {
		c.send("subscribe", id, nil)
		c.expect(confirm(id))
	}
	s.node.Dispatch(domain.Envelope{Name: "newNotification", Scope: domain.Scope{Members: []string{"42"}, Stream: domain.StreamNotifications},
		Data: json.RawMessage(`{"id":1,"title":"Hi"}`)})
	// One stream feeds every identifier bound to it, each under its own identifier.
	got := map[string]bool{}
	for range 2 {
		m, raw, err := c.next(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := m["identifier"].(string)
		want := `{"identifier":` + quote(id) + `,"message":{"event":"newNotification","data":{"id":1,"title":"Hi"}}}`
		if raw != want {
			t.Fatalf("got  %s\nwant %s", raw, want)
		}
		got[id] = true
	}
	if !got[id1] || !got[id2] {
		t.Fatalf("identifiers reached: %v", got)
	}
	s.node.Dispatch(domain.Envelope{Name: "newMessage", Scope: domain.Scope{Room: "7"}, Data: json.RawMessage(`{"body":"hello"}`)})
	c.expect(`{"identifier":` + quote(room) + `,"message":{"event":"newMessage","data":{"body":"hello"}}}`)
	// Someone else's notifications never arrive.
	s.node.Dispatch(domain.Envelope{Name: "newNotification", Scope: domain.Scope{Members: []string{"43"}, Stream: domain.StreamNotifications}, Data: json.RawMessage(`{}`)})
	c.silent(200 * time.Millisecond)
	// After unsubscribe (no reply), the identifier gets nothing more.
	c.send("unsubscribe", room, nil)
	c.silent(200 * time.Millisecond)
	s.node.Dispatch(domain.Envelope{Name: "newMessage", Scope: domain.Scope{Room: "7"}, Data: json.RawMessage(`{}`)})
	c.silent(200 * time.Millisecond)
	if n := s.node.Hub.Count("chat-room-7-channel"); n != 0 {
		t.Fatalf("room still has %d subscribers", n)
	}
}

func TestPerform(t *testing.T) {
	s := newServer(t, func(c *actioncable.Config) { c.ClientEventRate = 3 })
	alice, bob := s.connect("42"), s.connect("43")
	typing := `{"channel":"TypingRoomChannel","room":"7"}`
	plain := `{"channel":"Chats::RoomChannel","chat_room_id":7}`
	for _, c := range []*client{alice, bob} {
		for _, id := range []string{typing, plain} {
			c.send("subscribe", id, nil)
			c.expect(confirm(id))
		}
	}
	alice.send("message", typing, map[string]any{"action": "typing", "typing": true})
	// Bob gets it on both identifiers of the room stream; Alice does not.
	want := map[string]bool{
		`{"identifier":` + quote(typing) + `,"message":{"event":"client-typing","data":{"typing":true},"user_id":"42"}}`: true,
		`{"identifier":` + quote(plain) + `,"message":{"event":"client-typing","data":{"typing":true},"user_id":"42"}}`:  true,
	}
	for range 2 {
		_, raw, err := bob.next(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !want[raw] {
			t.Fatalf("unexpected %s", raw)
		}
		delete(want, raw)
	}
	alice.silent(200 * time.Millisecond)
	// Not allowed: an action the class does not list, or any action on a
	// class without actions.
	alice.send("message", typing, map[string]any{"action": "speak"})
	alice.send("message", plain, map[string]any{"action": "typing"})
	alice.send("message", typing, map[string]any{"typing": true}) // no action
	bob.silent(200 * time.Millisecond)
	// Rate: 3 per second with a burst of 3: once the bucket is full again,
	// 3 of 6 events sent in a row go through.
	time.Sleep(time.Second)
	for range 6 {
		alice.send("message", typing, map[string]any{"action": "typing"})
	}
	n := 0
	for {
		if _, _, err := bob.next(300 * time.Millisecond); err != nil {
			break
		}
		n++
	}
	if n != 3*2 { // three events, each on two identifiers
		t.Fatalf("bob got %d frames, want 6 (rate limited)", n)
	}
}

func TestLimits(t *testing.T) {
	t.Run("subscriptions per connection", func(t *testing.T) {
		s := newServer(t, func(c *actioncable.Config) { c.MaxSubscriptions = 2 })
		c := s.connect("42")
		for i, id := range []string{`{"channel":"NotificationChannel"}`, `{"channel":"ChatRoomChannel"}`} {
			c.send("subscribe", id, nil)
			c.expect(confirm(id))
			_ = i
		}
		third := `{"channel":"Chats::CommunityMemberThreadsChannel"}`
		c.send("subscribe", third, nil)
		c.expect(reject(third))
		// Freeing one makes room again.
		c.send("unsubscribe", `{"channel":"ChatRoomChannel"}`, nil)
		c.send("subscribe", third, nil)
		c.expect(confirm(third))
	})
	t.Run("connections per user, shared with other protocols", func(t *testing.T) {
		s := newServer(t, nil)
		s.node.Users = gateway.NewUserConns(2)
		s.node.Users.Acquire("42", "a-pusher-socket") // another front door holds one
		first := s.connect("42")
		c, _, err := s.dial("?token="+s.token("42"), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.expect(`{"type":"disconnect","reason":"too_many_connections","reconnect":false}`)
		// Another user is unaffected; closing frees the slot.
		s.connect("43")
		_ = first.ws.Close()
		waitFor(t, func() bool { return s.node.Users.Count("42") == 1 })
		s.connect("42")
	})
}

func TestRevoke(t *testing.T) {
	s := newServer(t, nil)
	alice, bob := s.connect("42"), s.connect("43")
	room := `{"channel":"Chats::RoomChannel","chat_room_id":7}`
	notif := `{"channel":"NotificationChannel"}`
	for _, c := range []*client{alice, bob} {
		c.send("subscribe", room, nil)
		c.expect(confirm(room))
	}
	alice.send("subscribe", notif, nil)
	alice.expect(confirm(notif))
	// Alice removed from room 7: her subscription is rejected after the fact
	// (the client forgets it and calls rejected()), and the removal event is
	// not delivered to her.
	s.node.Dispatch(domain.Envelope{Name: "participantRemoved", Scope: domain.Scope{Room: "7"}, Data: json.RawMessage(`{"member":"42"}`),
		Revoke: []domain.Revocation{{Member: "42", Channel: "chat-room-7-channel"}}})
	alice.expect(reject(room))
	bob.expect(`{"identifier":` + quote(room) + `,"message":{"event":"participantRemoved","data":{"member":"42"}}}`)
	alice.silent(200 * time.Millisecond)
	// Her other subscriptions stay.
	s.node.Dispatch(domain.Envelope{Name: "newNotification", Scope: domain.Scope{Members: []string{"42"}, Stream: domain.StreamNotifications}, Data: json.RawMessage(`{}`)})
	alice.expect(`{"identifier":` + quote(notif) + `,"message":{"event":"newNotification","data":{}}}`)
}

func TestShutdown(t *testing.T) {
	s := newServer(t, nil)
	c := s.connect("42")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.a.Shutdown(ctx)
	c.expect(`{"type":"disconnect","reason":"server_restart","reconnect":true}`)
	if _, _, err := c.next(2 * time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("expected a close, got %v", err)
	}
	// Newcomers are told the same.
	c2, _, err := s.dial("?token="+s.token("42"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.expect(`{"type":"disconnect","reason":"server_restart","reconnect":true}`)
	waitFor(t, func() bool { return s.a.ConnCount() == 0 && s.node.Users.Count("42") == 0 })
}

func TestIdleConnectionDropped(t *testing.T) {
	s := newServer(t, func(c *actioncable.Config) {
		c.PingInterval = 50 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	c := s.connect("42")
	// A client that answers WebSocket pings (gorilla does while reading)
	// stays connected past the idle timeout.
	time.Sleep(700 * time.Millisecond)
	if s.a.ConnCount() != 1 {
		t.Fatal("healthy connection dropped")
	}
	if _, _, err := c.next(10 * time.Millisecond); err != errTimeout {
		t.Fatalf("healthy connection: %v", err)
	}
	// One that never reads (so never answers pings) is dropped.
	if _, _, err := s.dial("?token="+s.token("43"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.a.ConnCount() == 2 })
	waitFor(t, func() bool { return s.a.ConnCount() == 1 && s.node.Users.Count("43") == 0 })
}

func TestSlowConsumerDisconnected(t *testing.T) {
	s := newServer(t, func(c *actioncable.Config) { c.MaxQueue = 4; c.WriteTimeout = 200 * time.Millisecond })
	c, _, err := s.dial("?token="+s.token("42"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The client never reads: big messages fill the socket buffers, then
	// the queue.
	c.send("subscribe", `{"channel":"NotificationChannel"}`, nil)
	waitFor(t, func() bool { return s.node.Hub.Count("notification-channel-42") == 1 })
	big := json.RawMessage(`{"pad":"` + strings.Repeat("x", 256<<10) + `"}`)
	for range 64 {
		s.node.Dispatch(domain.Envelope{Name: "newNotification", Scope: domain.Scope{Members: []string{"42"}, Stream: domain.StreamNotifications}, Data: big})
	}
	waitFor(t, func() bool { return s.a.ConnCount() == 0 })
}

func TestConfigValidate(t *testing.T) {
	node := gateway.NewNode(nil, nil)
	signer, _ := domain.NewSigner(secret)
	tests := []struct {
		name string
		cfg  actioncable.Config
		ok   bool
	}{
		{"defaults", actioncable.Config{Signer: signer}, true},
		{"no signer", actioncable.Config{}, false},
		{"idle shorter than two pings", actioncable.Config{Signer: signer, PingInterval: time.Second, IdleTimeout: time.Second}, false},
		{"negative limit", actioncable.Config{Signer: signer, MaxSubscriptions: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := actioncable.New(node, tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jwtSub(sub string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: sub} }

// Without Config.Rooms, the node's Membership resolves uuids when it can
// (the chat store implements both interfaces).
func TestRoomsFromMembership(t *testing.T) {
	s := newServer(t, func(c *actioncable.Config) { c.Rooms = nil })
	c := s.connect("42")
	id := `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-7"}`
	c.send("subscribe", id, nil)
	c.expect(confirm(id))
	// uuid-8 resolves, but 42 is not in room 8.
	id2 := `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-8"}`
	c.send("subscribe", id2, nil)
	c.expect(reject(id2))
}

// A token that expires during the connection ends it with reconnect true:
// the consumer reconnects through its URL function with a fresh token.
func TestTokenExpiryDuringConnection(t *testing.T) {
	s := newServer(t, nil)
	tok, err := s.signer.SignMap(jwt.MapClaims{"sub": "42", "exp": time.Now().Add(1500 * time.Millisecond).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := s.dial("?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(`{"type":"welcome"}`)
	_, raw, err := c.next(3 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if raw != `{"type":"disconnect","reason":"token_expired","reconnect":true}` {
		t.Fatalf("got %s", raw)
	}
	waitFor(t, func() bool { return s.a.ConnCount() == 0 })
}
