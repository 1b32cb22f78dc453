package pusher_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"net/http/httptest"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/pusher"
	"switchboard/outbox"
)

const testMasterKey = "nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0="

// full is a served adapter with the outbox path of production: HTTP API →
// outbox → relay → broker → node.Dispatch → hub.
type full struct {
	srv    *httptest.Server
	node   *gateway.Node
	signer *domain.Signer
	a      *pusher.Adapter
	app    *pusher.App
}

type fullOpts struct {
	db *domain.DB
	// noRelay leaves the outbox unread (a node that has just started).
	noRelay bool
	apps    []pusher.App
	tweak   func(*pusher.Config)
}

func newFull(t *testing.T, o fullOpts) *full {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, _ := domain.NewSigner("s")
	node := gateway.NewNode(nil, log)
	if o.apps == nil {
		o.apps = []pusher.App{{ID: "app-id", Key: "app-key", Secret: "app-secret", EncryptionMasterKey: testMasterKey}}
	}
	cfg := pusher.Config{Apps: o.apps, Signer: signer, DB: o.db}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	if o.db != nil {
		if err := domain.Migrate(context.Background(), o.db, gateway.Migrations()); err != nil {
			t.Fatal(err)
		}
		node.History = gateway.NewHistory(o.db, gateway.HistoryConfig{Now: cfg.Now})
	}
	a, err := pusher.New(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.db != nil && !o.noRelay {
		broker := gateway.NewLocalBroker()
		t.Cleanup(func() { _ = broker.Close(context.Background()) })
		broker.Subscribe(node.DispatchBatch)
		relay, err := outbox.NewRelay(o.db, gateway.Pipeline{History: node.History, Broker: broker}, outbox.Config{PollInterval: 100 * time.Millisecond, Mode: outbox.ModePoll}) // counts outbox rows, which logical decoding deletes once delivered
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = relay.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	e := domain.NewEcho(log)
	a.Routes(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &full{srv: srv, node: node, signer: signer, a: a, app: a.DefaultApp()}
}

func (f *full) dial(t *testing.T) (*client, string) {
	t.Helper()
	fx := &fixture{srv: f.srv}
	c := fx.dial(t, f.app.Key)
	return c, c.established()
}

func (f *full) token(t *testing.T, sub, name string, projects ...string) string {
	t.Helper()
	c := domain.Claims{Name: name, Projects: projects}
	c.Subject = sub
	s, err := f.signer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// post sends a form POST with a bearer and decodes the JSON answer.
func (f *full) post(t *testing.T, path, token string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// auth asks /broadcasting/auth like pusher-js and returns the answer.
func (f *full) auth(t *testing.T, token, socketID, channel string) (int, map[string]any) {
	t.Helper()
	return f.post(t, "/broadcasting/auth", token, url.Values{"socket_id": {socketID}, "channel_name": {channel}})
}

// subscribeAuthed authorizes through the endpoint and subscribes.
func (f *full) subscribeAuthed(t *testing.T, c *client, sid, token, channel string) frame {
	t.Helper()
	st, body := f.auth(t, token, sid, channel)
	if st != 200 {
		t.Fatalf("auth %s: %d %v", channel, st, body)
	}
	d := map[string]any{"channel": channel, "auth": body["auth"]}
	if cd, ok := body["channel_data"]; ok {
		d["channel_data"] = cd
	}
	c.send(map[string]any{"event": "pusher:subscribe", "data": d})
	return c.read()
}

// readUntil reads frames until one has event, failing on timeout.
func (c *client) readUntil(event string) frame {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		f := c.read()
		if f.Event == event {
			return f
		}
	}
	c.t.Fatalf("no %s", event)
	return frame{}
}

// quiet asserts nothing but a pong arrives before a ping round trip.
func (c *client) quiet() {
	c.t.Helper()
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	if f := c.read(); f.Event != "pusher:pong" {
		c.t.Fatalf("unexpected frame %+v (data %s)", f, f.Data)
	}
}

func (c *client) closeCode() int {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if asClose(err, &ce) {
				return ce.Code
			}
			c.t.Fatalf("read ended without a close frame: %v", err)
		}
	}
}

func errorCode(t *testing.T, f frame) int {
	t.Helper()
	if f.Event != "pusher:error" {
		t.Fatalf("want pusher:error, got %+v", f)
	}
	return int(f.dataObject(t)["code"].(float64))
}

// api calls the HTTP API signed exactly as pusher-http-node does.
func (f *full) api(t *testing.T, method, path string, query url.Values, body any, secret string) (int, map[string]any) {
	t.Helper()
	return f.apiAt(t, method, path, query, time.Now(), secret, body)
}

func (f *full) apiAt(t *testing.T, method, path string, query url.Values, at time.Time, secret string, bodies ...any) (int, map[string]any) {
	t.Helper()
	var body any
	if len(bodies) > 0 {
		body = bodies[0]
	}
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("auth_key", f.app.Key)
	q.Set("auth_timestamp", strconv.FormatInt(at.Unix(), 10))
	q.Set("auth_version", "1.0")
	if len(raw) > 0 {
		sum := md5.Sum(raw)
		q.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+q.Get(k))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n" + strings.Join(parts, "&")))
	q.Set("auth_signature", hex.EncodeToString(m.Sum(nil)))
	req, _ := http.NewRequest(method, f.srv.URL+path+"?"+q.Encode(), bytes.NewReader(raw))
	if len(raw) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestPresenceMembersDedupedPerUser(t *testing.T) {
	f := newFull(t, fullOpts{})
	const ch = "presence-dashboard.project.demo"
	a1, s1 := f.dial(t)
	tokA := f.token(t, "7", "Ann", "demo")
	first := f.subscribeAuthed(t, a1, s1, tokA, ch)
	if first.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("%+v", first)
	}
	var s string
	if json.Unmarshal(first.Data, &s) != nil {
		t.Fatalf("presence data must be a JSON string: %s", first.Data)
	}
	p := first.dataObject(t)["presence"].(map[string]any)
	if p["count"].(float64) != 1 || p["hash"].(map[string]any)["7"].(map[string]any)["name"] != "Ann" {
		t.Fatalf("presence %v", p)
	}
	// Ann's second tab: no member_added for the others, count stays 1.
	b1, sb := f.dial(t)
	tokB := f.token(t, "8", "Bob", "demo")
	if got := f.subscribeAuthed(t, b1, sb, tokB, ch); got.dataObject(t)["presence"].(map[string]any)["count"].(float64) != 2 {
		t.Fatalf("bob sees %s", got.Data)
	}
	added := a1.readUntil("pusher_internal:member_added")
	if added.Channel != ch || added.dataObject(t)["user_id"] != "8" {
		t.Fatalf("member_added %+v %s", added, added.Data)
	}
	a2, s2 := f.dial(t)
	if got := f.subscribeAuthed(t, a2, s2, tokA, ch); got.dataObject(t)["presence"].(map[string]any)["count"].(float64) != 2 {
		t.Fatalf("ann's second tab sees %s", got.Data)
	}
	b1.quiet() // no member_added for Ann's second connection
	// Ann's first tab leaves: she is still present.
	a1.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	b1.quiet()
	if _, users := f.node.Presence.Count("dashboard.project.demo"); users != 2 {
		t.Fatalf("users %d", users)
	}
	// Her last connection drops: member_removed once.
	a2.ws.Close()
	removed := b1.readUntil("pusher_internal:member_removed")
	if removed.dataObject(t)["user_id"] != "7" {
		t.Fatalf("member_removed %s", removed.Data)
	}
	// A token without the project may not watch it.
	if st, _ := f.auth(t, f.token(t, "9", "Eve", "expo"), sb, ch); st != 403 {
		t.Fatalf("other project: %d", st)
	}
}

func TestPresenceLimits(t *testing.T) {
	f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s", MaxPresenceMembers: 2, MaxPresenceMemberSize: 64}}})
	const ch = "presence-chat.lobby"
	join := func(user, info string) frame {
		c, sid := f.dial(t)
		cd := fmt.Sprintf(`{"user_id":%q,"user_info":%s}`, user, info)
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{
			"channel": ch, "auth": f.app.ChannelAuth(sid, ch, cd), "channel_data": cd}})
		return c.read()
	}
	for _, u := range []string{"1", "2", "2"} {
		if got := join(u, `{"n":1}`); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("join %s: %+v", u, got)
		}
	}
	full := join("3", `{"n":1}`)
	if full.Event != "pusher:subscription_error" || full.dataObject(t)["status"].(float64) != 4100 {
		t.Fatalf("third member: %+v %s", full, full.Data)
	}
	big := join("1", `{"bio":"`+strings.Repeat("x", 80)+`"}`)
	if big.Event != "pusher:subscription_error" || big.dataObject(t)["status"].(float64) != 4301 {
		t.Fatalf("oversize member: %+v %s", big, big.Data)
	}
	// user_id as a number is the same member as the string.
	c, sid := f.dial(t)
	cd := `{"user_id":1}`
	c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch, "auth": f.app.ChannelAuth(sid, ch, cd), "channel_data": cd}})
	if got := c.read(); got.Event != "pusher_internal:subscription_succeeded" || got.dataObject(t)["presence"].(map[string]any)["count"].(float64) != 2 {
		t.Fatalf("numeric user id: %+v %s", got, got.Data)
	}
}

