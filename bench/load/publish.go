package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Publisher issues one HTTP request per event. Body builds the request body
// for a stamped event.
type Publisher struct {
	URL    string
	Token  string // bearer, if any
	Body   func(stamp string) []byte
	Client *http.Client

	Errors  atomic.Int64 // non-2xx or transport errors
	Skipped atomic.Int64 // ticks dropped because MaxInFlight requests were pending
	first   atomic.Value
}

// NewHTTPClient is a client sized for many concurrent publishes.
func NewHTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}
}

// FirstErr is the first publish error, if any.
func (p *Publisher) FirstErr() error {
	if e, ok := p.first.Load().(error); ok {
		return e
	}
	return nil
}

func (p *Publisher) fail(err error) {
	p.Errors.Add(1)
	p.first.CompareAndSwap(nil, err)
}

// One publishes event seq and records it in rec when it succeeded.
func (p *Publisher) One(ctx context.Context, rec *Recorder, seq int) {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body(Stamp(seq, t0))))
	if err != nil {
		p.fail(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		p.fail(err)
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p.fail(fmt.Errorf("HTTP %d: %s", resp.StatusCode, b))
		return
	}
	rec.Sent(seq, t0.UnixNano(), time.Now().UnixNano())
}

// Open publishes at rate events/s for d on a timer (open model: a slow
// server does not slow the offered load down, it piles up requests, up to
// maxInFlight, beyond which ticks are counted as skipped). It returns the
// number of events attempted, after every request has finished.
func (p *Publisher) Open(ctx context.Context, rec *Recorder, rate float64, d time.Duration, maxInFlight int) int {
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	seq := 0
	for next := start; time.Since(start) < d && ctx.Err() == nil && seq < rec.Cap(); next = next.Add(interval) {
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		select {
		case sem <- struct{}{}:
		default:
			p.Skipped.Add(1)
			seq++
			continue
		}
		wg.Add(1)
		go func(seq int) {
			defer wg.Done()
			p.One(ctx, rec, seq)
			<-sem
		}(seq)
		seq++
	}
	wg.Wait()
	return seq
}

// Closed runs writers concurrent closed-loop publishers for d (each sends
// the next request when the last returned): the throughput ceiling of the
// write path. It returns the number of events attempted.
func (p *Publisher) Closed(ctx context.Context, rec *Recorder, writers int, d time.Duration) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				if seq >= rec.Cap() {
					return
				}
				p.One(ctx, rec, seq)
			}
		}()
	}
	wg.Wait()
	return int(min(next.Load(), int64(rec.Cap())))
}
