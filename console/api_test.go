package console_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/console"
	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func streamPath(token string) string { return "/console/api/stream?token=" + url.QueryEscape(token) }

// An event reaches the open page within a second, as delivered: channel,
// name, x-triggered-by, size, fan-out per protocol, payload; a page that
// comes back gets what it missed from the ring.
func TestStream(t *testing.T) {
	h := newHarness(t, nil)
	for i, p := range []gateway.Protocol{gateway.ProtoPusher, gateway.ProtoPusher, gateway.ProtoCentrifuge} {
		h.node.Hub.Subscribe("dashboard.project.demo.attendees", &protoSub{id: fmt.Sprint("c", i), proto: p})
	}
	session := h.adminSession()
	s := h.stream(streamPath(session), "")
	waitFor(t, time.Second, "the tap to turn on", h.node.Tap().Watching)
	env, _ := domain.NewEnvelope(domain.WithTrigger(t.Context(), domain.TriggeredBy{OperationID: "v1.project.attendees.store", RequestID: "abc123"}),
		domain.Scope{Project: "demo", Family: "attendees"}, rawEvent("AttendeeCreated", `{"first_name":"Jane"}`))
	start := time.Now()
	h.node.DispatchBatch([]domain.Envelope{env})
	l, m := s.next(t, time.Second, "the event", func(l console.LogLine) bool { return l.Kind == "event" })
	t.Logf("event in the stream after %s", time.Since(start))
	if l.Channel != "dashboard.project.demo.attendees" || l.Event != "AttendeeCreated" || l.Project != "demo" || l.ID != env.ID ||
		l.TriggeredBy == nil || l.TriggeredBy.RequestID != "abc123" || l.Size != len(env.Data) || *l.Reached != 3 ||
		l.Fanout["pusher"] != 2 || l.Fanout["centrifuge"] != 1 || l.Fanout["actioncable"] != 0 || m.id == "" {
		t.Fatalf("line %+v (id %q)", l, m.id)
	}
	var data map[string]any
	if err := json.Unmarshal(l.Data, &data); err != nil || data["first_name"] != "Jane" || data["x-triggered-by"] == nil {
		t.Fatalf("payload %s: %v", l.Data, err)
	}

	// A second event while the page is away, then it comes back.
	s.cancel()
	waitFor(t, time.Second, "the tap to turn off", func() bool { return !h.node.Tap().Watching() })
	h.node.DispatchBatch([]domain.Envelope{env}) // nobody watches: not in the log
	s2 := h.stream(streamPath(session), m.id)
	waitFor(t, time.Second, "the tap to turn on", h.node.Tap().Watching)
	h.node.Hub.Subscribe("chat-room-7-channel", &protoSub{id: "c9", proto: gateway.ProtoActionCable})
	got, _ := s2.next(t, time.Second, "a line", func(console.LogLine) bool { return true })
	if got.Kind != "subscribe" || got.Channel != "chat-room-7-channel" || got.Proto != "actioncable" || got.Conn != "c9" {
		t.Fatalf("after Last-Event-ID %s the page got %+v first (the ring should hold nothing newer)", m.id, got)
	}
	// From the start, the ring replays the first event.
	s3 := h.stream(streamPath(session), "")
	again, _ := s3.next(t, time.Second, "the replayed event", func(l console.LogLine) bool { return l.Kind == "event" })
	if again.ID != env.ID || again.Seq != l.Seq {
		t.Fatalf("replay %+v, want seq %d", again, l.Seq)
	}
}

type rawEventT struct {
	name string
	data json.RawMessage
}

func (e rawEventT) Name() string                 { return e.name }
func (e rawEventT) MarshalJSON() ([]byte, error) { return e.data, nil }

func rawEvent(name, data string) domain.Event { return rawEventT{name, json.RawMessage(data)} }

// Connection lines: connect and disconnect with its code, auth failures.
func TestStreamConnectionLines(t *testing.T) {
	h := newHarness(t, nil)
	s := h.stream(streamPath(h.adminSession()), "")
	waitFor(t, time.Second, "the tap to turn on", h.node.Tap().Watching)
	r := gateway.NewRegistry[*fakeConn]()
	w := gateway.NewWriter(gateway.WriterConfig{Write: func([][]byte) error { return nil }})
	r.Add("123.456", &fakeConn{w: w})
	<-w.CloseWith(gateway.CloseFrame(4200, "Server is restarting"))
	r.Remove("123.456")
	h.node.ReportAuthFailure(gateway.AuthFailure{Proto: gateway.ProtoPusher, Door: gateway.DoorSubscribe, Conn: "123.456", Reason: "bad signature"})
	for _, tc := range []struct {
		kind string
		ok   func(l console.LogLine) bool
	}{
		{"connect", func(l console.LogLine) bool {
			return l.Proto == "pusher" && l.Conn == "123.456" && l.Remote == "192.0.2.7:1"
		}},
		{"disconnect", func(l console.LogLine) bool {
			return l.Code == 4200 && l.Reason == "Server is restarting" && l.By == "server"
		}},
		{"auth_failure", func(l console.LogLine) bool { return l.Door == "subscribe" && l.Reason == "bad signature" }},
	} {
		l, _ := s.next(t, time.Second, tc.kind, func(l console.LogLine) bool { return l.Kind == tc.kind })
		if !tc.ok(l) {
			t.Errorf("%s: %+v", tc.kind, l)
		}
	}
}

