package gateway

import (
	"sync"
	"time"
)

// RateLimiter allows at most N actions per key in any sliding second. It
// keys by whatever the caller counts (a PubSub participant across all its
// connections on this node); idle keys are dropped as it goes, so its size
// follows the keys active in the last second.
type RateLimiter struct {
	n     int
	mu    sync.Mutex
	keys  map[string]*window
	swept time.Time
}

type window struct {
	at  []time.Time // ring of the last n accepted times
	idx int
}

// NewRateLimiter allows n actions per second per key; n < 1 allows none.
func NewRateLimiter(n int) *RateLimiter {
	return &RateLimiter{n: n, keys: map[string]*window{}}
}

// Allow records an action of key at now and reports whether it is within
// the rate (a refused action is not recorded).
func (r *RateLimiter) Allow(key string, now time.Time) bool {
	if r.n < 1 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.swept) > time.Second {
		r.sweep(now)
	}
	w := r.keys[key]
	if w == nil {
		w = &window{at: make([]time.Time, r.n)}
		r.keys[key] = w
	}
	if oldest := w.at[w.idx]; !oldest.IsZero() && now.Sub(oldest) < time.Second {
		return false
	}
	w.at[w.idx] = now
	w.idx = (w.idx + 1) % r.n
	return true
}

// sweep drops keys with nothing in the last second.
func (r *RateLimiter) sweep(now time.Time) {
	r.swept = now
	for k, w := range r.keys {
		last := w.at[(w.idx+r.n-1)%r.n]
		if now.Sub(last) >= time.Second {
			delete(r.keys, k)
		}
	}
}
