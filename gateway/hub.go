package gateway

import (
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Subscriber receives the messages of one channel for one connection. The
// hub calls Deliver from the publishing goroutine: it must not block (enqueue
// onto the connection's Writer and return).
type Subscriber interface {
	// ConnID identifies the connection (for exclusion and counting).
	ConnID() string
	// Deliver hands over a message; it must return quickly.
	Deliver(m *Message)
}

// numShards spreads channels over independent locks so that publishing to
// one channel never waits on subscribes to another.
const numShards = 64

// Hub tracks channel subscriptions and fans messages out. Subscriber lists
// are copy-on-write: publishing takes a read lock only long enough to load
// the current slice, and delivers outside the lock.
type Hub struct {
	shards [numShards]*shard
	hooks  []Hook

	// Fan-out helpers: a large channel's subscribers are written in
	// parallel by these long-lived goroutines (started on the first large
	// publish) and the caller, so one fan-out uses every core without a
	// goroutine per subscriber.
	parts    int
	fanStart sync.Once
	fanJobs  chan *fanRun
}

// minPart is the fewest subscribers worth handing to another goroutine.
const minPart = 512

// chunksPerPart sets the grain of a parallel fan-out: each worker takes
// chunks of about n/(parts × chunksPerPart) subscribers until none are
// left. With fixed halves, a pass lasted as long as its slower half, and
// on a shared box the slower half was the one whose goroutine the
// scheduler had put behind another process: one preemption delayed half
// the subscribers. Small chunks let the running workers take over the
// rest, so a worker that is not running delays one chunk at most.
const chunksPerPart = 8

// fanRun is one parallel fan-out: workers claim chunks of [0, n) until
// none are left; fin is closed when the last chunk is done.
type fanRun struct {
	fn       func(lo, hi int) int
	n, chunk int
	next     atomic.Int64 // start of the next unclaimed chunk
	done     atomic.Int64 // subscribers whose chunk is finished
	sum      atomic.Int64
	fin      chan struct{}
}

// work runs chunks until none are left. A helper that gets to a run late
// finds nothing to claim and returns at once.
func (r *fanRun) work() {
	for {
		lo := int(r.next.Add(int64(r.chunk))) - r.chunk
		if lo >= r.n {
			return
		}
		hi := min(lo+r.chunk, r.n)
		r.sum.Add(int64(r.fn(lo, hi)))
		if r.done.Add(int64(hi-lo)) == int64(r.n) {
			close(r.fin)
		}
	}
}

// Hook observes channel life; the gateway uses it for occupancy-driven
// features (subscription counts, presence, webhooks). Hooks run outside hub
// locks, synchronously with Subscribe/Unsubscribe.
type Hook interface {
	Subscribed(channel string, s Subscriber, count int)
	Unsubscribed(channel string, s Subscriber, count int)
}

type shard struct {
	mu       sync.RWMutex
	channels map[string]*channelSubs
}

// channelSubs is one channel's subscribers: a set for O(1) subscribe and
// unsubscribe, and an immutable snapshot slice for publishing, rebuilt at
// most once per publish after a change. (Copying the slice on every
// subscribe cost O(n) per join, O(n²) garbage while 10k clients connect,
// which inflated RSS; see BENCHMARKS.md.)
type channelSubs struct {
	set   map[Subscriber]struct{}
	snap  []Subscriber // nil when stale; never mutated once built
	stale bool
}

// snapshot returns the publishing slice, rebuilding it if stale. The
// caller holds the shard's write lock.
func (cs *channelSubs) snapshot() []Subscriber {
	if cs.stale {
		next := make([]Subscriber, 0, len(cs.set))
		for s := range cs.set {
			next = append(next, s)
		}
		cs.snap, cs.stale = next, false
	}
	return cs.snap
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	h := &Hub{parts: runtime.GOMAXPROCS(0)}
	for i := range h.shards {
		h.shards[i] = &shard{channels: map[string]*channelSubs{}}
	}
	return h
}

// AddHook registers a hook. Call before serving.
func (h *Hub) AddHook(k Hook) { h.hooks = append(h.hooks, k) }

// shard picks channel's shard with FNV-1a, inline so the publish path does
// not allocate a hasher and a byte copy of the name.
func (h *Hub) shard(channel string) *shard {
	x := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		x ^= uint32(channel[i])
		x *= 16777619
	}
	return h.shards[x%numShards]
}

// Subscribe adds s to channel. It reports false when s was already there.
func (h *Hub) Subscribe(channel string, s Subscriber) bool {
	sh := h.shard(channel)
	sh.mu.Lock()
	cs := sh.channels[channel]
	if cs == nil {
		cs = &channelSubs{set: map[Subscriber]struct{}{}}
		sh.channels[channel] = cs
	}
	if _, dup := cs.set[s]; dup {
		sh.mu.Unlock()
		return false
	}
	cs.set[s] = struct{}{}
	cs.stale = true
	n := len(cs.set)
	sh.mu.Unlock()
	processTap.subscribed(channel, s, n, true)
	for _, k := range h.hooks {
		k.Subscribed(channel, s, n)
	}
	return true
}

// Unsubscribe removes s from channel. It reports false when s was not there.
func (h *Hub) Unsubscribe(channel string, s Subscriber) bool {
	sh := h.shard(channel)
	sh.mu.Lock()
	cs := sh.channels[channel]
	if cs == nil {
		sh.mu.Unlock()
		return false
	}
	if _, ok := cs.set[s]; !ok {
		sh.mu.Unlock()
		return false
	}
	delete(cs.set, s)
	cs.stale = true
	n := len(cs.set)
	if n == 0 {
		delete(sh.channels, channel)
	}
	sh.mu.Unlock()
	processTap.subscribed(channel, s, n, false)
	for _, k := range h.hooks {
		k.Unsubscribed(channel, s, n)
	}
	return true
}

