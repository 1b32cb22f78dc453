package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
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

	mu      sync.Mutex
	kinds   map[string]int // error kind (status + code, or transport error) → count
	firstAt time.Time      // when the first error happened
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

// FirstErrAt is when the first publish error happened (zero when none).
func (p *Publisher) FirstErrAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstAt
}

// ErrorKinds summarises the errors by kind, most frequent first, e.g.
// "3× HTTP 503 database_unavailable, 1× context deadline exceeded".
func (p *Publisher) ErrorKinds() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	type kc struct {
		k string
		n int
	}
	var ks []kc
	for k, n := range p.kinds {
		ks = append(ks, kc{k, n})
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].n > ks[j].n || ks[i].n == ks[j].n && ks[i].k < ks[j].k })
	var parts []string
	for _, x := range ks {
		parts = append(parts, fmt.Sprintf("%d× %s", x.n, x.k))
	}
	return strings.Join(parts, ", ")
}

func (p *Publisher) fail(err error) {
	p.Errors.Add(1)
	p.first.CompareAndSwap(nil, err)
	k := errorKind(err)
	p.mu.Lock()
	if p.kinds == nil {
		p.kinds = map[string]int{}
		p.firstAt = time.Now()
	}
	p.kinds[k]++
	p.mu.Unlock()
}

// HTTPError is a publish answered with a non-2xx status.
type HTTPError struct {
	Status int
	Body   []byte
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// errorKind groups errors for counting: the status and the JSON error code
// of an HTTP error, or the innermost text of a transport error.
func errorKind(err error) string {
	var he *HTTPError
	if errors.As(err, &he) {
		var body struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(he.Body, &body) == nil && body.Error.Code != "" {
			return fmt.Sprintf("HTTP %d %s", he.Status, body.Error.Code)
		}
		return fmt.Sprintf("HTTP %d", he.Status)
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
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
	// Which connection a request went out on: a transport error then says
	// whether it was a kept-alive one and how long it had been idle, the
	// first thing to know about an EOF.
	var conn httptrace.GotConnInfo
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { conn = i },
	}))
	resp, err := p.Client.Do(req)
	if err != nil {
		if conn.Conn != nil {
			err = fmt.Errorf("%w (on connection %s, reused %t, idle %v before)", err, conn.Conn.LocalAddr(), conn.Reused, conn.IdleTime)
		}
		p.fail(err)
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p.fail(&HTTPError{Status: resp.StatusCode, Body: bytes.TrimSpace(b)})
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