func TestClientEvents(t *testing.T) {
	f := newFull(t, fullOpts{})
	tok := f.token(t, "7", "Ann", "demo")
	const room = "presence-chat.lobby"
	a, sa := f.dial(t)
	b, sb := f.dial(t)
	f.subscribeAuthed(t, a, sa, tok, room)
	f.subscribeAuthed(t, b, sb, f.token(t, "8", "Bob"), room)
	a.readUntil("pusher_internal:member_added")
	a.send(map[string]any{"event": "client-typing", "channel": room, "data": map[string]any{"typing": true}})
	got := b.readUntilRaw("client-typing")
	if got["channel"] != room || got["user_id"] != "7" || got["data"] != `{"typing":true}` {
		t.Fatalf("relayed %v", got)
	}
	a.quiet() // not echoed to the sender

	// Refusals: pusher:error 4301, the connection stays usable.
	const dash = "private-dashboard.project.demo.attendees"
	f.subscribeAuthed(t, a, sa, tok, dash)
	const enc = "private-encrypted-chat.secret"
	f.subscribeAuthed(t, a, sa, tok, enc)
	a.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	a.read()
	for _, ch := range []string{dash, enc, "news", "private-chat.not-subscribed"} {
		a.send(map[string]any{"event": "client-x", "channel": ch, "data": map[string]any{}})
		if code := errorCode(t, a.read()); code != 4301 {
			t.Fatalf("%s: code %d", ch, code)
		}
	}
	a.quiet()

	// Rate: 10 per second are relayed, the 11th is refused (after a
	// second's pause, so client-typing above is out of the window).
	time.Sleep(1100 * time.Millisecond)
	for i := 0; i < 11; i++ {
		a.send(map[string]any{"event": "client-n", "channel": room, "data": map[string]any{"i": i}})
	}
	if code := errorCode(t, a.read()); code != 4301 {
		t.Fatalf("11th: %d", code)
	}
	for i := 0; i < 10; i++ {
		if got := b.readUntil("client-n"); got.dataObject(t)["i"].(float64) != float64(i) {
			t.Fatalf("event %d: %s", i, got.Data)
		}
	}
	b.quiet()
	a.quiet()
}

