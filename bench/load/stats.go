// Package load is the client side of Switchboard's benchmarks: WebSocket
// clients for the Pusher and Centrifugo protocols, an open-model publisher,
// latency recording and /proc sampling. cmd/switchboard-bench composes the
// scenarios out of it.
package load

import (
	"math"
	"sort"
	"sync/atomic"
	"time"
)

// Histogram counts latencies lock-free: 10 µs buckets up to 100 ms, then
// 1 ms buckets up to 60 s. That keeps percentiles exact to the bucket while
// thousands of reader goroutines record concurrently.
type Histogram struct {
	buckets [fineBuckets + coarseBuckets]atomic.Uint64
	n       atomic.Uint64
	max     atomic.Int64
	sum     atomic.Int64
}

const (
	fineStep      = 10 * time.Microsecond
	fineBuckets   = int(100 * time.Millisecond / fineStep)
	coarseStep    = time.Millisecond
	coarseBuckets = int(60 * time.Second / coarseStep)
)

// Record adds one latency (negative values count as zero).
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	var i int
	if d < 100*time.Millisecond {
		i = int(d / fineStep)
	} else {
		i = fineBuckets + int((d-100*time.Millisecond)/coarseStep)
		if i >= len(h.buckets) {
			i = len(h.buckets) - 1
		}
	}
	h.buckets[i].Add(1)
	h.n.Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the upper edge of the bucket holding quantile q (0..1).
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			var edge time.Duration
			if i < fineBuckets {
				edge = time.Duration(i+1) * fineStep
			} else {
				edge = 100*time.Millisecond + time.Duration(i-fineBuckets+1)*coarseStep
			}
			return min(edge, h.Max())
		}
	}
	return h.Max()
}

// Summary is the four numbers every latency in the report is given as.
type Summary struct {
	N                  uint64
	P50, P95, P99, Max time.Duration
}

// Summary reads p50/p95/p99/max.
func (h *Histogram) Summary() Summary {
	return Summary{N: h.Count(), P50: h.Quantile(0.50), P95: h.Quantile(0.95), P99: h.Quantile(0.99), Max: h.Max()}
}

// Recorder collects one run: every delivery's latency, and per event the
// latest delivery (the fan-out completion, "last-subscriber latency") and
// how many subscribers got it.
type Recorder struct {
	Delivery Histogram
	lastNs   []atomic.Int64 // per seq: latest receive latency
	got      []atomic.Int32 // per seq: deliveries
	sent     []atomic.Int64 // per seq: unix ns of publish start, 0 = not published / failed
	acked    []atomic.Int64 // per seq: unix ns the publish call returned
	Stray    atomic.Int64   // deliveries with an unknown or out-of-range seq
	Frame    atomic.Int64   // size in bytes of one delivered frame (for the report)
}

// NewRecorder sizes a recorder for at most maxEvents events.
func NewRecorder(maxEvents int) *Recorder {
	return &Recorder{lastNs: make([]atomic.Int64, maxEvents), got: make([]atomic.Int32, maxEvents),
		sent: make([]atomic.Int64, maxEvents), acked: make([]atomic.Int64, maxEvents)}
}

// Cap is the number of events the recorder can hold.
func (r *Recorder) Cap() int { return len(r.got) }

// Sent notes that event seq was published successfully at unix ns t0 and
// the publish call returned at t1.
func (r *Recorder) Sent(seq int, t0, t1 int64) {
	if seq >= 0 && seq < len(r.sent) {
		r.sent[seq].Store(t0)
		r.acked[seq].Store(t1)
	}
}

// Observe records one delivery of event seq stamped at sentNs, received at nowNs.
func (r *Recorder) Observe(seq int, sentNs, nowNs int64, frameLen int) {
	if seq < 0 || seq >= len(r.got) {
		r.Stray.Add(1)
		return
	}
	d := nowNs - sentNs
	r.Delivery.Record(time.Duration(d))
	r.got[seq].Add(1)
	for {
		m := r.lastNs[seq].Load()
		if d <= m || r.lastNs[seq].CompareAndSwap(m, d) {
			break
		}
	}
	if r.Frame.Load() == 0 {
		r.Frame.Store(int64(frameLen))
	}
}

// Result is a finished run seen from the subscribers.
type Result struct {
	Events    int     // events published successfully
	Expected  int64   // Events × subscribers
	Delivered int64   // deliveries of those events
	Complete  int     // events every subscriber got
	Delivery  Summary // per delivery
	Last      Summary // per complete event: the slowest subscriber
	AckLag    Summary // per complete event: last receipt − publish call returned (0 when earlier)
	Publish   Summary // per successful publish: how long the publish call took
	Stray     int64
	FrameSize int64
}

// Loss is the share of expected deliveries that never arrived.
func (r Result) Loss() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Expected-r.Delivered) / float64(r.Expected)
}

// Result computes the run for subs subscribers.
func (r *Recorder) Result(subs int) Result {
	res := Result{Delivery: r.Delivery.Summary(), Stray: r.Stray.Load(), FrameSize: r.Frame.Load()}
	var last, lag, pub []time.Duration
	for i := range r.sent {
		if r.sent[i].Load() == 0 {
			continue
		}
		res.Events++
		pub = append(pub, time.Duration(r.acked[i].Load()-r.sent[i].Load()))
		g := int64(r.got[i].Load())
		res.Delivered += g
		if g >= int64(subs) {
			res.Complete++
			l := r.lastNs[i].Load()
			last = append(last, time.Duration(l))
			// The slowest receipt happened at sent+l; how long after the
			// publish call returned (the commit was acknowledged) was it?
			lag = append(lag, max(0, time.Duration(r.sent[i].Load()+l-r.acked[i].Load())))
		}
	}
	res.Expected = int64(res.Events) * int64(subs)
	res.Last = summarize(last)
	res.AckLag = summarize(lag)
	res.Publish = summarize(pub)
	return res
}

func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return Summary{N: uint64(len(ds)), P50: q(0.5), P95: q(0.95), P99: q(0.99), Max: ds[len(ds)-1]}
}
