package gateway

import (
	"sync"
	"time"
)

// Holds runs callbacks after a delay unless they are cancelled first, by
// key: the presence grace (departures.go) and the webhook holds
// (pusher/webhooks.go) that keep a page reload from announcing anything.
// The zero value is ready to use.
type Holds struct {
	mu sync.Mutex
	m  map[string]*time.Timer
}

// Hold runs fn after d unless Cancel(key) comes first; a second Hold of
// key replaces the first.
func (h *Holds) Hold(key string, d time.Duration, fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*time.Timer{}
	}
	if t := h.m[key]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		h.mu.Lock()
		if h.m[key] != t {
			h.mu.Unlock()
			return // replaced or cancelled meanwhile
		}
		delete(h.m, key)
		h.mu.Unlock()
		fn()
	})
	h.m[key] = t
}

// Cancel drops key's waiting callback and reports whether there was one.
func (h *Holds) Cancel(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.m[key]
	if t == nil {
		return false
	}
	t.Stop()
	delete(h.m, key)
	return true
}
