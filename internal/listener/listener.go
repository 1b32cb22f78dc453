// Package listener hands a server its connections once the client has
// sent something.
//
// net/http starts ReadHeaderTimeout when it accepts a connection, so a
// connection a client opened and did not use yet is closed when it runs
// out. HTTP clients keep such connections: Go's Transport, for one, dials
// a spare one when every connection is busy and parks it in its pool if
// another frees up first. Its first request, written at the moment the
// server closes it, fails with EOF, and a client does not retry a POST on
// a connection it never used. WaitForData keeps a new connection out of
// the server until its first bytes arrive (or until the wait runs out), so
// the header timeout measures what it is meant to: a client that sends its
// request too slowly.
package listener

import (
	"errors"
	"net"
	"sync"
	"time"
)

// MaxSilent bounds the connections waiting for their first bytes: past it,
// the one that has waited longest is closed, so a flood of silent
// connections cannot take every descriptor while real clients still get a
// long wait.
const MaxSilent = 4096

// WaitForData returns ln, whose Accept returns a connection only once it
// has data to read. A connection silent for wait, or closed before it
// sent anything, is closed and never returned; so is the longest-waiting
// one when more than MaxSilent wait. wait ≤ 0 returns ln itself.
func WaitForData(ln net.Listener, wait time.Duration) net.Listener {
	return waitForData(ln, wait, MaxSilent)
}

func waitForData(ln net.Listener, wait time.Duration, maxSilent int) net.Listener {
	if wait <= 0 {
		return ln
	}
	l := &waiting{
		Listener:  ln,
		wait:      wait,
		maxSilent: maxSilent,
		ready:     make(chan net.Conn),
		errs:      make(chan error),
		done:      make(chan struct{}),
		pending:   map[net.Conn]time.Time{},
	}
	go l.acceptLoop()
	return l
}

type waiting struct {
	net.Listener
	wait      time.Duration
	maxSilent int
	ready     chan net.Conn
	errs      chan error // Accept errors of ln, one at a time
	done      chan struct{}
	once      sync.Once

	mu      sync.Mutex
	pending map[net.Conn]time.Time // accepted (when), no data yet
}

func (l *waiting) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// Handed to the server's Accept, which backs off on a
			// temporary error (EMFILE) before it asks again; the next
			// Accept here waits for that.
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !l.track(c) {
			c.Close()
			return
		}
		go l.await(c)
	}
}

func (l *waiting) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done: // Close has run, or waits for mu to close what is pending
		return false
	default:
	}
	if len(l.pending) >= l.maxSilent {
		// A linear scan: only under a flood, and bounded by maxSilent.
		var oldest net.Conn
		var at time.Time
		for p, t := range l.pending {
			if oldest == nil || t.Before(at) {
				oldest, at = p, t
			}
		}
		delete(l.pending, oldest)
		oldest.Close() // its await sees the error and ends
	}
	l.pending[c] = time.Now()
	return true
}

// await hands c to Accept once it has data.
func (l *waiting) await(c net.Conn) {
	ok := hasData(c, l.wait)
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
	if !ok {
		c.Close()
		return
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection with data, or ln's error.
func (l *waiting) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections still silent.
func (l *waiting) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
		l.mu.Lock()
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
	})
	return err
}
