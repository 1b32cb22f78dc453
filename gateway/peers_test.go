package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memBus is the Bus seam in one process: every message reaches every other
// subscriber, in order, on its own goroutine (as a NATS subscription).
// The cluster tests in cmd/switchboard run the same protocol over real NATS.
type memBus struct {
	mu   sync.Mutex
	subs []chan []byte
	drop atomic.Int32 // messages to lose before delivering again
}

type memPort struct {
	bus *memBus
	in  chan []byte
}

func (b *memBus) port() *memPort { return &memPort{bus: b, in: make(chan []byte, 1024)} }

func (p *memPort) Publish(data []byte) error {
	if p.bus.drop.Load() > 0 {
		p.bus.drop.Add(-1)
		return nil
	}
	p.bus.mu.Lock()
	subs := p.bus.subs
	p.bus.mu.Unlock()
	for _, s := range subs {
		if s != p.in {
			s <- append([]byte(nil), data...)
		}
	}
	return nil
}

func (p *memPort) Subscribe(fn func([]byte)) error {
	p.bus.mu.Lock()
	p.bus.subs = append(p.bus.subs, p.in)
	p.bus.mu.Unlock()
	go func() {
		for b := range p.in {
			fn(b)
		}
	}()
	return nil
}

type presenceEvent struct {
	hub, user           string
	joined, userChanged bool
}

