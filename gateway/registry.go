package gateway

import (
	"context"
	"sync"
)

// Registry is the part of a connection's life the protocol adapters share:
// a connection is registered when it is upgraded (refused once the node
// shuts down), found by id or by user (an index, not a scan, for
// revocations and terminations), and closed with the protocol's own
// goodbye on shutdown. Each adapter keeps its wire protocol; this keeps one
// copy of the bookkeeping instead of three.
type Registry[C comparable] struct {
	mu     sync.RWMutex
	shut   bool
	conns  map[string]C
	users  map[string]map[string]C // user id → conn id → conn
	userOf map[string]string       // conn id → user id
}

// NewRegistry returns an empty registry.
func NewRegistry[C comparable]() *Registry[C] {
	return &Registry[C]{conns: map[string]C{}, users: map[string]map[string]C{}, userOf: map[string]string{}}
}

// Add registers c under id; it reports false, registering nothing, once
// the node is shutting down.
func (r *Registry[C]) Add(id string, c C) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shut {
		return false
	}
	r.conns[id] = c
	return true
}

// Run runs the connection on a goroutine of its own and forgets it when
// run returns. The upgrade handler returns at once: while it runs, net/http
// keeps its per-request bufio reader and writer alive (about 8–10 KB per
// idle connection, see BENCHMARKS.md).
func (r *Registry[C]) Run(id string, run func()) {
	go func() {
		defer r.Remove(id)
		run()
	}()
}

// Remove forgets id.
func (r *Registry[C]) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, id)
	r.unindexLocked(id)
}

// SetUser indexes id under user (sign-in, token subject); "" removes it
// from the index.
func (r *Registry[C]) SetUser(id, user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[id]
	r.unindexLocked(id)
	if !ok || user == "" {
		return
	}
	m := r.users[user]
	if m == nil {
		m = map[string]C{}
		r.users[user] = m
	}
	m[id] = c
	r.userOf[id] = user
}

func (r *Registry[C]) unindexLocked(id string) {
	if u, ok := r.userOf[id]; ok {
		delete(r.users[u], id)
		if len(r.users[u]) == 0 {
			delete(r.users, u)
		}
		delete(r.userOf, id)
	}
}

// Get returns the connection registered under id.
func (r *Registry[C]) Get(id string) (C, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.conns[id]
	return c, ok
}

// ByUser returns the connections indexed under user.
func (r *Registry[C]) ByUser(user string) []C {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]C, 0, len(r.users[user]))
	for _, c := range r.users[user] {
		out = append(out, c)
	}
	return out
}

// All returns every registered connection.
func (r *Registry[C]) All() []C {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]C, 0, len(r.conns))
	for _, c := range r.conns {
		out = append(out, c)
	}
	return out
}

// Len is the number of registered connections.
func (r *Registry[C]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.conns)
}

// ShuttingDown reports whether Shutdown has begun.
func (r *Registry[C]) ShuttingDown() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.shut
}

// Shutdown refuses new connections from now on, closes every registered
// one with closeWith (the protocol's "reconnect" goodbye) and waits for
// those goodbyes to be written, or ctx to end. It reports whether it was
// the first call.
func (r *Registry[C]) Shutdown(ctx context.Context, closeWith func(C) <-chan struct{}) bool {
	r.mu.Lock()
	first := !r.shut
	r.shut = true
	r.mu.Unlock()
	conns := r.All()
	dones := make([]<-chan struct{}, 0, len(conns))
	for _, c := range conns {
		dones = append(dones, closeWith(c))
	}
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return first
		}
	}
	return first
}