// readUntilRaw is readUntil keeping every top-level field (user_id).
func (c *client) readUntilRaw(event string) map[string]any {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		_ = c.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		var m map[string]any
		if err := c.ws.ReadJSON(&m); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if m["event"] == event {
			return m
		}
	}
	c.t.Fatalf("no %s", event)
	return nil
}

func TestClientEventsDisabledPerApp(t *testing.T) {
	off := false
	f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s", ClientEvents: &off}}})
	c, sid := f.dial(t)
	c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-chat.x", "auth": f.app.ChannelAuth(sid, "private-chat.x", "")}})
	c.read()
	c.send(map[string]any{"event": "client-x", "channel": "private-chat.x", "data": map[string]any{}})
	f2 := c.read()
	if errorCode(t, f2) != 4301 || !strings.Contains(string(f2.Data), "not have client messaging enabled") {
		t.Fatalf("%s", f2.Data)
	}
}

func TestEncryptedAuthAndAllowList(t *testing.T) {
	f := newFull(t, fullOpts{})
	tok := f.token(t, "7", "Ann")
	st, body := f.auth(t, tok, "1.2", "private-encrypted-chat.x")
	// base64(SHA256("private-encrypted-chat.x" ++ master key)).
	key := "nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0="
	want := sharedSecret(t, "private-encrypted-chat.x", key)
	if st != 200 || body["shared_secret"] != want || body["auth"] != f.app.ChannelAuth("1.2", "private-encrypted-chat.x", "") {
		t.Fatalf("%d %v want secret %s", st, body, want)
	}
	for _, ch := range []string{"private-secret-stuff", "presence-random", "private-encrypted-other"} {
		if st, body := f.auth(t, tok, "1.2", ch); st != 403 {
			t.Fatalf("%s: %d %v", ch, st, body)
		}
	}
	// Without a master key, encrypted channels are refused.
	g := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s"}}})
	if st, _ := g.auth(t, g.token(t, "7", "Ann"), "1.2", "private-encrypted-chat.x"); st != 403 {
		t.Fatalf("no master key: %d", st)
	}
}

