package outbox

import (
	"fmt"
	"sync"
	"time"

	"github.com/lib/pq"

	"switchboard/domain"
)

// listenWait bounds the wait for the LISTEN connection at start.
const listenWait = 5 * time.Second

// wakeups returns a channel that gets a token after commits that wrote
// events: in this process (domain.DB.Committed) and, on PostgreSQL, in any
// process (NOTIFY from the outbox trigger, see domain/outbox.go). The poll
// interval stays the safety net behind both.
func (r *Relay) wakeups() (<-chan struct{}, func(), error) {
	wake := make(chan struct{}, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	forward := func(in <-chan struct{}) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case _, ok := <-in:
				if !ok {
					return
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}
	wg.Add(1)
	go forward(r.db.Committed())
	var l *pq.Listener
	if r.db.Dialect == domain.Postgres {
		var err error
		if l, err = r.listen(); err != nil {
			close(stop)
			wg.Wait()
			return nil, nil, err
		}
		notified := make(chan struct{})
		wg.Add(2)
		go forward(notified)
		go func() {
			defer wg.Done()
			defer close(notified)
			for {
				select {
				case <-stop:
					return
				case _, ok := <-l.Notify: // nil after a reconnect: wake anyway
					if !ok {
						return
					}
					select {
					case notified <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return wake, func() {
		close(stop)
		if l != nil {
			l.Close()
		}
		wg.Wait()
	}, nil
}

func (r *Relay) listen() (*pq.Listener, error) {
	connected := make(chan struct{})
	var once sync.Once
	l := pq.NewDialListener(r.db.ListenDialer(), r.db.DSN, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if ev == pq.ListenerEventConnected {
			once.Do(func() { close(connected) })
		}
		if err != nil {
			r.cfg.Logger.Warn("relay: notify listener", "event", ev, "err", err)
		}
	})
	if err := l.Listen("switchboard_outbox_" + r.db.Schema); err != nil {
		l.Close()
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	// The listener connects in the background and Listen returns before
	// LISTEN is active. Wait for it: the relay's first query must not run
	// before a commit by another process can wake it, or such a commit
	// would wait for the poll.
	select {
	case <-connected:
	case <-time.After(listenWait):
		r.cfg.Logger.Warn("relay: notify listener not connected yet; relying on the poll until it is", "waited", listenWait)
	}
	return l, nil
}