type fakeConn struct{ w *gateway.Writer }

func (c *fakeConn) Describe() gateway.ConnDesc {
	return gateway.ConnDesc{Proto: gateway.ProtoPusher, Writer: c.w, Remote: "192.0.2.7:1"}
}

// A page that does not keep up loses lines, never events: deliveries go
// on at full speed, and the page is told how many lines it lost.
func TestSlowPageLosesLinesNotEvents(t *testing.T) {
	h := newHarness(t, func(c *console.Config) { c.StreamBuffer = 4 })
	sub := &protoSub{id: "c1", proto: gateway.ProtoPusher}
	h.node.Hub.Subscribe("dashboard.project.demo.attendees", sub)
	// A page that reads nothing while the events go out: the socket's
	// buffers fill, the stream's writes block, its queue overflows.
	req, _ := http.NewRequest("GET", h.srv.URL+streamPath(h.adminSession()), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	waitFor(t, time.Second, "the tap to turn on", h.node.Tap().Watching)
	big := `{"pad":"` + strings.Repeat("x", 12000) + `"}`
	env := domain.RawEnvelope("Big", domain.Scope{Project: "demo", Family: "attendees"}, json.RawMessage(big))
	const events = 2000
	start := time.Now()
	for range events {
		h.node.DispatchBatch([]domain.Envelope{env})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("%d dispatches took %s with a page that does not read", events, d)
	}
	if sub.got.Load() != events {
		t.Fatalf("the subscriber got %d of %d events", sub.got.Load(), events)
	}
	// Now the page reads: what it kept, then how many it lost.
	r := bufio.NewReader(res.Body)
	deadline := time.Now().Add(5 * time.Second)
	lines, lost := 0, uint64(0)
	for lost == 0 && time.Now().Before(deadline) {
		s, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(s), "data: ")
		if !ok {
			continue
		}
		var l console.LogLine
		if err := json.Unmarshal([]byte(data), &l); err != nil {
			t.Fatal(err)
		}
		switch l.Kind {
		case "event":
			lines++
		case "dropped":
			lost = l.Dropped
		}
	}
	if lost == 0 || lines >= events {
		t.Fatalf("the page read %d lines and was told of %d lost", lines, lost)
	}
	t.Logf("the page read %d lines, was told %d were lost", lines, lost)
}

// Nothing is watched while no page is open.
func TestTapOnlyWhileWatched(t *testing.T) {
	h := newHarness(t, nil)
	if h.node.Tap().Watching() {
		t.Fatal("the tap is on with no page open")
	}
	s := h.stream(streamPath(h.adminSession()), "")
	waitFor(t, time.Second, "the tap to turn on", h.node.Tap().Watching)
	s.cancel()
	waitFor(t, time.Second, "the tap to turn off", func() bool { return !h.node.Tap().Watching() })
	// Close ends open streams (the server's Shutdown would wait for them).
	s = h.stream(streamPath(h.adminSession()), "")
	waitFor(t, time.Second, "the tap to turn on", h.node.Tap().Watching)
	h.c.Close()
	waitFor(t, time.Second, "the stream to end", func() bool {
		select {
		case _, open := <-s.msgs:
			return !open
		default:
			return false
		}
	})
	if h.node.Tap().Watching() {
		t.Fatal("the tap is on after Close")
	}
}

