package gateway

import (
	"context"
	"sync"

	"switchboard/domain"
)

// Broker carries committed events from the relay to gateway nodes. Every
// subscriber gets every event, in publish order.
type Broker interface {
	// Publish hands env to every subscriber. It returns after they have it.
	Publish(ctx context.Context, env domain.Envelope) error
	// Subscribe registers fn for every later event.
	Subscribe(fn func(domain.Envelope))
}

// LocalBroker is the in-process broker of a single node: Publish calls the
// subscribers synchronously, so order is the relay's order.
type LocalBroker struct {
	mu   sync.RWMutex
	subs []func(domain.Envelope)
}

// NewLocalBroker returns an empty in-process broker.
func NewLocalBroker() *LocalBroker { return &LocalBroker{} }

// Publish implements Broker.
func (b *LocalBroker) Publish(_ context.Context, env domain.Envelope) error {
	b.mu.RLock()
	subs := b.subs
	b.mu.RUnlock()
	for _, fn := range subs {
		fn(env)
	}
	return nil
}

// Subscribe implements Broker.
func (b *LocalBroker) Subscribe(fn func(domain.Envelope)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(append([]func(domain.Envelope){}, b.subs...), fn)
}

var _ Broker = (*LocalBroker)(nil)
