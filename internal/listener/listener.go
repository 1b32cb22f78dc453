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

// WaitForData returns ln, whose Accept returns a connection only once it
// has data to read. A connection silent for wait, or closed before it
// sent anything, is closed and never returned. wait ≤ 0 returns ln itself.
func WaitForData(ln net.Listener, wait time.Duration) net.Listener {
	if wait <= 0 {
		return ln
	}
	l := &waiting{
		Listener: ln,
		wait:     wait,
		ready:    make(chan net.Conn),
		errs:     make(chan error),
		done:     make(chan struct{}),
		pending:  map[net.Conn]struct{}{},
	}
	go l.acceptLoop()
	return l
}

type waiting struct {
	net.Listener
	wait  time.Duration
	ready chan net.Conn
	errs  chan error // Accept errors of ln, one at a time
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	pending map[net.Conn]struct{} // accepted, no data yet
	closed  bool
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
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
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
		l.closed = true
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
	})
	return err
}
