package load

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	// 1..100 ms, one each: p50 = 50 ms, p99 = 99 ms, max = 100 ms.
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.Record(-time.Second) // clock skew counts as zero, not as a huge value
	tests := []struct {
		q    float64
		want time.Duration
		tol  time.Duration
	}{
		{0.5, 50 * time.Millisecond, 20 * time.Microsecond},
		{0.99, 99 * time.Millisecond, 20 * time.Microsecond},
		{1, 100 * time.Millisecond, time.Millisecond},
	}
	for _, tc := range tests {
		got := h.Quantile(tc.q)
		if got < tc.want-tc.tol || got > tc.want+tc.tol {
			t.Errorf("q%.2f = %v, want %v ± %v", tc.q, got, tc.want, tc.tol)
		}
	}
	if h.Count() != 101 || h.Max() != 100*time.Millisecond {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Error("empty histogram must report 0")
	}
}

func TestRecorderLastSubscriberAndLoss(t *testing.T) {
	r := NewRecorder(4)
	base := time.Unix(1000, 0).UnixNano()
	ms := int64(time.Millisecond)
	r.Sent(0, base, base+1*ms)
	r.Sent(1, base, base+1*ms)
	// seq 2 never published (failed): not expected. seq 3 published, 1 of 2 got it.
	r.Sent(3, base, base+1*ms)
	r.Observe(0, base, base+5*ms, 300)
	r.Observe(0, base, base+9*ms, 300)
	r.Observe(1, base, base+2*ms, 300)
	r.Observe(1, base, base+3*ms, 300)
	r.Observe(3, base, base+4*ms, 300)
	r.Observe(7, base, base+4*ms, 300) // out of range: stray
	res := r.Result(2)
	if res.Events != 3 || res.Expected != 6 || res.Delivered != 5 || res.Complete != 2 {
		t.Fatalf("events %d expected %d delivered %d complete %d", res.Events, res.Expected, res.Delivered, res.Complete)
	}
	if res.Last.Max != 9*time.Millisecond || res.Last.P50 != 3*time.Millisecond {
		t.Errorf("last-subscriber p50 %v max %v, want 3ms 9ms", res.Last.P50, res.Last.Max)
	}
	if res.AckLag.Max != 8*time.Millisecond {
		t.Errorf("ack lag max %v, want 8ms", res.AckLag.Max)
	}
	if res.Stray != 1 || res.FrameSize != 300 {
		t.Errorf("stray %d frame %d", res.Stray, res.FrameSize)
	}
	if l := res.Loss(); l < 0.16 || l > 0.17 {
		t.Errorf("loss %f, want 1/6", l)
	}
}

func TestScanStamps(t *testing.T) {
	t0 := time.Unix(1700000000, 123456789)
	pusher := `{"event":"AttendeeCreated","channel":"private-x","data":"{\"first_name\":\"` + Stamp(42, t0) + `xxxx\"}"}`
	batch := `{"push":{"pub":{"data":{"first_name":"` + Stamp(1, t0) + `"}}}}` + "\n" +
		`{"push":{"pub":{"data":{"first_name":"` + Stamp(2, t0) + `"}}}}`
	tests := []struct {
		name string
		msg  string
		want []int
	}{
		{"pusher string data", pusher, []int{42}},
		{"centrifugo batch", batch, []int{1, 2}},
		{"no stamp", `{"event":"pusher:ping"}`, nil},
		{"broken stamp", `~b~12~x~ and ~b~~`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			scanStamps([]byte(tc.msg), func(seq int, sent int64) {
				if sent != t0.UnixNano() {
					t.Errorf("sent %d, want %d", sent, t0.UnixNano())
				}
				got = append(got, seq)
			})
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