// A test event goes through Publish (the outbox) with the request's
// x-triggered-by, and is refused with 4xx for any bad input.
func TestTestEvent(t *testing.T) {
	h := newHarness(t, nil)
	session := h.adminSession()
	a := h.call("POST", "/console/api/events", session, `{"channel":"pusher:app-id:console-test","event":"hello","data":{"n":1}}`,
		"X-Request-ID", "req-console-1")
	if a.status != http.StatusCreated {
		t.Fatalf("test event: %s %s", a, a.body)
	}
	var te console.TestEvent
	_ = json.Unmarshal(a.body, &te)
	h.mu.Lock()
	env := h.published[len(h.published)-1]
	h.mu.Unlock()
	if te.ID != env.ID || te.TriggeredBy.RequestID != "req-console-1" || te.TriggeredBy.OperationID != console.OpTestEvent ||
		env.Name != "hello" || len(env.Scope.Channels) != 1 || env.Scope.Channels[0] != "pusher:app-id:console-test" {
		t.Fatalf("answer %+v, envelope %+v", te, env)
	}
	var data map[string]any
	if err := json.Unmarshal(env.Data, &data); err != nil || data["n"] != float64(1) || data["x-triggered-by"] == nil {
		t.Fatalf("data %s", env.Data)
	}
	if a := h.call("POST", "/console/api/events", session, `{"channel":"pusher:app-id:c"}`); a.status != http.StatusCreated {
		t.Fatalf("defaults: %s %s", a, a.body)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"channel":`, "400 bad_request"},
		{"no channel", `{"event":"x"}`, "422 validation_failed"},
		{"a space in the channel", `{"channel":"a b"}`, "422 validation_failed"},
		{"a control character", `{"channel":"a\u0001b"}`, "422 validation_failed"},
		{"a long channel", `{"channel":"` + strings.Repeat("c", 201) + `"}`, "422 validation_failed"},
		{"a protocol event", `{"channel":"c","event":"pusher:subscribe"}`, "422 validation_failed"},
		{"an internal event", `{"channel":"c","event":"pusher_internal:member_added"}`, "422 validation_failed"},
		{"a long event", `{"channel":"c","event":"` + strings.Repeat("e", 201) + `"}`, "422 validation_failed"},
		{"data not an object", `{"channel":"c","data":[1]}`, "422 validation_failed"},
		{"data a string", `{"channel":"c","data":"x"}`, "422 validation_failed"},
		{"data too big", `{"channel":"c","data":{"p":"` + strings.Repeat("x", 11000) + `"}}`, "422 validation_failed"},
		{"a NUL", `{"channel":"c\u0000"}`, "422 validation_failed"},
	} {
		if got := h.call("POST", "/console/api/events", session, tc.body); got.String() != tc.want {
			t.Errorf("%s: %s, want %s (%s)", tc.name, got, tc.want, got.body)
		}
	}
}

// The overview and the channel list describe the node; presence lists a
// channel's members.
func TestOverviewChannelsPresence(t *testing.T) {
	h := newHarness(t, nil)
	session := h.adminSession()
	for i := range 3 {
		h.node.Hub.Subscribe("dashboard.project.demo.attendees", &protoSub{id: fmt.Sprint("a", i)})
	}
	h.node.Hub.Subscribe("pusher:app-id:presence-lobby", &protoSub{id: "b1"})
	h.node.Presence.Join("pusher:app-id:presence-lobby", "b1", gateway.Member{UserID: "42", Info: json.RawMessage(`{"name":"Jane"}`)})

	var o console.Overview
	if a := h.call("GET", "/console/api/overview", session, ""); a.status != 200 || json.Unmarshal(a.body, &o) != nil {
		t.Fatalf("overview: %s %s", a, a.body)
	}
	if o.Channels != 2 || o.Subscriptions != 4 || o.Relay == nil || *o.Relay.Backlog != 3 || o.Relay.LagMS != 1.5 ||
		o.Relay.Events != 7 || o.Webhooks.Pending != 1 || o.Webhooks.Failed != 1 || len(o.Nodes) != 1 || o.Cluster ||
		o.Console.Who != "Staff" {
		t.Fatalf("overview %s", mustJSON(o))
	}
	if _, ok := o.Connections["actioncable"]; !ok {
		t.Fatalf("connections %v lack a protocol", o.Connections)
	}

	for _, tc := range []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"dashboard.project.demo.attendees", "pusher:app-id:presence-lobby"}, 2},
		{"?sort=subscribers", []string{"dashboard.project.demo.attendees", "pusher:app-id:presence-lobby"}, 2},
		{"?q=LOBBY", []string{"pusher:app-id:presence-lobby"}, 1},
		{"?limit=1&sort=name", []string{"dashboard.project.demo.attendees"}, 2},
		{"?q=nothing", []string{}, 0},
	} {
		var l console.ChannelList
		a := h.call("GET", "/console/api/channels"+tc.query, session, "")
		if err := json.Unmarshal(a.body, &l); err != nil || a.status != 200 {
			t.Fatalf("channels%s: %s %s", tc.query, a, a.body)
		}
		names := []string{}
		for _, c := range l.Data {
			names = append(names, c.Name)
		}
		if fmt.Sprint(names) != fmt.Sprint(tc.want) || l.Total != tc.total {
			t.Errorf("channels%s: %v (total %d), want %v (%d)", tc.query, names, l.Total, tc.want, tc.total)
		}
		for _, c := range l.Data {
			if c.Name == "pusher:app-id:presence-lobby" && (c.App != "app-id" || c.Members != 1 || c.Subscribers != 1) {
				t.Errorf("lobby %+v", c)
			}
		}
	}
	var p console.PresenceList
	a := h.call("GET", "/console/api/presence?channel=pusher:app-id:presence-lobby", session, "")
	if err := json.Unmarshal(a.body, &p); err != nil || len(p.Members) != 1 || p.Members[0].UserID != "42" || p.Connections != 1 {
		t.Fatalf("presence: %s %s", a, a.body)
	}
	for _, tc := range []struct{ path, want string }{
		{"/console/api/channels?sort=size", "422 validation_failed"},
		{"/console/api/channels?limit=0", "422 validation_failed"},
		{"/console/api/channels?limit=abc", "422 validation_failed"},
		{"/console/api/presence", "422 validation_failed"},
		{"/console/api/presence?channel=" + strings.Repeat("x", 300), "422 validation_failed"},
		{"/console/api/presence?channel=nobody-here", "200"},
	} {
		if got := h.call("GET", tc.path, session, ""); got.String() != tc.want {
			t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
		}
	}
}

// The webhook queue as the admin API reads it, and its retry button.
func TestWebhooks(t *testing.T) {
	h := newHarness(t, nil)
	session := h.adminSession()
	var l domain.List[webhooks.Delivery]
	a := h.call("GET", "/console/api/webhooks?status=failed", session, "")
	if err := json.Unmarshal(a.body, &l); err != nil || len(l.Data) != 1 || l.Data[0].ID != 1 {
		t.Fatalf("failed deliveries: %s %s", a, a.body)
	}
	if a := h.call("POST", "/console/api/webhooks/1/retry", session, ""); a.status != 200 || h.hooks.woken.Load() != 1 {
		t.Fatalf("retry: %s %s (woken %d)", a, a.body, h.hooks.woken.Load())
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/console/api/webhooks?status=lost", "422 validation_failed"},
		{"GET", "/console/api/webhooks?limit=1000", "422 validation_failed"},
		{"POST", "/console/api/webhooks/99/retry", "404 not_found"},
		{"POST", "/console/api/webhooks/abc/retry", "404 not_found"},
	} {
		if got := h.call(tc.method, tc.path, session, ""); got.String() != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// memBus joins the consoles of a cluster in memory: each message reaches
// every subscriber (the sender's too, as NATS does).
type memBus struct {
	mu   sync.Mutex
	subs []func([]byte)
}

func (b *memBus) Publish(data []byte) error {
	b.mu.Lock()
	subs := append([]func([]byte){}, b.subs...)
	b.mu.Unlock()
	for _, fn := range subs {
		fn(append([]byte(nil), data...))
	}
	return nil
}

func (b *memBus) Subscribe(fn func([]byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, fn)
	return nil
}

// In cluster mode a page sees the other nodes' lines, marked with the
// node, and their state; their taps turn on only while it watches.
func TestCluster(t *testing.T) {
	bus := &memBus{}
	a := newHarness(t, func(c *console.Config) { c.NodeID, c.Bus = "node-a", bus })
	b := newHarness(t, func(c *console.Config) { c.NodeID, c.Bus = "node-b", bus })
	// Both nodes of this process share its tap (gateway.processTap), so
	// node b's lines are this process's lines, relayed with b's name.
	s := a.stream(streamPath(a.adminSession()), "")
	// The page's lease reaches b at once, and b answers with its state.
	var o console.Overview
	waitFor(t, 2*time.Second, "node-b in the overview", func() bool {
		ans := a.call("GET", "/console/api/overview", a.admin(), "")
		_ = json.Unmarshal(ans.body, &o)
		return len(o.Nodes) == 2
	})
	if !o.Cluster || o.Node != "node-a" || o.Nodes[0].ID != "node-a" || o.Nodes[1].ID != "node-b" {
		t.Fatalf("overview nodes %s", mustJSON(o.Nodes))
	}
	b.node.Hub.Subscribe("chat-room-7-channel", &protoSub{id: "on-b", proto: gateway.ProtoCentrifuge})
	fromB, _ := s.next(t, 2*time.Second, "a line from node-b", func(l console.LogLine) bool {
		return l.Node == "node-b" && l.Kind == "subscribe"
	})
	if fromB.Channel != "chat-room-7-channel" || fromB.Conn != "on-b" || fromB.Proto != "centrifuge" {
		t.Fatalf("line from b: %+v", fromB)
	}
	// b's state (every leaseEvery) lists the channel.
	waitFor(t, 3*time.Second, "b's channel in the list", func() bool {
		var l console.ChannelList
		_ = json.Unmarshal(a.call("GET", "/console/api/channels?q=chat-room-7", a.admin(), "").body, &l)
		return len(l.Data) == 1 && l.Data[0].Nodes["node-b"] == 1
	})
}
