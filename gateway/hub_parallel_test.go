package gateway

import (
	"fmt"
	"sync"
	"testing"
)

// orderSub records the ids it is delivered, checking they only grow.
type orderSub struct {
	id   string
	mu   sync.Mutex
	got  int
	last int
	bad  bool
}

func (s *orderSub) ConnID() string { return s.id }
func (s *orderSub) Deliver(m *Message) {
	var n int
	fmt.Sscan(m.ID, &n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= s.last {
		s.bad = true
	}
	s.last, s.got = n, s.got+1
}

// A large channel is written by several goroutines at once; every
// subscriber still gets each message once, in publish order, and the
// excluded connection none.
func TestHubParallelFanOut(t *testing.T) {
	tests := []struct {
		name  string
		parts int
		subs  int
	}{
		{"serial below the split size", 4, minPart},
		{"two parts", 2, 3 * minPart},
		{"more parts than cores", 8, 10*minPart + 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub()
			h.parts = tt.parts
			subs := make([]*orderSub, tt.subs)
			for i := range subs {
				subs[i] = &orderSub{id: fmt.Sprint("c", i)}
				h.Subscribe("big", subs[i])
			}
			const msgs = 40
			for i := 1; i <= msgs; i++ {
				m := &Message{Channel: "big", ID: fmt.Sprint(i)}
				if i%2 == 0 {
					m.ExceptConn = "c0"
				}
				if n := h.Publish(m); n != tt.subs-(1-i%2) {
					t.Fatalf("message %d reached %d subscribers, want %d", i, n, tt.subs-(1-i%2))
				}
			}
			for i, s := range subs {
				want := msgs
				if i == 0 {
					want = msgs / 2
				}
				if s.got != want || s.bad {
					t.Fatalf("subscriber %d: got %d messages (want %d), out of order: %v", i, s.got, want, s.bad)
				}
			}
		})
	}
}

// A fan-out never waits for a helper to start: while every helper is stuck
// in another fan-out (a goroutine the scheduler does not run), the caller
// writes all the chunks itself; the stuck fan-out still completes, each
// subscriber once, when its helper runs again.
func TestHubParallelDoesNotWaitForBusyHelpers(t *testing.T) {
	h := NewHub()
	h.parts = 2
	const n = 4 * minPart
	gate := make(chan struct{})
	var mu sync.Mutex
	inA, seenA := 0, make([]int, n)
	started := make(chan struct{}, 2)
	aSum := make(chan int)
	go func() {
		aSum <- h.parallel(n, func(lo, hi int) int {
			started <- struct{}{}
			<-gate
			mu.Lock()
			defer mu.Unlock()
			inA++
			for i := lo; i < hi; i++ {
				seenA[i]++
			}
			return hi - lo
		})
	}()
	<-started
	<-started // the caller and the helper are both held in a chunk of A
	seenB := make([]int, n)
	if got := h.parallel(n, func(lo, hi int) int {
		for i := lo; i < hi; i++ {
			seenB[i]++
		}
		return hi - lo
	}); got != n {
		t.Fatalf("second fan-out covered %d of %d while the helper was busy", got, n)
	}
	for i, c := range seenB {
		if c != 1 {
			t.Fatalf("second fan-out wrote subscriber %d %d times", i, c)
		}
	}
	close(gate)
	go func() {
		for range started {
		}
	}()
	if got := <-aSum; got != n {
		t.Fatalf("first fan-out covered %d of %d", got, n)
	}
	for i, c := range seenA {
		if c != 1 {
			t.Fatalf("first fan-out wrote subscriber %d %d times", i, c)
		}
	}
	close(started)
}
