package centrifuge

import (
	"context"
	"sync"
	"sync/atomic"

	"switchboard/gateway"
)

// positions tells a server API publish where the relay put its
// publication: publishAPI expects the envelope's id before committing it,
// and the node's interceptor (see New) reports each of its messages with
// the offset and epoch the relay's History gave it, as it is dispatched on
// this node.
type positions struct {
	waiting atomic.Int32 // expectations open: the interceptor's fast path
	mu      sync.Mutex
	by      map[string]*expectation // by envelope id
}

// expectation collects one envelope's positions, by hub channel.
type expectation struct {
	mu      sync.Mutex
	got     map[string]gateway.StreamPosition
	arrived chan struct{} // a position arrived (capacity 1)
}

// expect opens an expectation for envelope id; forget closes it.
func (p *positions) expect(id string) *expectation {
	e := &expectation{got: map[string]gateway.StreamPosition{}, arrived: make(chan struct{}, 1)}
	p.mu.Lock()
	if p.by == nil {
		p.by = map[string]*expectation{}
	}
	p.by[id] = e
	p.mu.Unlock()
	p.waiting.Add(1)
	return e
}

func (p *positions) forget(id string) {
	p.mu.Lock()
	if _, ok := p.by[id]; ok {
		delete(p.by, id)
		p.waiting.Add(-1)
	}
	p.mu.Unlock()
}

// intercept is the node interceptor: it sees every message before fan-out
// and costs one atomic load while no publish waits.
func (p *positions) intercept(m *gateway.Message) {
	if p.waiting.Load() == 0 || m.ID == "" || m.Offset == 0 {
		return
	}
	p.mu.Lock()
	e := p.by[m.ID]
	p.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	e.got[m.Channel] = gateway.StreamPosition{Offset: m.Offset, Epoch: m.Epoch}
	e.mu.Unlock()
	select {
	case e.arrived <- struct{}{}:
	default:
	}
}

// wait returns the positions of hubs once all arrived, or those that
// arrived when ctx ends.
func (e *expectation) wait(ctx context.Context, hubs []string) map[string]gateway.StreamPosition {
	for {
		e.mu.Lock()
		all := true
		for _, h := range hubs {
			if _, ok := e.got[h]; !ok {
				all = false
				break
			}
		}
		if all || ctx.Err() != nil {
			out := make(map[string]gateway.StreamPosition, len(e.got))
			for k, v := range e.got {
				out[k] = v
			}
			e.mu.Unlock()
			return out
		}
		e.mu.Unlock()
		select {
		case <-e.arrived:
		case <-ctx.Done():
		}
	}
}