// Publish delivers m to every subscriber of m.Channel and returns how many
// got it. Delivery happens outside the lock, on a snapshot. Large channels
// are delivered by several goroutines at once; Publish returns when all of
// them are done, so a connection still gets one publisher's messages in
// order.
func (h *Hub) Publish(m *Message) int {
	subs := h.Subscribers(m.Channel)
	return h.parallel(len(subs), func(lo, hi int) int { return deliverAll(m, subs[lo:hi]) })
}

// MultiSubscriber is a Subscriber that can take several messages of one
// channel in one call. A backlog on a big channel then costs one visit to
// each connection (its frames joined into one write) instead of one visit
// per message and another to flush the batch: at 5,000 subscribers every
// visit to a connection's state is a few cache misses.
type MultiSubscriber interface {
	Subscriber
	// DeliverMany hands over ms, in order; like Deliver it must not block.
	DeliverMany(ms []*Message)
}

// PublishMany delivers ms, all on ms[0].Channel and in order, to every
// subscriber of that channel, in parallel like Publish. MultiSubscribers
// get them in one call; others get them one by one through Deliver. No
// message may exclude a connection (ExceptConn): the caller falls back to
// Publish for those.
func (h *Hub) PublishMany(ms []*Message) {
	if len(ms) == 0 {
		return
	}
	subs := h.Subscribers(ms[0].Channel)
	h.parallel(len(subs), func(lo, hi int) int {
		for _, s := range subs[lo:hi] {
			if many, ok := s.(MultiSubscriber); ok {
				many.DeliverMany(ms)
				continue
			}
			for _, m := range ms {
				s.Deliver(m)
			}
		}
		return 0
	})
}

// Flush writes everything batch b queued, one write per connection, in
// parallel like Publish.
func (h *Hub) Flush(b *Batch) {
	ws := b.take()
	h.parallel(len(ws), func(lo, hi int) int {
		for _, w := range ws[lo:hi] {
			w.flushBatch()
		}
		return 0
	})
}

// parallel runs fn over [0, n) in chunks taken by the caller and up to
// GOMAXPROCS-1 helpers (at least minPart subscribers each), and returns
// the sum of the results once all are done. The caller never waits for a
// helper to start: it offers the run to those that are idle and works
// through the chunks itself, so fn runs over every part even when no
// helper gets the CPU.
func (h *Hub) parallel(n int, fn func(lo, hi int) int) int {
	parts := min(h.parts, n/minPart)
	if parts < 2 {
		return fn(0, n)
	}
	h.fanStart.Do(func() {
		h.fanJobs = make(chan *fanRun, h.parts)
		for range h.parts - 1 {
			go func() {
				for r := range h.fanJobs {
					r.work()
				}
			}()
		}
	})
	r := &fanRun{fn: fn, n: n, chunk: max(minPart/4, n/(parts*chunksPerPart)), fin: make(chan struct{})}
	for range parts - 1 {
		select {
		case h.fanJobs <- r:
		default: // the helpers have runs waiting: this one is ours
		}
	}
	r.work()
	<-r.fin
	return int(r.sum.Load())
}

func deliverAll(m *Message, subs []Subscriber) int {
	n := 0
	for _, s := range subs {
		if m.ExceptConn != "" && s.ConnID() == m.ExceptConn {
			continue
		}
		s.Deliver(m)
		n++
	}
	return n
}

// Subscribers returns a snapshot of channel's subscribers (read-only).
func (h *Hub) Subscribers(channel string) []Subscriber {
	sh := h.shard(channel)
	sh.mu.RLock()
	cs := sh.channels[channel]
	if cs == nil {
		sh.mu.RUnlock()
		return nil
	}
	if !cs.stale {
		subs := cs.snap
		sh.mu.RUnlock()
		return subs
	}
	sh.mu.RUnlock()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if cs = sh.channels[channel]; cs == nil {
		return nil
	}
	return cs.snapshot()
}

// Count is the number of subscriptions to channel.
func (h *Hub) Count(channel string) int {
	sh := h.shard(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if cs := sh.channels[channel]; cs != nil {
		return len(cs.set)
	}
	return 0
}

// Channels lists occupied channels starting with prefix, sorted.
func (h *Hub) Channels(prefix string) []string {
	var out []string
	for _, sh := range h.shards {
		sh.mu.RLock()
		for name := range sh.channels {
			if strings.HasPrefix(name, prefix) {
				out = append(out, name)
			}
		}
		sh.mu.RUnlock()
	}
	sort.Strings(out)
	return out
}

// NumChannels is the number of occupied channels.
func (h *Hub) NumChannels() int {
	n := 0
	for _, sh := range h.shards {
		sh.mu.RLock()
		n += len(sh.channels)
		sh.mu.RUnlock()
	}
	return n
}

// NumSubscriptions is the number of subscriptions, over every channel. It
// visits every channel (a metrics scrape's cost, not a publish's): a
// running total would be one more shared counter on every subscribe.
func (h *Hub) NumSubscriptions() int {
	n := 0
	for _, sh := range h.shards {
		sh.mu.RLock()
		for _, cs := range sh.channels {
			n += len(cs.set)
		}
		sh.mu.RUnlock()
	}
	return n
}
