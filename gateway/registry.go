package gateway

import (
	"context"
	"log/slog"
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
	users  map[string]idSet  // user id → conn ids
	userOf map[string]string // conn id → user id
}

// NewRegistry returns an empty registry.
func NewRegistry[C comparable]() *Registry[C] {
	return &Registry[C]{conns: map[string]C{}, users: map[string]idSet{}, userOf: map[string]string{}}
}

// Described is a connection that tells the registry what to count and
// log about it: the three adapters' connections are. The registry then
// counts it in Stats (Node.Stats: connections, connects, disconnects, its
// writer's traffic) and logs its connect and disconnect at debug level,
// so the three protocols' lines are written in one place, with the same
// keys.
type Described interface {
	Describe() ConnDesc
}

// ConnDesc describes a connection (see Described).
type ConnDesc struct {
	Proto Protocol
	// Writer is the connection's writer: its traffic counters and how the
	// connection ended.
	Writer *Writer
	// User is who the connection belongs to so far ("" until known).
	User string
	// Remote is the peer's address.
	Remote string
	// Log is the adapter's logger (it names the protocol).
	Log *slog.Logger
}

// Add registers c under id; it reports false, registering nothing, once
// the node is shutting down.
func (r *Registry[C]) Add(id string, c C) bool {
	r.mu.Lock()
	if r.shut {
		r.mu.Unlock()
		return false
	}
	r.conns[id] = c
	r.mu.Unlock()
	if d, ok := any(c).(Described); ok {
		connected(id, d.Describe())
	}
	return true
}

// connected counts and logs a registered connection.
func connected(id string, d ConnDesc) {
	processStats.opened(d.Proto, d.Writer)
	processTap.connected(id, d)
	ctx := context.Background()
	if d.Log == nil || !d.Log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	d.Log.LogAttrs(ctx, slog.LevelDebug, "connect",
		slog.String("conn", id), slog.String("user", d.User), slog.String("remote", d.Remote))
}

// disconnected counts and logs the end of a registered connection, with
// the close code and reason its writer saw (see Writer.End).
func disconnected(id string, d ConnDesc) {
	processStats.closed(d.Proto, d.Writer)
	processTap.disconnected(id, d)
	ctx := context.Background()
	if d.Log == nil || !d.Log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	end, ok := End{}, false
	if d.Writer != nil {
		end, ok = d.Writer.End()
	}
	by := "server"
	if !ok {
		end = End{Code: CloseAbnormal, Reason: "unknown"}
	} else if end.ByClient {
		by = "client"
	}
	d.Log.LogAttrs(ctx, slog.LevelDebug, "disconnect",
		slog.String("conn", id), slog.String("user", d.User), slog.String("remote", d.Remote),
		slog.Int("code", end.Code), slog.String("reason", end.Reason), slog.String("by", by))
}

// Run starts the connection: run sets it going and calls ended, once,
// when the connection has ended, which is when the registry forgets it.
// run must not block for the connection's lifetime: the upgrade handler
// calls it and returns, because while the handler runs net/http keeps its
// per-request bufio reader and writer alive (about 8–10 KB per idle
// connection, see BENCHMARKS.md); Serve reads on a poller or a goroutine
// of its own.
func (r *Registry[C]) Run(id string, run func(ended func())) {
	run(func() { r.Remove(id) })
}

// Remove forgets id; a Described connection is counted and logged as
// disconnected.
func (r *Registry[C]) Remove(id string) {
	r.mu.Lock()
	c, ok := r.conns[id]
	delete(r.conns, id)
	r.unindexLocked(id)
	r.mu.Unlock()
	if !ok {
		return
	}
	if d, ok := any(c).(Described); ok {
		disconnected(id, d.Describe())
	}
}

// SetUser indexes id under user (sign-in, token subject); "" removes it
// from the index.
func (r *Registry[C]) SetUser(id, user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.conns[id]
	r.unindexLocked(id)
	if !ok || user == "" {
		return
	}
	m := r.users[user]
	m.add(id)
	r.users[user] = m
	r.userOf[id] = user
}

func (r *Registry[C]) unindexLocked(id string) {
	if u, ok := r.userOf[id]; ok {
		m := r.users[u]
		m.remove(id)
		if m.len() == 0 {
			delete(r.users, u)
		} else {
			r.users[u] = m
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
	m := r.users[user]
	out := make([]C, 0, m.len())
	m.each(func(id string) {
		if c, ok := r.conns[id]; ok {
			out = append(out, c)
		}
	})
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
