package pusher_test

// The rest of the Pusher server (issue 18): user authentication timeout,
// per-app connection quota, disabled apps, client event name length,
// coalesced subscription_count, sendToUser before the #server-to-user
// subscription, subscription_count on presence channels.

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/pusher"
)

func boolp(b bool) *bool { return &b }

// subscribeSigned subscribes to a private/presence channel with an auth
// signed by the app secret, as an app backend would, and returns the answer.
func subscribeSigned(c *client, app *pusher.App, sid, channel, channelData string) frame {
	c.t.Helper()
	d := map[string]any{"channel": channel, "auth": app.ChannelAuth(sid, channel, channelData)}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	c.send(map[string]any{"event": "pusher:subscribe", "data": d})
	return c.readUntilOneOf("pusher_internal:subscription_succeeded", "pusher:subscription_error")
}

// signin signs the connection in as user with the app secret.
func signin(c *client, app *pusher.App, sid, user string) {
	c.t.Helper()
	ud := `{"id":"` + user + `"}`
	c.send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sid, ud), "user_data": ud}})
	c.readUntil("pusher:signin_success")
}

func (c *client) readUntilOneOf(events ...string) frame {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		f := c.read()
		for _, e := range events {
			if f.Event == e {
				return f
			}
		}
	}
	c.t.Fatalf("none of %v", events)
	return frame{}
}

func TestUserAuthenticationTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	cases := []struct {
		name   string
		enable bool
		act    func(c *client, app *pusher.App, sid string)
		closed bool
	}{
		{"idle connection is closed", true, func(*client, *pusher.App, string) {}, true},
		{"public subscription does not authorize", true, func(c *client, _ *pusher.App, _ string) {
			c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
			c.readUntil("pusher_internal:subscription_succeeded")
		}, true},
		{"failed private subscription does not authorize", true, func(c *client, _ *pusher.App, _ string) {
			c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": "k:bad"}})
			c.readUntil("pusher:subscription_error")
		}, true},
		{"signin authorizes", true, func(c *client, app *pusher.App, sid string) { signin(c, app, sid, "7") }, false},
		{"private subscription authorizes", true, func(c *client, app *pusher.App, sid string) {
			if f := subscribeSigned(c, app, sid, "private-x", ""); f.Event != "pusher_internal:subscription_succeeded" {
				c.t.Fatalf("%+v", f)
			}
		}, false},
		{"presence subscription authorizes", true, func(c *client, app *pusher.App, sid string) {
			if f := subscribeSigned(c, app, sid, "presence-x", `{"user_id":"7"}`); f.Event != "pusher_internal:subscription_succeeded" {
				c.t.Fatalf("%+v", f)
			}
		}, false},
		{"disabled: idle connection stays", false, func(*client, *pusher.App, string) {}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s",
				EnableUserAuthentication: tc.enable, UserAuthenticationTimeout: timeout}}})
			c, sid := f.dial(t)
			tc.act(c, f.app, sid)
			if tc.closed {
				start := time.Now()
				if code := errorCode(t, c.readUntil("pusher:error")); code != 4009 {
					t.Fatalf("pusher:error %d, want 4009", code)
				}
				if code := c.closeCode(); code != 4009 {
					t.Fatalf("close %d, want 4009", code)
				}
				if time.Since(start) > timeout+2*time.Second {
					t.Fatalf("closed after %v", time.Since(start))
				}
				return
			}
			time.Sleep(2 * timeout)
			c.quiet()
		})
	}
}

func TestUserAuthenticationTimeoutDefault(t *testing.T) {
	apps, err := pusher.ParseApps([]byte(`apps: [{id: a, key: k, secret: s, enable_user_authentication: true}]`), ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := newFull(t, fullOpts{apps: apps})
	if f.app.UserAuthenticationTimeout != 30*time.Second {
		t.Fatalf("default timeout %v", f.app.UserAuthenticationTimeout)
	}
}

func TestMaxConnectionsPerApp(t *testing.T) {
	cases := []struct {
		limit, open int
		refused     bool
	}{
		{limit: 0, open: 5},
		{limit: -1, open: 5},
		{limit: 3, open: 3, refused: true},
		{limit: 1, open: 1, refused: true},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.limit), func(t *testing.T) {
			f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s", MaxConnections: tc.limit},
				{ID: "b", Key: "kb", Secret: "s"}}})
			fx := &fixture{srv: f.srv}
			open := make([]*client, 0, tc.open)
			for i := 0; i < tc.open; i++ {
				c, _ := f.dial(t)
				open = append(open, c)
			}
			for _, c := range open {
				c.quiet()
			}
			if !tc.refused {
				return
			}
			over := fx.dial(t, "k")
			if code := errorCode(t, over.read()); code != 4004 {
				t.Fatalf("pusher:error %d, want 4004", code)
			}
			if code := over.closeCode(); code != 4004 {
				t.Fatalf("close %d, want 4004", code)
			}
			// Other apps are not limited by it.
			fx.dial(t, "kb").established()
			// The count is released when a connection closes.
			_ = open[0].ws.Close()
			deadline := time.Now().Add(5 * time.Second)
			for f.node.Occupancy.Count("pusher-conns/a") >= tc.limit {
				if time.Now().After(deadline) {
					t.Fatalf("count not released: %d", f.node.Occupancy.Count("pusher-conns/a"))
				}
				time.Sleep(10 * time.Millisecond)
			}
			fx.dial(t, "k").established()
			if n := f.node.Occupancy.Count("pusher-conns/a"); n != tc.limit {
				t.Fatalf("count %d, want %d", n, tc.limit)
			}
		})
	}
}

