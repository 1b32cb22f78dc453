package domain

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Health watches whether the database answers, so that health checks
// answer at once and REST requests fail fast while it does not, and so that
// an outage is logged once when it starts and once when it ends instead of
// once per failed request.
type Health struct {
	db      *DB
	log     *slog.Logger
	every   time.Duration
	timeout time.Duration

	mu     sync.Mutex
	misses int // failed checks in a row
	down   bool
	reason string
	since  time.Time
	busy   bool // a ping is still under way
}

// HealthStatus is the database's state as last seen.
type HealthStatus struct {
	Up     bool      `json:"up"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// WatchHealth pings db every second (each ping may take at most one
// second to count as an answer) until ctx ends.
func WatchHealth(ctx context.Context, db *DB, log *slog.Logger) *Health {
	if log == nil {
		log = slog.Default()
	}
	h := &Health{db: db, log: log, every: time.Second, timeout: time.Second, since: time.Now()}
	go h.run(ctx)
	return h
}

func (h *Health) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check pings without ever waiting longer than timeout: a ping stuck on a
// cut network path keeps running (its socket deadline ends it, see
// stallConn) while the state already says down.
func (h *Health) check(ctx context.Context) {
	h.mu.Lock()
	if h.busy {
		h.mu.Unlock()
		h.set(false, "the database has not answered a ping for over "+h.timeout.String())
		return
	}
	h.busy = true
	h.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultDBTimeout)
		defer cancel()
		err := h.db.PingContext(pctx)
		h.mu.Lock()
		h.busy = false
		h.mu.Unlock()
		done <- err
	}()
	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			h.set(false, "ping failed: "+err.Error())
		} else {
			h.set(true, "")
		}
	case <-t.C:
		h.set(false, "the database did not answer a ping within "+h.timeout.String())
	case <-ctx.Done():
	}
}

func (h *Health) set(up bool, reason string) {
	h.mu.Lock()
	// One missed ping on a loaded box is not an outage: two in a row are.
	if up {
		h.misses = 0
	} else if h.misses++; h.misses < 2 {
		h.mu.Unlock()
		return
	}
	changed := h.down == up
	h.down, h.reason = !up, reason
	if changed {
		h.since = time.Now()
	}
	since := h.since
	h.mu.Unlock()
	if !changed {
		return
	}
	if up {
		h.log.Info("database reachable again", "store", h.db.Dialect.String())
	} else {
		h.log.Error("database unreachable: REST requests answer 503 until it is back", "store", h.db.Dialect.String(), "reason", reason, "since", since)
	}
}

// Status returns the last seen state.
func (h *Health) Status() HealthStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HealthStatus{Up: !h.down, Reason: h.reason, Since: h.since}
}

// RequestBudget is the deadline Guard gives a request's database work so
// that it answers within timeout: a call cut short still waits up to
// cancelWait for lib/pq's cancel request (see slotDialer).
func RequestBudget(timeout time.Duration) time.Duration {
	return max(timeout-cancelWait-100*time.Millisecond, timeout/2)
}

// Guard bounds every request's database work so that it answers within
// timeout (see RequestBudget) and, while h says the database is down, answers 503
// database_unavailable at once without trying it. Paths in skip (a trailing
// "*" matches a prefix) never touch the database. h may be nil; requests
// for the paths in skip (health checks) pass untouched.
func Guard(h *Health, timeout time.Duration, skip ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			path := c.Request().URL.Path
			for _, p := range skip {
				if prefix, ok := strings.CutSuffix(p, "*"); (ok && strings.HasPrefix(path, prefix)) || path == p {
					return next(c)
				}
			}
			if h != nil && !h.Status().Up && !isWebSocket(c.Request()) {
				return ErrDatabaseUnavailable
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), RequestBudget(timeout))
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// isWebSocket reports an upgrade request: a WebSocket connection outlives
// its request and talks to the database only through its own bounded
// calls.
func isWebSocket(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}