func sharedSecret(t *testing.T, channel, masterB64 string) string {
	t.Helper()
	// Kept independent of the adapter: decode, hash, encode.
	key, err := base64Std(masterB64)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte(channel), key...))
	return base64Enc(h[:])
}

func TestConnectionsPerUserLimit(t *testing.T) {
	f := newFull(t, fullOpts{})
	tok := f.token(t, "7", "Ann", "demo")
	const ch = "private-dashboard.project.demo.attendees"
	conns := make([]*client, 0, 100)
	for i := 0; i < 100; i++ {
		c, sid := f.dial(t)
		if got := f.subscribeAuthed(t, c, sid, tok, ch); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("conn %d: %+v", i+1, got)
		}
		conns = append(conns, c)
	}
	c, sid := f.dial(t)
	st, body := f.auth(t, tok, sid, ch)
	if st != 403 || body["error"].(map[string]any)["code"] != "over_quota" {
		t.Fatalf("101st: %d %v", st, body)
	}
	if code := errorCode(t, c.read()); code != 4004 {
		t.Fatalf("101st got %d", code)
	}
	c.quiet()
	// Another user is unaffected; freeing a connection frees a slot.
	other, so := f.dial(t)
	f.subscribeAuthed(t, other, so, f.token(t, "8", "Bob", "demo"), ch)
	conns[0].ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for f.node.Users.Count("7") != 99 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st, _ := f.auth(t, tok, sid, ch); st != 200 {
		t.Fatalf("after a close: %d", st)
	}
}

func TestSubscriptionsPerConnectionLimit(t *testing.T) {
	f := newFull(t, fullOpts{})
	c, _ := f.dial(t)
	for i := 0; i < 100; i++ {
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news-" + strconv.Itoa(i)}})
		if got := c.read(); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("sub %d: %+v", i, got)
		}
	}
	c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news-100"}})
	got := c.read()
	if got.Event != "pusher:subscription_error" || got.Channel != "news-100" || got.dataObject(t)["status"].(float64) != 4100 {
		t.Fatalf("101st: %+v %s", got, got.Data)
	}
	// Unsubscribing frees a slot; existing subscriptions keep working.
	c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news-0"}})
	c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news-100"}})
	if got := c.read(); got.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("after unsubscribe: %+v", got)
	}
}

