package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"switchboard/domain"
)

// Broker carries committed events from the relay to gateway nodes. Every
// subscriber gets every event, in publish order.
type Broker interface {
	// Publish hands envs over for every subscriber, in order, and calls
	// done (when not nil) once every subscriber has been called with them:
	// only then may the relay move its position past them. Events a broker
	// accepted but never delivered (the process died) are relayed again
	// after the restart.
	Publish(ctx context.Context, envs []domain.Envelope, done func()) error
	// Subscribe registers fn for every later event. Events come in order,
	// one or more at a time (a backlog is handed over together); fn must
	// not keep the slice.
	Subscribe(fn func([]domain.Envelope))
}

// ErrBrokerClosed is returned by Publish after Close.
var ErrBrokerClosed = errors.New("broker closed")

// LocalBroker is the in-process broker of a single node. Publish queues the
// event and one goroutine calls the subscribers in order, with everything
// queued so far (up to MaxBrokerBatch events) in one call.
//
// Why not call them inline: the relay goes on reading and keeping the next
// events while these are fanned out, and a fan-out to thousands of sockets
// takes tens of milliseconds. Queueing in memory gives up nothing: the relay
// moves its position only when done is called after the fan-out.
type LocalBroker struct {
	cfg    LocalBrokerConfig
	mu     sync.RWMutex
	subs   []func([]domain.Envelope)
	queue  chan queued
	stop   chan struct{}
	done   chan struct{}
	closer sync.Once

	// Owned by the delivery goroutine: moving averages of the time between
	// arrivals and of the time one delivery call takes.
	last time.Time
	gap  time.Duration
	pass time.Duration
	// credit is how many writes per connection the events so far have
	// earned beyond those spent (see share); an event goes out alone only
	// when it brings credit to one write.
	credit float64
	// dones of the events taken for the next fan-out.
	dones []func()
}

// LocalBrokerConfig tunes a LocalBroker.
type LocalBrokerConfig struct {
	// Coalesce is the longest an event may be held back waiting for the next
	// one, so that both go out in one write per connection. It only applies
	// under sustained load: when events arrive less than Coalesce apart, one
	// fan-out takes at least 10 ms, and fanning every event out alone would
	// keep the node busy more than coalesceDuty of the time. Then just
	// enough events wait to bring that back to coalesceDuty, but never more
	// than one in two (minShare); the rest go out as soon as they arrive. Zero
	// never waits.
	//
	// Why: a node fanning one event at a time out to thousands of sockets
	// pays one write syscall per subscriber per event, and on loopback or a
	// small box that syscall is most of the cost. Two events per write
	// nearly halve it, for the server and for every client, but the first
	// of the two waits for the second; pairing no more events than the load
	// needs keeps most of them from waiting. See BENCHMARKS.md.
	Coalesce time.Duration
}

type queued struct {
	env  domain.Envelope
	at   time.Time
	done func() // set on the last event of a Publish call
}

// DefaultBrokerQueue is how many events may wait for fan-out before
// Publish blocks (and with it the relay: back-pressure, not loss).
const DefaultBrokerQueue = 4096

// MaxBrokerBatch is the most events handed to subscribers in one call. A
// batch is written to each connection at once, so larger batches save
// syscalls but hold the first event back while the rest are queued.
const MaxBrokerBatch = 16

// NewLocalBroker returns an in-process broker that never holds events
// back; Close stops it.
func NewLocalBroker() *LocalBroker { return NewLocalBrokerConfig(LocalBrokerConfig{}) }

