package outbox

import (
	"testing"
	"time"

	"switchboard/domain"
)

// Each lag falls in the first bucket whose bound it does not exceed; the
// snapshot is cumulative, with the count and the sum of every lag.
func TestLagHistogram(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lags   []time.Duration
		bucket []int // index in lagBounds of each lag's bucket; len(lagBounds) is +Inf
	}{
		{"on a bound", []time.Duration{time.Millisecond}, []int{0}},
		{"just over", []time.Duration{time.Millisecond + time.Microsecond}, []int{1}},
		{"negative is zero", []time.Duration{-time.Second}, []int{0}},
		{"over the last bound", []time.Duration{2 * time.Minute}, []int{len(lagBounds)}},
		{"several", []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 2 * time.Second}, []int{2, 5, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h lagHistogram
			var sum time.Duration
			for _, d := range tc.lags {
				h.observe(d)
				sum += max(d, 0)
			}
			cum, count, secs := h.snapshot()
			if count != uint64(len(tc.lags)) || secs != sum.Seconds() {
				t.Fatalf("count %d, sum %g; want %d, %g", count, secs, len(tc.lags), sum.Seconds())
			}
			for i := range lagBounds {
				var want uint64
				for _, b := range tc.bucket {
					if b <= i {
						want++
					}
				}
				if cum[i] != want {
					t.Fatalf("cumulative[%d] (≤ %gs) = %d, want %d (all %v)", i, lagBounds[i], cum[i], want, cum)
				}
			}
		})
	}
}

// Lag is the age of the oldest event handed over and not confirmed; a
// confirmed or dropped batch no longer counts.
func TestStatusLag(t *testing.T) {
	var s Status
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) domain.Envelope { return domain.Envelope{OccurredAt: t0.Add(d)} }
	if lag := s.Lag(t0); lag != 0 {
		t.Fatalf("idle Lag = %s", lag)
	}
	a := s.handedOver([]domain.Envelope{at(2 * time.Second), at(time.Second)})
	b := s.handedOver([]domain.Envelope{at(3 * time.Second)})
	c := s.handedOver(nil) // nothing to wait for
	if lag := s.Lag(t0.Add(5 * time.Second)); lag != 4*time.Second {
		t.Fatalf("Lag = %s, want 4s (the oldest event of the first batch)", lag)
	}
	s.delivered(a, []domain.Envelope{at(2 * time.Second), at(time.Second)}, t0.Add(5*time.Second))
	if lag := s.Lag(t0.Add(5 * time.Second)); lag != 2*time.Second {
		t.Fatalf("Lag = %s after the first batch, want 2s", lag)
	}
	s.dropped(b)
	s.dropped(c)
	if lag := s.Lag(t0.Add(5 * time.Second)); lag != 0 {
		t.Fatalf("Lag = %s with nothing waiting", lag)
	}
	if s.Batches() != 1 || s.Events() != 2 {
		t.Fatalf("Batches %d, Events %d; want 1, 2", s.Batches(), s.Events())
	}
	if _, count, sum := s.LagHistogram(); count != 2 || sum != 7 {
		t.Fatalf("histogram count %d, sum %g; want 2, 7 (3s + 4s)", count, sum)
	}
}
