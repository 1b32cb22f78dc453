package gateway

import (
	"context"
	"errors"
	"sync"

	"switchboard/domain"
)

// Broker carries committed events from the relay to gateway nodes. Every
// subscriber gets every event, in publish order.
type Broker interface {
	// Publish hands env over for every subscriber. Once it returns nil the
	// event is the broker's to deliver and the relay may ack it.
	Publish(ctx context.Context, env domain.Envelope) error
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
// Why not call them inline: the relay publishes from inside its outbox
// transaction (watermill acks before it commits), and on SQLite that
// transaction holds the database's write lock. A fan-out to thousands of
// sockets takes tens of milliseconds, and REST writes would wait for it.
// Queueing in memory gives up nothing: an event in this queue is exactly as
// durable as one in a connection's write queue.
type LocalBroker struct {
	mu     sync.RWMutex
	subs   []func([]domain.Envelope)
	queue  chan domain.Envelope
	stop   chan struct{}
	done   chan struct{}
	closer sync.Once
}

// DefaultBrokerQueue is how many events may wait for fan-out before
// Publish blocks (and with it the relay: back-pressure, not loss).
const DefaultBrokerQueue = 4096

// MaxBrokerBatch is the most events handed to subscribers in one call. A
// batch is written to each connection at once, so larger batches save
// syscalls but hold the first event back while the rest are queued.
const MaxBrokerBatch = 16

// NewLocalBroker returns an empty in-process broker with its delivery
// goroutine running; Close stops it.
func NewLocalBroker() *LocalBroker {
	b := &LocalBroker{
		queue: make(chan domain.Envelope, DefaultBrokerQueue),
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
		case env := <-b.queue:
			batch = b.collect(append(batch[:0], env))
			b.deliver(batch)
		case <-b.stop:
			// Deliver what was accepted before Close.
			for {
				select {
				case env := <-b.queue:
					batch = b.collect(append(batch[:0], env))
					b.deliver(batch)
				default:
					return
				}
			}
		}
	}
}

// collect adds whatever else is already queued, up to MaxBrokerBatch.
func (b *LocalBroker) collect(batch []domain.Envelope) []domain.Envelope {
	for len(batch) < MaxBrokerBatch {
		select {
		case env := <-b.queue:
			batch = append(batch, env)
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
}

// Publish implements Broker: it queues env, waiting while the queue is
// full.
func (b *LocalBroker) Publish(ctx context.Context, env domain.Envelope) error {
	select {
	case <-b.stop:
		return ErrBrokerClosed
	default:
	}
	select {
	case b.queue <- env:
		return nil
	case <-b.stop:
		return ErrBrokerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
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