func TestSigninAndServerToUser(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		f := newFull(t, fullOpts{db: db})
		c, sid := f.dial(t)
		tok := f.token(t, "42", "Jane")
		st, ua := f.post(t, "/pusher/user-auth", tok, url.Values{"socket_id": {sid}})
		if st != 200 || ua["user_data"] != `{"id":"42","user_info":{"name":"Jane"}}` {
			t.Fatalf("user-auth %d %v", st, ua)
		}
		// Before signin, #server-to-user-42 is refused.
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-42", "auth": ""}})
		if got := c.read(); got.Event != "pusher:subscription_error" {
			t.Fatalf("%+v", got)
		}
		c.send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": "app-key:" + strings.Repeat("0", 64), "user_data": ua["user_data"]}})
		if code := errorCode(t, c.read()); code != 4009 {
			t.Fatalf("forged signin: %d", code)
		}
		c.send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": ua["auth"], "user_data": ua["user_data"]}})
		ok := c.read()
		if ok.Event != "pusher:signin_success" || ok.dataObject(t)["user_data"] != ua["user_data"] {
			t.Fatalf("signin: %+v %s", ok, ok.Data)
		}
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-42", "auth": ""}})
		if got := c.read(); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("%+v", got)
		}
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-43", "auth": ""}})
		if got := c.read(); got.Event != "pusher:subscription_error" {
			t.Fatalf("other user's channel: %+v", got)
		}
		if st, body := f.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "hello", "channels": []string{"#server-to-user-42"}, "data": `{"x":1}`}, "app-secret"); st != 200 {
			t.Fatalf("send to user: %d %v", st, body)
		}
		if got := c.readUntil("hello"); got.Channel != "#server-to-user-42" || string(got.Data) != `"{\"x\":1}"` {
			t.Fatalf("%+v %s", got, got.Data)
		}
		// Terminate closes the signed-in connection with 4009; others stay.
		other, _ := f.dial(t)
		if st, body := f.api(t, "POST", "/apps/app-id/users/42/terminate_connections", nil, map[string]any{}, "app-secret"); st != 200 || len(body) != 0 {
			t.Fatalf("terminate: %d %v", st, body)
		}
		if code := c.closeCode(); code != 4009 {
			t.Fatalf("terminate close code %d", code)
		}
		other.quiet()
	})
}

func TestCacheChannels(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		f := newFull(t, fullOpts{db: db, tweak: func(c *pusher.Config) { c.Now = clock }})
		// Published while nobody listens: cached.
		if st, body := f.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "price", "channel": "cache-ticker", "data": `{"p":1}`}, "app-secret"); st != 200 {
			t.Fatalf("%d %v", st, body)
		}
		c, _ := f.dial(t)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-ticker"}})
			got := c.read()
			if got.Event == "price" {
				// Delivered live to the previous attempt's subscription,
				// before its unsubscribe.
				got = c.read()
			}
			if got.Event != "pusher_internal:subscription_succeeded" {
				t.Fatalf("%+v", got)
			}
			got = c.read()
			if got.Event == "price" {
				if string(got.Data) != `"{\"p\":1}"` || got.Channel != "cache-ticker" {
					t.Fatalf("replay %+v %s", got, got.Data)
				}
				break
			}
			if got.Event != "pusher:cache_miss" || time.Now().After(deadline) {
				t.Fatalf("want the replay, got %+v", got)
			}
			// The relay has not delivered yet: try again.
			c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "cache-ticker"}})
			time.Sleep(50 * time.Millisecond)
		}
		st, info := f.api(t, "GET", "/apps/app-id/channels/cache-ticker", url.Values{"info": {"cache,subscription_count"}}, nil, "app-secret")
		if st != 200 || info["occupied"] != true || info["subscription_count"].(float64) != 1 || info["cache"].(map[string]any)["data"] != `{"p":1}` {
			t.Fatalf("channel info %d %v", st, info)
		}
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-empty"}})
		c.read()
		if got := c.read(); got.Event != "pusher:cache_miss" || got.Channel != "cache-empty" {
			t.Fatalf("miss %+v", got)
		}
		// After the TTL (30 min by default) the entry is gone.
		mu.Lock()
		now = now.Add(31 * time.Minute)
		mu.Unlock()
		d, _ := f.dial(t)
		d.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-ticker"}})
		d.read()
		if got := d.read(); got.Event != "pusher:cache_miss" {
			t.Fatalf("expired entry replayed: %+v", got)
		}
	})
}