// NewLocalBrokerConfig returns an empty in-process broker with its delivery
// goroutine running; Close stops it.
func NewLocalBrokerConfig(cfg LocalBrokerConfig) *LocalBroker {
	b := &LocalBroker{
		cfg:   cfg,
		queue: make(chan queued, DefaultBrokerQueue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.run()
	return b
}

func (b *LocalBroker) run() {
	defer close(b.done)
	batch := make([]domain.Envelope, 0, MaxBrokerBatch)
	for {
		select {
		case q := <-b.queue:
			batch = b.collect(append(batch[:0], b.arrived(q)))
			if len(batch) == 1 && b.wait() {
				batch = b.await(batch, q.at.Add(b.cfg.Coalesce))
			}
			b.spend(len(batch))
			start := time.Now()
			b.deliver(batch)
			b.pass = ewma(b.pass, time.Since(start))
		case <-b.stop:
			// Deliver what was accepted before Close.
			for {
				select {
				case q := <-b.queue:
					b.deliver(b.collect(append(batch[:0], b.arrived(q))))
				default:
					return
				}
			}
		}
	}
}

// arrived records q's arrival time in the moving average, keeps its done
// for after the fan-out and returns its event.
func (b *LocalBroker) arrived(q queued) domain.Envelope {
	if !b.last.IsZero() {
		b.gap = ewma(b.gap, q.at.Sub(b.last))
	}
	b.last = q.at
	if q.done != nil {
		b.dones = append(b.dones, q.done)
	}
	return q.env
}

// share is the writes per connection per event the node can afford: 1
// (every event alone) while fanning each event out alone would keep it busy
// at most coalesceDuty of the time, less as it gets busier, but never below
// minShare. It is 1 unless events come closer together than Coalesce and one
// fan-out is a big one (at least minCoalescePass: thousands of writes), so
// small channels at high rates (a chat room, 200 events/s to 100 clients)
// never wait: pairing would save little and cost their latency.
func (b *LocalBroker) share() float64 {
	if b.cfg.Coalesce <= 0 || b.gap <= 0 || b.gap >= b.cfg.Coalesce || b.pass < minCoalescePass {
		return 1
	}
	return min(1, max(minShare, coalesceDuty*float64(b.gap)/float64(b.pass)))
}

// wait reports whether the event just taken (alone) should wait for a
// companion: going out alone would spend more writes than the events so
// far have earned. Events earn share() writes each, so over time the
// writes per event match share() and pairs are spread evenly between
// single events.
func (b *LocalBroker) wait() bool {
	w := b.share()
	if w >= 1 {
		b.credit = 0
		return false
	}
	return b.credit+w < 1
}

// spend books one fan-out of n events: they earned n × share() writes and
// cost one. Credit is kept between 0 and 1 so that a quiet spell or a
// backlog does not buy a run of single events later.
func (b *LocalBroker) spend(n int) {
	b.credit = min(1, max(0, b.credit+float64(n)*b.share()-1))
}

// minCoalescePass is the shortest average fan-out for which events are
// paired.
const minCoalescePass = 10 * time.Millisecond

// coalesceDuty is the share of its time a node may spend fanning events out
// one by one before it pairs some of them. At 0.6 a node fanning 20
// events/s out to 5,000 connections paired none of them, and its write
// syscalls (78 % of its CPU) left less room for everything else on a shared
// box; at 0.4 about one event in three waits there (at most one gap), for
// 30 % less CPU per delivery and the same last-subscriber p99
// (BENCHMARKS.md, session 9).
const coalesceDuty = 0.4

// minShare bounds pairing: at most one event in two waits for a companion,
// so the writes per event can halve when the fan-out saturates the node
// (10,000 connections × 20 events/s: the last subscriber's p99 fell from
// 190–280 to 164 ms because the CPU the writes no longer take serves the
// rest), while the events that do not wait keep the median low. Backlogs
// (several events queued during a fan-out) are written together whatever
// the share.
const minShare = 1.0 / 2

// await waits until another event arrives (then takes it and whatever else
// is queued) or deadline passes or the broker stops.
func (b *LocalBroker) await(batch []domain.Envelope, deadline time.Time) []domain.Envelope {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case q := <-b.queue:
		return b.collect(append(batch, b.arrived(q)))
	case <-t.C:
	case <-b.stop:
	}
	return batch
}

// ewma moves avg a quarter of the way to x (the first sample sets it).
func ewma(avg, x time.Duration) time.Duration {
	if avg == 0 {
		return x
	}
	return avg + (x-avg)/4
}

// collect adds whatever else is already queued, up to MaxBrokerBatch.
func (b *LocalBroker) collect(batch []domain.Envelope) []domain.Envelope {
	for len(batch) < MaxBrokerBatch {
		select {
		case q := <-b.queue:
			batch = append(batch, b.arrived(q))
		default:
			return batch
		}
	}
	return batch
}

func (b *LocalBroker) deliver(batch []domain.Envelope) {
	b.mu.RLock()
	subs := b.subs
	b.mu.RUnlock()
	for _, fn := range subs {
		fn(batch)
	}
	clear(batch)
	for i, done := range b.dones {
		done()
		b.dones[i] = nil
	}
	b.dones = b.dones[:0]
}

// Publish implements Broker: it queues envs, waiting while the queue is
// full. If it fails part-way, done is never called.
func (b *LocalBroker) Publish(ctx context.Context, envs []domain.Envelope, done func()) error {
	if len(envs) == 0 {
		if done != nil {
			done()
		}
		return nil
	}
	now := time.Now()
	for i, env := range envs {
		q := queued{env: env, at: now}
		if i == len(envs)-1 {
			q.done = done
		}
		select {
		case <-b.stop:
			return ErrBrokerClosed
		default:
		}
		select {
		case b.queue <- q:
		case <-b.stop:
			return ErrBrokerClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops accepting events, delivers the queued ones and returns when
// done or when ctx ends.
func (b *LocalBroker) Close(ctx context.Context) error {
	b.closer.Do(func() { close(b.stop) })
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe implements Broker.
func (b *LocalBroker) Subscribe(fn func([]domain.Envelope)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(append([]func([]domain.Envelope){}, b.subs...), fn)
}

var _ Broker = (*LocalBroker)(nil)
