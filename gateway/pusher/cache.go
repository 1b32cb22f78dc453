package pusher

import (
	"encoding/json"
	"sync"
	"time"

	"switchboard/gateway"
)

// lastEvents remembers the last server event of each cache channel (cache-,
// private-cache-, presence-cache-, private-encrypted-cache-) for its app's
// TTL, even while nobody is subscribed, and replays it to new subscribers.
// Client events are never cached (Pusher does not cache them either).
type lastEvents struct {
	now func() time.Time

	mu        sync.Mutex
	entries   map[string]cachedEvent // by hub channel
	lastSweep time.Time
}

type cachedEvent struct {
	event   string
	data    json.RawMessage
	tags    map[string]string
	expires time.Time
	msg     *gateway.Message // the published message, to recognise it in the fan-out
}

// cacheSweepEvery bounds how often expired entries are swept; between
// sweeps an expired entry is only ignored.
const cacheSweepEvery = time.Minute

func newLastEvents(now func() time.Time) *lastEvents {
	return &lastEvents{now: now, entries: map[string]cachedEvent{}}
}

func (l *lastEvents) store(m *gateway.Message, ttl time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[m.Channel] = cachedEvent{event: m.Event, data: m.Data, tags: m.Tags, expires: now.Add(ttl), msg: m}
	if now.Sub(l.lastSweep) >= cacheSweepEvery {
		l.lastSweep = now
		for k, e := range l.entries {
			if !now.Before(e.expires) {
				delete(l.entries, k)
			}
		}
	}
}

// lookup returns hub's live entry, from memory or else from durable.
func (l *lastEvents) lookup(hub string, durable func(hub string) (*gateway.Message, time.Time)) (cachedEvent, bool) {
	if e, ok := l.get(hub); ok || durable == nil {
		return e, ok
	}
	m, expires := durable(hub)
	if m == nil {
		return cachedEvent{}, false
	}
	return cachedEvent{event: m.Event, data: m.Data, tags: m.Tags, expires: expires, msg: m}, true
}

// get returns hub's live entry.
func (l *lastEvents) get(hub string) (cachedEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.getLocked(hub)
}

func (l *lastEvents) getLocked(hub string) (cachedEvent, bool) {
	e, ok := l.entries[hub]
	if !ok || !l.now().Before(e.expires) {
		return cachedEvent{}, false
	}
	return e, true
}

// replayAndSubscribe sends s the cached event (or pusher:cache_miss) and
// joins it to the hub channel under the cache lock, so no event stored in
// between is lost to s. The replayed message itself may still be on its way
// through the hub (it is stored before it is fanned out): s.replayed makes
// s skip it there, so it does not arrive twice.
//
// Memory holds what this process fanned out. After a restart it is empty,
// so a miss asks durable (the node's History, which keeps the last event of
// every cache channel for its TTL) before answering cache_miss. That read
// runs outside the lock: an event fanned out meanwhile is in memory by the
// time the lock is taken, and one fanned out later reaches s through the
// hub; what durable returned is skipped in the fan-out by its offset.
func (l *lastEvents) replayAndSubscribe(h *gateway.Hub, hub string, s *subscription, durable func(hub string) (*gateway.Message, time.Time)) (missed bool) {
	var stored *gateway.Message
	if _, ok := l.get(hub); !ok && durable != nil {
		stored, _ = durable(hub)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e, ok := l.getLocked(hub); {
	case ok:
		// Set before Subscribe and never changed: every fan-out that can
		// reach s takes its subscriber list after this write.
		s.replayed, s.replayedOffset = e.msg, e.msg.Offset
		s.c.w.Enqueue(eventFrame(s.name, &gateway.Message{Channel: hub, Event: e.event, Data: e.data, Tags: e.tags}))
	case stored != nil:
		s.replayedOffset = stored.Offset
		s.c.w.Enqueue(eventFrame(s.name, stored))
	default:
		s.c.w.Enqueue(encode(outFrame{Event: evCacheMiss, Channel: s.name}))
		missed = true
	}
	h.Subscribe(hub, s)
	return missed
}
