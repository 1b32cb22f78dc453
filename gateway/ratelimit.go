package gateway

import (
	"sync"
	"time"
)

// Window allows at most N actions in any sliding second: it keeps the
// times of the last N accepted ones in a ring. Not safe for concurrent use;
// the owner locks (a Pusher connection for its client events).
type Window struct {
	at  []time.Time
	idx int
}

// Allow records an action at now and reports whether it is within n per
// second (a refused action is not recorded); n < 1 allows none.
func (w *Window) Allow(n int, now time.Time) bool {
	if n < 1 {
		return false
	}
	if len(w.at) != n {
		w.at, w.idx = make([]time.Time, n), 0
	}
	if oldest := w.at[w.idx]; !oldest.IsZero() && now.Sub(oldest) < time.Second {
		return false
	}
	w.at[w.idx] = now
	w.idx = (w.idx + 1) % n
	return true
}

// last is the time of the latest accepted action (zero if none).
func (w *Window) last() time.Time {
	if len(w.at) == 0 {
		return time.Time{}
	}
	return w.at[(w.idx+len(w.at)-1)%len(w.at)]
}

// RateLimiter is a Window per key, safe for concurrent use: a PubSub
// participant across all its connections on this node. Idle keys are
// dropped as it goes, so its size follows the keys active in the last
// second.
type RateLimiter struct {
	n     int
	mu    sync.Mutex
	keys  map[string]*Window
	swept time.Time
}

// NewRateLimiter allows n actions per second per key; n < 1 allows none.
func NewRateLimiter(n int) *RateLimiter {
	return &RateLimiter{n: n, keys: map[string]*Window{}}
}

// Allow records an action of key at now and reports whether it is within
// the rate.
func (r *RateLimiter) Allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.swept) > time.Second {
		r.swept = now
		for k, w := range r.keys {
			if now.Sub(w.last()) >= time.Second {
				delete(r.keys, k)
			}
		}
	}
	w := r.keys[key]
	if w == nil {
		w = &Window{}
		r.keys[key] = w
	}
	return w.Allow(r.n, now)
}
