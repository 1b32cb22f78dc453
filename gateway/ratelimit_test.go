package gateway

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	r := NewRateLimiter(3)
	for _, step := range []struct {
		key  string
		at   time.Time
		want bool
	}{
		{"a", ms(0), true}, {"a", ms(100), true}, {"a", ms(200), true},
		{"a", ms(300), false}, // the 4th within a second
		{"b", ms(300), true},  // keys are counted apart
		{"a", ms(999), false}, // the first is still within the second
		{"a", ms(1000), true}, // a second after the first
		{"a", ms(1050), false},
		{"a", ms(1100), true}, // a second after the second
	} {
		if got := r.Allow(step.key, step.at); got != step.want {
			t.Fatalf("%s at %v: %v, want %v", step.key, step.at.Sub(t0), got, step.want)
		}
	}
	// Idle keys go at the next sweep.
	r.Allow("c", ms(5000))
	if len(r.keys) != 1 {
		t.Fatalf("%d keys after the sweep, want 1", len(r.keys))
	}
	if NewRateLimiter(0).Allow("a", t0) {
		t.Fatal("a zero rate allows nothing")
	}
}
