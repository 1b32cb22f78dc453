package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SenderConfig tunes delivery. Zero values mean the defaults.
type SenderConfig struct {
	// Timeout bounds one request. Zero means 4s, what Pusher's receivers
	// expect.
	Timeout time.Duration
	// MaxAge is how long a delivery is retried before it fails (a dead
	// letter). Zero means 24h.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff (with ±20 % jitter). Zero means 1s and 10m.
	MinBackoff, MaxBackoff time.Duration
	// Poll bounds the wait for new or due deliveries. Zero means 250ms.
	Poll time.Duration
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *SenderConfig) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 4 * time.Second
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Minute
	}
	if c.Poll == 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// IDHeader carries a delivery's id, the same on every attempt, so a
// receiver can drop a request it already processed (delivery is at least
// once: a crash after the request and before its outcome is stored sends
// it again).
const IDHeader = "X-Switchboard-Webhook-Id"

// Sender sends the queue's due deliveries, one at a time per URL.
type Sender struct {
	q    *Queue
	cfg  SenderConfig
	wake chan struct{}

	// Attempt outcomes, for metrics (Results).
	sent, retried, failed atomic.Uint64
}

// Results counts the attempts this process made, by outcome: Sent (the
// receiver answered 2xx), Retried (it did not; another attempt follows)
// and Failed (it did not, and MaxAge has passed: a dead letter).
type Results struct {
	Sent, Retried, Failed uint64
}

// Results returns the attempt outcomes so far.
func (s *Sender) Results() Results {
	return Results{Sent: s.sent.Load(), Retried: s.retried.Load(), Failed: s.failed.Load()}
}

// NewSender returns a sender of q's deliveries.
func NewSender(q *Queue, cfg SenderConfig) *Sender {
	cfg.setDefaults()
	return &Sender{q: q, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake makes Run look for deliveries at once.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends. Deliveries in flight when it ends are left
// pending and sent again by the next run.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	failing := false
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
		for ctx.Err() == nil {
			due, err := s.q.Due(ctx, s.cfg.Now(), 64)
			if err != nil {
				if !failing && ctx.Err() == nil {
					s.cfg.Logger.Warn("webhooks: cannot read the queue; retrying", "err", err)
				}
				failing = true
				break
			}
			failing = false
			if len(due) == 0 {
				break
			}
			// One request per URL at a time (Due returns one per URL), in
			// parallel across URLs.
			var wg sync.WaitGroup
			for _, d := range due {
				wg.Add(1)
				go func(d Delivery) {
					defer wg.Done()
					s.attempt(ctx, d)
				}(d)
			}
			wg.Wait()
		}
		t.Reset(s.cfg.Poll)
	}
}

// attempt sends d once and stores the outcome.
func (s *Sender) attempt(ctx context.Context, d Delivery) {
	code, err := s.post(ctx, d)
	if ctx.Err() != nil {
		return // stopping: d stays pending
	}
	now := s.cfg.Now()
	a := Attempt{At: now, StatusCode: code}
	status, next := StatusSent, now
	if err != nil || code < 200 || code > 299 {
		if err != nil {
			a.Error = trimString(err.Error(), 500)
		} else {
			a.Error = "status " + strconv.Itoa(code)
		}
		status, next = StatusPending, now.Add(s.backoff(d.Attempts+1))
		if next.Sub(d.CreatedAt) > s.cfg.MaxAge {
			status = StatusFailed
			s.cfg.Logger.Warn("webhooks: delivery failed for good", "id", d.ID, "url", d.URL, "attempts", d.Attempts+1, "err", a.Error)
		}
	}
	switch status {
	case StatusSent:
		s.sent.Add(1)
	case StatusFailed:
		s.failed.Add(1)
	default:
		s.retried.Add(1)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.q.Record(rctx, d.ID, a, status, next); err != nil {
		s.cfg.Logger.Warn("webhooks: outcome not stored; the delivery will be sent again", "id", d.ID, "err", err)
	}
}

func (s *Sender) post(ctx context.Context, d Delivery) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(IDHeader, strconv.FormatInt(d.ID, 10))
	res, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode, nil
}

// backoff is the wait before attempt n+1 (n ≥ 1).
func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}