func TestDisabledApp(t *testing.T) {
	f := newFull(t, fullOpts{db: dbtest.SQLite(t), apps: []pusher.App{{ID: "app-id", Key: "app-key", Secret: "app-secret"},
		{ID: "off", Key: "off-key", Secret: "off-secret", Enabled: boolp(false)},
		{ID: "on", Key: "on-key", Secret: "on-secret", Enabled: boolp(true)}}})
	fx := &fixture{srv: f.srv}
	c := fx.dial(t, "off-key")
	if code := errorCode(t, c.read()); code != 4003 {
		t.Fatalf("pusher:error %d, want 4003", code)
	}
	if code := c.closeCode(); code != 4003 {
		t.Fatalf("close %d, want 4003", code)
	}
	fx.dial(t, "on-key").established()

	off, on := *f, *f
	off.app = &pusher.App{ID: "off", Key: "off-key"}
	on.app = &pusher.App{ID: "on", Key: "on-key"}
	ev := map[string]any{"name": "e", "channel": "news", "data": "{}"}
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/apps/off/events", ev},
		{"POST", "/apps/off/batch_events", map[string]any{"batch": []any{ev}}},
		{"GET", "/apps/off/channels", nil},
		{"GET", "/apps/off/channels/news", nil},
		{"GET", "/apps/off/channels/presence-x/users", nil},
		{"POST", "/apps/off/users/1/terminate_connections", map[string]any{}},
	} {
		st, body := off.api(t, tc.method, tc.path, nil, tc.body, "off-secret")
		e, _ := body["error"].(map[string]any)
		if st != 403 || e == nil || !strings.Contains(e["message"].(string), "disabled") {
			t.Errorf("%s %s: %d %v, want 403 JSON error", tc.method, tc.path, st, body)
		}
	}
	if st, body := on.api(t, "POST", "/apps/on/events", nil, ev, "on-secret"); st != 200 {
		t.Fatalf("enabled app: %d %v", st, body)
	}
}

func TestClientEventNameLength(t *testing.T) {
	name := func(n int) string { return "client-" + strings.Repeat("x", n-len("client-")) }
	for _, tc := range []struct {
		limit   int // app's max_event_name_length (0: default 200)
		length  int
		refused bool
	}{
		{20, 20, false},
		{20, 21, true},
		{20, 300, true},
		{0, 200, false},
		{0, 201, true},
		{300, 250, false}, // longer than the frame bound, allowed by the app
		{300, 301, true},
	} {
		t.Run(strconv.Itoa(tc.limit)+"/"+strconv.Itoa(tc.length), func(t *testing.T) {
			f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s", MaxEventNameLength: tc.limit}}})
			a, sa := f.dial(t)
			b, sb := f.dial(t)
			subscribeSigned(a, f.app, sa, "private-room", "")
			subscribeSigned(b, f.app, sb, "private-room", "")
			ev := name(tc.length)
			a.send(map[string]any{"event": ev, "channel": "private-room", "data": map[string]any{}})
			if tc.refused {
				got := a.read()
				if code := errorCode(t, got); code != 4301 || !strings.Contains(got.dataObject(t)["message"].(string), "too long") {
					t.Fatalf("code %d %s", code, got.Data)
				}
				b.quiet()
				return
			}
			if got := b.read(); got.Event != ev {
				t.Fatalf("%+v", got)
			}
			a.quiet()
		})
	}
}

// nextCount reads frames until a subscription_count and returns its count.
func (c *client) nextCount() int {
	c.t.Helper()
	return int(c.readUntil("pusher_internal:subscription_count").dataObject(c.t)["subscription_count"].(float64))
}

// awaitCount reads subscription_count frames until one says want; it
// returns the counts seen before.
func (c *client) awaitCount(want int) []int {
	c.t.Helper()
	var seen []int
	for {
		n := c.nextCount()
		if n == want {
			return seen
		}
		seen = append(seen, n)
	}
}