func clusterNode(t *testing.T, bus *memBus, id string) (*Node, chan presenceEvent) {
	t.Helper()
	n := NewNode(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := make(chan presenceEvent, 100)
	n.OnRemotePresence(func(hub, _ string, m Member, joined, userChanged bool) {
		events <- presenceEvent{hub, m.UserID, joined, userChanged}
	})
	if err := n.EnableCluster(id, bus.port()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.CloseCluster)
	return n, events
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 8 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nextEvent(t *testing.T, ch chan presenceEvent) presenceEvent {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(8 * time.Second):
		t.Fatal("no presence event within 8 s")
		return presenceEvent{}
	}
}

func TestClusterPresenceOncePerUser(t *testing.T) {
	bus := &memBus{}
	a, aEvents := clusterNode(t, bus, "a")
	b, bEvents := clusterNode(t, bus, "b")
	const hub = "presence-room"
	if first := a.Presence.Join(hub, "a1", Member{UserID: "u1"}); !first {
		t.Fatal("first connection of u1 anywhere: first = false")
	}
	if e := nextEvent(t, bEvents); e != (presenceEvent{hub, "u1", true, true}) {
		t.Fatalf("b heard %+v", e)
	}
	if !b.Presence.HasUser(hub, "u1") || len(b.Presence.Members(hub)) != 1 {
		t.Fatalf("b does not see u1: %+v", b.Presence.Members(hub))
	}
	// u1's second tab, on b: not a new member anywhere.
	if first := b.Presence.Join(hub, "b1", Member{UserID: "u1"}); first {
		t.Fatal("u1 already present on a: first = true on b")
	}
	if e := nextEvent(t, aEvents); e.userChanged {
		t.Fatalf("a heard u1's second connection as a new member: %+v", e)
	}
	if clients, users := b.Presence.Count(hub); clients != 2 || users != 1 {
		t.Fatalf("count on b = %d clients %d users, want 2 and 1", clients, users)
	}
	if _, last, _ := a.Presence.Leave(hub, "a1"); last {
		t.Fatal("u1 still on b: last = true on a")
	}
	if e := nextEvent(t, bEvents); e.userChanged {
		t.Fatalf("b heard u1 leave while its own connection stays: %+v", e)
	}
	// The last connection leaves: nobody hears it before the grace (a
	// reload would be back by then), both nodes hear it after.
	left := time.Now()
	if _, last, _ := b.Presence.Leave(hub, "b1"); last {
		t.Fatal("last = true at once: the departure must wait for the grace")
	}
	if e := nextEvent(t, aEvents); e != (presenceEvent{hub, "u1", false, false}) {
		t.Fatalf("a heard %+v, want the connection's leave only", e)
	}
	for _, ch := range []chan presenceEvent{aEvents, bEvents} {
		if e := nextEvent(t, ch); e != (presenceEvent{hub, "u1", false, true}) {
			t.Fatalf("heard %+v, want u1 gone", e)
		}
	}
	if d := time.Since(left); d < PresenceGrace-100*time.Millisecond {
		t.Fatalf("departure announced after %v, before the grace", d)
	}
}

// A reload within the grace (the last connection leaves on one node, the
// user's new one joins on another) announces nothing to anyone.
func TestClusterPresenceReloadDoesNotFlap(t *testing.T) {
	bus := &memBus{}
	a, aEvents := clusterNode(t, bus, "a")
	b, bEvents := clusterNode(t, bus, "b")
	c, cEvents := clusterNode(t, bus, "c")
	const hub = "presence-room"
	c.Presence.Join(hub, "c1", Member{UserID: "watcher"})
	nextEvent(t, aEvents)
	nextEvent(t, bEvents)
	a.Presence.Join(hub, "a1", Member{UserID: "u"})
	nextEvent(t, bEvents)
	nextEvent(t, cEvents)
	if _, last, _ := a.Presence.Leave(hub, "a1"); last {
		t.Fatal("last = true during the grace")
	}
	if first := b.Presence.Join(hub, "b1", Member{UserID: "u"}); first {
		t.Fatal("the reloaded tab counts as a new member")
	}
	deadline := time.After(PresenceGrace + 1500*time.Millisecond)
	for {
		select {
		case e := <-cEvents:
			if e.userChanged {
				t.Fatalf("the watcher's node announced %+v during a reload", e)
			}
		case <-deadline:
			return
		}
	}
}

func TestClusterUserLimit(t *testing.T) {
	bus := &memBus{}
	a, _ := clusterNode(t, bus, "a")
	b, _ := clusterNode(t, bus, "b")
	for i := 0; i < 3; i++ {
		if !a.Users.AcquireMax("u", fmt.Sprint("a", i), 4) {
			t.Fatal("under the limit")
		}
	}
	eventually(t, "b counts a's connections", func() bool { return b.Users.Count("u") == 3 })
	if !b.Users.AcquireMax("u", "b0", 4) {
		t.Fatal("4th connection refused")
	}
	if b.Users.AcquireMax("u", "b1", 4) {
		t.Fatal("5th connection across two nodes accepted (limit 4)")
	}
	a.Users.Release("u", "a0")
	eventually(t, "b sees the release", func() bool { return b.Users.Count("u") == 3 })
	if !b.Users.AcquireMax("u", "b1", 4) {
		t.Fatal("refused after a connection on a closed")
	}
}

// A node that dies (no goodbye, no heartbeat) takes its members with it
// after PeerTTL; a node that starts late learns the others' state; a lost
// message is repaired from the sender's state.
func TestClusterDeadLateAndLost(t *testing.T) {
	bus := &memBus{}
	a, _ := clusterNode(t, bus, "a")
	b, bEvents := clusterNode(t, bus, "b")
	const hub = "presence-x"
	a.Presence.Join(hub, "a1", Member{UserID: "ua"})
	nextEvent(t, bEvents)

	// Late: c starts after a's member joined.
	c, _ := clusterNode(t, bus, "c")
	eventually(t, "c learns a's member from its state", func() bool { return c.Presence.HasUser(hub, "ua") })

	// Lost: one change from a never arrives; the next heartbeat repairs it.
	bus.drop.Store(1)
	a.Presence.Join(hub, "a2", Member{UserID: "ub"})
	eventually(t, "b repairs the lost join", func() bool { return b.Presence.HasUser(hub, "ub") })

	// Dead: a stops without a goodbye.
	a.Peers.closer.Do(func() { close(a.Peers.stop) })
	start := time.Now()
	eventually(t, "b forgets dead a's members", func() bool { return !b.Presence.HasUser(hub, "ua") && !b.Presence.HasUser(hub, "ub") })
	if d := time.Since(start); d > PeerTTL+2*peerBeat {
		t.Fatalf("forgot after %v, want within %v", d, PeerTTL+2*peerBeat)
	}
	gone := map[string]bool{}
	for len(gone) < 2 {
		e := nextEvent(t, bEvents)
		if !e.joined && e.userChanged {
			gone[e.user] = true
		}
	}
}

func TestClusterClientPublication(t *testing.T) {
	bus := &memBus{}
	a, _ := clusterNode(t, bus, "a")
	b, _ := clusterNode(t, bus, "b")
	got := make(chan *Message, 1)
	b.Intercept(func(m *Message) { got <- m })
	a.Broadcast(&Message{Channel: "room", Event: "client-typing", Data: []byte(`{"x":1}`), ExceptConn: "a1"})
	select {
	case m := <-got:
		if m.Event != "client-typing" || string(m.Data) != `{"x":1}` || m.ExceptConn != "a1" {
			t.Fatalf("b got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client publication did not reach the other node")
	}
}

// Subscription counts add up over the nodes, and listeners hear a channel
// become occupied and vacated cluster-wide, whichever node changed it.
func TestClusterOccupancy(t *testing.T) {
	bus := &memBus{}
	a, _ := clusterNode(t, bus, "a")
	b, _ := clusterNode(t, bus, "b")
	changes := make(chan OccupancyChange, 10)
	b.Occupancy.OnChange(func(c OccupancyChange) { changes <- c })
	a.Occupancy.Add("k", 1)
	if c := <-changes; !c.Remote || !c.Occupied || c.Count != 1 {
		t.Fatalf("b heard %+v, want remote occupied 1", c)
	}
	if n := b.Occupancy.Add("k", 2); n != 3 {
		t.Fatalf("count after b's two = %d, want 3", n)
	}
	if c := <-changes; c.Remote || c.Occupied || c.Count != 3 {
		t.Fatalf("b heard %+v, want local 3", c)
	}
	eventually(t, "a counts 3", func() bool { return a.Occupancy.Count("k") == 3 })
	if got := a.Occupancy.Occupied(""); got["k"] != 3 {
		t.Fatalf("occupied on a: %v", got)
	}
	b.Occupancy.Add("k", -2)
	<-changes
	a.Occupancy.Add("k", -1)
	if c := <-changes; !c.Remote || !c.Vacated || c.Count != 0 {
		t.Fatalf("b heard %+v, want remote vacated", c)
	}
}