// A cache channel's last event is durable: a new process on the same
// database (fresh memory, its relay not started yet) replays it, and the
// event, once relayed, is not sent to that subscriber a second time.
func TestCacheChannelSurvivesRestart(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		before := newFull(t, fullOpts{db: db})
		if st, body := before.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "price", "channel": "cache-ticker", "data": `{"p":7}`}, "app-secret"); st != 200 {
			t.Fatalf("%d %v", st, body)
		}
		// Wait until the relay kept it (the first process replays it).
		c, _ := before.dial(t)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-ticker"}})
			c.read() // subscription_succeeded
			if got := c.read(); got.Event == "price" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first process never replayed the event")
			}
			c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "cache-ticker"}})
			time.Sleep(50 * time.Millisecond)
		}

		after := newFull(t, fullOpts{db: db, noRelay: true})
		d, _ := after.dial(t)
		d.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-ticker"}})
		if got := d.read(); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("%+v", got)
		}
		got := d.read()
		if got.Event != "price" || string(got.Data) != `"{\"p\":7}"` {
			t.Fatalf("after restart: %+v %s, want the stored price", got, got.Data)
		}
		st, info := after.api(t, "GET", "/apps/app-id/channels/cache-ticker", url.Values{"info": {"cache"}}, nil, "app-secret")
		if cache, _ := info["cache"].(map[string]any); st != 200 || cache["data"] != `{"p":7}` || cache["ttl"].(float64) < 1700 {
			t.Fatalf("channel info after restart %d %v", st, info)
		}
		// The relay of the new process hands the same event over again
		// (with its stored offset): the subscriber already has it.
		ms, _, err := after.node.History.Read(context.Background(), "pusher:app-id:cache-ticker", gateway.Query{Limit: 1, Reverse: true})
		if err != nil || len(ms) != 1 {
			t.Fatalf("stored: %v %v", ms, err)
		}
		env := domain.RawEnvelope("price", domain.Scope{Channels: []string{"pusher:app-id:cache-ticker"}}, ms[0].Data)
		env.Streams = []domain.StreamOffset{{Channel: "pusher:app-id:cache-ticker", Offset: ms[0].Offset, Epoch: ms[0].Epoch}}
		after.node.Dispatch(env)
		d.quiet()
	})
}

func TestSubscriptionCount(t *testing.T) {
	f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s", SubscriptionCount: true}}})
	a, _ := f.dial(t)
	b, _ := f.dial(t)
	sub := func(c *client) {
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "room"}})
		c.readUntil("pusher_internal:subscription_succeeded")
	}
	sub(a)
	if got := a.readUntil("pusher_internal:subscription_count"); got.dataObject(t)["subscription_count"].(float64) != 1 {
		t.Fatalf("%s", got.Data)
	}
	sub(b)
	for _, c := range []*client{a, b} {
		if got := c.readUntil("pusher_internal:subscription_count"); got.dataObject(t)["subscription_count"].(float64) != 2 {
			t.Fatalf("%s", got.Data)
		}
	}
	b.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "room"}})
	if got := a.readUntil("pusher_internal:subscription_count"); got.dataObject(t)["subscription_count"].(float64) != 1 {
		t.Fatalf("%s", got.Data)
	}
	// Apps without the switch never see it.
	g := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s"}}})
	c, _ := g.dial(t)
	c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "room"}})
	c.read()
	c.quiet()
}