func TestSubscriptionCountCoalescedNotDropped(t *testing.T) {
	const window = time.Second
	f := newFull(t, fullOpts{apps: []pusher.App{{ID: "a", Key: "k", Secret: "s", SubscriptionCount: true}},
		tweak: func(c *pusher.Config) { c.SubscriptionCountThrottle = window }})
	sub := func() *client {
		c, _ := f.dial(t)
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "room"}})
		c.readUntil("pusher_internal:subscription_succeeded")
		return c
	}
	var cs []*client
	for i := 0; i < 100; i++ {
		cs = append(cs, sub())
	}
	for _, c := range cs {
		c.awaitCount(100) // at most 100: sent at once
	}
	// 101 and 102 come within the window of the broadcast of 100: one
	// broadcast at the window's end carries 102, nobody sees 101.
	start := time.Now()
	cs = append(cs, sub(), sub())
	for i, c := range cs {
		if seen := c.awaitCount(102); len(seen) != 0 {
			t.Fatalf("client %d saw %v before 102", i, seen)
		}
	}
	// Nobody seeing 101 is the coalescing; 102 comes by the window's end.
	// (No lower bound: the window opened with the broadcast of 100, and on
	// a loaded machine most of it may pass while the 100 clients read it.)
	if d := time.Since(start); d > window+2*time.Second {
		t.Fatalf("102 arrived after %v, want it by the end of the %v window", d, window)
	}
	// A leave within the next window is not dropped either.
	cs[0].send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "room"}})
	for i, c := range cs[1:] {
		if seen := c.awaitCount(101); len(seen) != 0 {
			t.Fatalf("client %d saw %v before 101", i+1, seen)
		}
	}
	// Below the threshold again: immediate once the window has passed.
	time.Sleep(window)
	cs[1].send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "room"}})
	start = time.Now()
	cs[2].awaitCount(100)
	if d := time.Since(start); d > window/2 {
		t.Fatalf("100 took %v", d)
	}
}

func TestSendToUserBeforeSubscription(t *testing.T) {
	f := newFull(t, fullOpts{db: dbtest.SQLite(t)})
	send := func(name string) {
		t.Helper()
		if st, body := f.api(t, "POST", "/apps/app-id/events", nil,
			map[string]any{"name": name, "channels": []string{"#server-to-user-42"}, "data": `{"x":1}`}, "app-secret"); st != 200 {
			t.Fatalf("sendToUser: %d %v", st, body)
		}
	}
	signedIn, s1 := f.dial(t)
	signin(signedIn, f.app, s1, "42")
	second, s2 := f.dial(t)
	signin(second, f.app, s2, "42")
	other, s3 := f.dial(t)
	signin(other, f.app, s3, "43")
	anon, _ := f.dial(t)

	send("first") // nobody subscribed to #server-to-user-42
	for _, c := range []*client{signedIn, second} {
		if got := c.readUntil("first"); got.Channel != "#server-to-user-42" || string(got.Data) != `"{\"x\":1}"` {
			t.Fatalf("%+v %s", got, got.Data)
		}
	}
	// Subscribed now: still exactly once.
	signedIn.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-42"}})
	signedIn.readUntil("pusher_internal:subscription_succeeded")
	send("second")
	for _, c := range []*client{signedIn, second} {
		c.readUntil("second")
		c.quiet()
	}
	other.quiet()
	anon.quiet()
	// socket_id exclusion still applies.
	if st, _ := f.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "third",
		"channel": "#server-to-user-42", "data": "{}", "socket_id": s1}, "app-secret"); st != 200 {
		t.Fatal(st)
	}
	second.readUntil("third")
	signedIn.quiet()
}

func TestPresenceChannelSubscriptionCountInfo(t *testing.T) {
	f := newFull(t, fullOpts{db: dbtest.SQLite(t)})
	for _, user := range []string{"1", "1", "2"} {
		c, sid := f.dial(t)
		if got := subscribeSigned(c, f.app, sid, "presence-chat.x", `{"user_id":"`+user+`"}`); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("%+v", got)
		}
	}
	for _, tc := range []struct {
		info string
		want map[string]any
	}{
		{"subscription_count", map[string]any{"occupied": true, "subscription_count": 3.0}},
		{"user_count", map[string]any{"occupied": true, "user_count": 2.0}},
		{"subscription_count,user_count", map[string]any{"occupied": true, "subscription_count": 3.0, "user_count": 2.0}},
	} {
		st, body := f.api(t, "GET", "/apps/app-id/channels/presence-chat.x", map[string][]string{"info": {tc.info}}, nil, "app-secret")
		got, _ := json.Marshal(body)
		want, _ := json.Marshal(tc.want)
		if st != 200 || string(got) != string(want) {
			t.Errorf("info=%s: %d %s, want 200 %s", tc.info, st, got, want)
		}
	}
}

func TestAppFieldsRejectedAtStartup(t *testing.T) {
	signer, _ := domain.NewSigner("s")
	for _, tc := range []struct {
		app pusher.App
		msg string
	}{
		{pusher.App{ID: "a", Key: "k", Secret: "s", MaxConnections: -2}, "max_connections"},
		{pusher.App{ID: "a", Key: "k", Secret: "s", UserAuthenticationTimeout: -time.Second}, "negative"},
	} {
		node := newNode()
		if _, err := pusher.New(node, pusher.Config{Apps: []pusher.App{tc.app}, Signer: signer}); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want an error about %s", tc.app, err, tc.msg)
		}
	}
}

func newNode() *gateway.Node {
	return gateway.NewNode(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}
