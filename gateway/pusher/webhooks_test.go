package pusher_test

import (
	"sync"
	"testing"
	"time"

	"switchboard/gateway/pusher"
	"switchboard/gateway/webhooks"
)

// hookSink records the webhook events the adapter emits (the durable
// queue behind it is tested in gateway/webhooks).
type hookSink struct {
	hook   webhooks.Hook // what the emitter would keep
	mu     sync.Mutex
	events []webhooks.Event
	counts []int // subscription_count events seen
}

func (s *hookSink) Emit(_ string, e webhooks.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Name == webhooks.SubscriptionCount && e.SubscriptionCount != nil {
		s.counts = append(s.counts, *e.SubscriptionCount)
	}
	if s.hook.Wants(e) {
		s.events = append(s.events, e)
	}
}

func (s *hookSink) take() []webhooks.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

func names(es []webhooks.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name+" "+e.Channel+" "+e.UserID)
	}
	return out
}

func TestWebhookEvents(t *testing.T) {
	hook := webhooks.Hook{URL: "http://example.test/hook", EventTypes: []string{"channel_occupied", "channel_vacated", "member_added",
		"member_removed", "client_event", "cache_miss"}}
	sink := &hookSink{hook: hook}
	app := pusher.App{ID: "app-id", Key: "app-key", Secret: "app-secret", SubscriptionCount: true, Webhooks: []webhooks.Hook{hook}}
	f := newFull(t, fullOpts{apps: []pusher.App{app}, tweak: func(c *pusher.Config) { c.Webhooks = sink }})

	// Occupied at the first subscription; vacated 3 s after the last one
	// leaves; a reload in between sends nothing.
	a, _ := f.dial(t)
	a.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	a.read()
	if got := names(sink.take()); len(got) != 1 || got[0] != "channel_occupied news " {
		t.Fatalf("after subscribe: %q", got)
	}
	a.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	time.Sleep(500 * time.Millisecond)
	a.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	a.read()
	time.Sleep(3500 * time.Millisecond)
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("a reload within the hold sent %q", names(got))
	}
	a.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	time.Sleep(1500 * time.Millisecond)
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("vacated before the hold: %q", names(got))
	}
	time.Sleep(2500 * time.Millisecond)
	if got := names(sink.take()); len(got) != 1 || got[0] != "channel_vacated news " {
		t.Fatalf("after the hold: %q", got)
	}

	// A cache channel with nothing cached: cache_miss (and occupied).
	a.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-empty"}})
	a.readUntil("pusher:cache_miss")
	time.Sleep(50 * time.Millisecond)
	got := names(sink.take())
	if len(got) != 2 || got[0] != "channel_occupied cache-empty " || got[1] != "cache_miss cache-empty " {
		t.Fatalf("cache channel: %q", got)
	}

	// Presence: member_added once for two connections of one user.
	const room = "presence-chat.lobby"
	tok := f.token(t, "7", "Ann")
	b, sb := f.dial(t)
	c, sc := f.dial(t)
	f.subscribeAuthed(t, b, sb, tok, room)
	f.subscribeAuthed(t, c, sc, tok, room)
	time.Sleep(50 * time.Millisecond)
	got = names(sink.take())
	if len(got) != 2 || got[0] != "channel_occupied "+room+" " || got[1] != "member_added "+room+" 7" {
		t.Fatalf("presence join: %q", got)
	}
	b.send(map[string]any{"event": "client-typing", "channel": room, "data": map[string]any{"typing": true}})
	time.Sleep(100 * time.Millisecond)
	evs := sink.take()
	if len(evs) != 1 || evs[0].Name != "client_event" || evs[0].Event != "client-typing" || evs[0].SocketID != sb ||
		evs[0].UserID != "7" || evs[0].Data != `{"typing":true}` {
		t.Fatalf("client event: %+v", evs)
	}
	// Both of the user's connections leave: member_removed once, after the
	// hold, with the channel's vacated.
	for _, x := range []*client{b, c} {
		x.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": room}})
	}
	time.Sleep(3500 * time.Millisecond)
	got = names(sink.take())
	if len(got) != 2 || !contains(got, "member_removed "+room+" 7") || !contains(got, "channel_vacated "+room+" ") {
		t.Fatalf("presence leave: %q", got)
	}
	sink.mu.Lock()
	counts := sink.counts
	sink.mu.Unlock()
	if len(counts) == 0 || counts[0] != 1 {
		t.Fatalf("subscription_count events %v, want the first to be 1", counts)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
