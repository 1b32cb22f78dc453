package load

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Pool holds the subscribed clients of a scenario. Rec is swapped between
// runs so the same connections serve several measurements.
type Pool struct {
	Target  Target
	Dialer  *Dialer
	Rec     atomic.Pointer[Recorder]
	clients []*Client
}

// Ensure drops dead clients and dials until n are connected and subscribed,
// with the given parallelism. It returns the number of connection errors
// along with the first one.
func (p *Pool) Ensure(ctx context.Context, n, parallel int) (errs int, first error) {
	alive := p.clients[:0]
	for _, c := range p.clients {
		if c.Alive() {
			alive = append(alive, c)
		}
	}
	p.clients = alive
	need := n - len(p.clients)
	if need <= 0 {
		return 0, nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for range max(1, parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				c, err := p.Dialer.Dial(ctx, p.Target, &p.Rec)
				mu.Lock()
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				} else {
					p.clients = append(p.clients, c)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < need && ctx.Err() == nil; i++ {
		// Stop early when most dials fail: the server is down or refusing.
		mu.Lock()
		bad := errs > 50 && errs > need/10
		mu.Unlock()
		if bad {
			break
		}
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	if len(p.clients) < n && first != nil {
		first = fmt.Errorf("%d of %d connections failed: %w", n-len(p.clients), n, first)
	}
	return errs, first
}

// Len is the number of clients held (alive or not).
func (p *Pool) Len() int { return len(p.clients) }

// Alive counts the clients whose socket is still open.
func (p *Pool) Alive() int {
	n := 0
	for _, c := range p.clients {
		if c.Alive() {
			n++
		}
	}
	return n
}

// FirstErr is the reason the first dead client stopped, for reports.
func (p *Pool) FirstErr() error {
	for _, c := range p.clients {
		if !c.Alive() {
			return c.Err()
		}
	}
	return nil
}

// Close closes every client, in parallel.
func (p *Pool) Close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range p.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); c.Close(); <-sem }()
	}
	wg.Wait()
	p.clients = nil
}
