package gateway_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"switchboard/domain"
	"switchboard/gateway"
)

type countSub struct {
	id string
	n  atomic.Int32
}

func (s *countSub) ConnID() string             { return s.id }
func (s *countSub) Deliver(m *gateway.Message) { s.n.Add(1) }

func TestHubFanOutAndExclusion(t *testing.T) {
	h := gateway.NewHub()
	a, b, c := &countSub{id: "a"}, &countSub{id: "b"}, &countSub{id: "c"}
	for _, s := range []*countSub{a, b, c} {
		if !h.Subscribe("ch", s) {
			t.Fatal("subscribe refused")
		}
	}
	if h.Subscribe("ch", a) {
		t.Fatal("duplicate subscription accepted")
	}
	if n := h.Publish(&gateway.Message{Channel: "ch", ExceptConn: "b"}); n != 2 {
		t.Fatalf("reached %d, want 2", n)
	}
	h.Unsubscribe("ch", c)
	h.Publish(&gateway.Message{Channel: "ch"})
	h.Publish(&gateway.Message{Channel: "other"})
	if a.n.Load() != 2 || b.n.Load() != 1 || c.n.Load() != 1 {
		t.Fatalf("deliveries a=%d b=%d c=%d", a.n.Load(), b.n.Load(), c.n.Load())
	}
	if got := h.Channels(""); len(got) != 1 || got[0] != "ch" || h.Count("ch") != 2 {
		t.Fatalf("channels %v count %d", got, h.Count("ch"))
	}
}

func TestMessageEncodedOncePerKey(t *testing.T) {
	m := &gateway.Message{Channel: "ch", Data: json.RawMessage(`{}`)}
	calls := 0
	enc := func(*gateway.Message) []byte { calls++; return []byte("x") }
	for i := 0; i < 100; i++ {
		m.Frame("pusher:private-ch", enc)
		m.Frame("cable:{\"channel\":\"X\"}", enc)
	}
	if calls != 2 {
		t.Fatalf("encoded %d times, want once per key", calls)
	}
}

func TestDispatchRoutesScope(t *testing.T) {
	n := gateway.NewNode(nil, nil)
	subs := map[string]*countSub{}
	for _, ch := range []string{"dashboard.project.demo.attendees", "notification-channel-42", "chat-room-7-channel", "x"} {
		subs[ch] = &countSub{id: ch}
		n.Hub.Subscribe(ch, subs[ch])
	}
	n.Dispatch(domain.Envelope{Name: "E", Scope: domain.Scope{Project: "demo", Family: "attendees",
		Members: []string{"42"}, Stream: domain.StreamNotifications, Room: "7"}})
	for ch, s := range subs {
		want := int32(1)
		if ch == "x" {
			want = 0
		}
		if s.n.Load() != want {
			t.Errorf("%s got %d", ch, s.n.Load())
		}
	}
}

func TestPresenceDedupByUser(t *testing.T) {
	p := gateway.NewPresence()
	if !p.Join("ch", "c1", gateway.Member{UserID: "42"}) {
		t.Fatal("first connection must be first")
	}
	if p.Join("ch", "c2", gateway.Member{UserID: "42"}) {
		t.Fatal("second connection of the same user is not a new member")
	}
	p.Join("ch", "c3", gateway.Member{UserID: "43"})
	if clients, users := p.Count("ch"); clients != 3 || users != 2 {
		t.Fatalf("count %d/%d", clients, users)
	}
	if _, last, _ := p.Leave("ch", "c1"); last {
		t.Fatal("user 42 still has c2")
	}
	if _, last, _ := p.Leave("ch", "c2"); !last {
		t.Fatal("c2 was user 42's last connection")
	}
	if m := p.Members("ch"); len(m) != 1 || m[0].UserID != "43" {
		t.Fatalf("members %v", m)
	}
}

func TestUserConnsLimit(t *testing.T) {
	u := gateway.NewUserConns(2)
	if !u.Acquire("42", "a") || !u.Acquire("42", "b") || !u.Acquire("42", "a") {
		t.Fatal("within the limit must be accepted (re-acquire is idempotent)")
	}
	if u.Acquire("42", "c") {
		t.Fatal("third connection accepted with limit 2")
	}
	u.Release("42", "a")
	if !u.Acquire("42", "c") {
		t.Fatal("slot not freed by release")
	}
}
