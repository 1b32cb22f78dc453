package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/gateway"
)

func TestLocalBroker(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{})
	}{
		{"every subscriber gets every event in order", func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{}) {
			close(release)
			for i := range 100 {
				if err := b.Publish(context.Background(), []domain.Envelope{{ID: fmt.Sprint(i)}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 100 {
				if id := <-got; id != fmt.Sprint(i) {
					t.Fatalf("event %d arrived as %s", i, id)
				}
			}
		}},
		{"publish returns before a slow fan-out ends", func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{}) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			for i := range 10 { // the subscriber is stuck on the first
				if err := b.Publish(ctx, []domain.Envelope{{ID: fmt.Sprint(i)}}, nil); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			close(release)
			for range 10 {
				<-got
			}
		}},
		{"a full queue pushes back instead of dropping", func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{}) {
			// The subscriber is stuck on the first batch: the queue fills,
			// then Publish waits (here until its deadline) instead of
			// dropping or growing.
			accepted := 0
			for ; ; accepted++ {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				err := b.Publish(ctx, []domain.Envelope{{ID: fmt.Sprint(accepted)}}, nil)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if lo, hi := gateway.DefaultBrokerQueue, gateway.DefaultBrokerQueue+gateway.MaxBrokerBatch; accepted < lo || accepted > hi {
				t.Fatalf("accepted %d events before pushing back, want %d..%d", accepted, lo, hi)
			}
			close(release)
			for i := range accepted {
				if id := <-got; id != fmt.Sprint(i) {
					t.Fatalf("event %d arrived as %s", i, id)
				}
			}
		}},
		{"done is called after the fan-out of the call's last event, once", func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{}) {
			dones := make(chan int, 4)
			envs := func(ids ...string) []domain.Envelope {
				out := make([]domain.Envelope, len(ids))
				for i, id := range ids {
					out[i] = domain.Envelope{ID: id}
				}
				return out
			}
			// More than one broker batch in one call: done waits for the last.
			var many []string
			for i := range gateway.MaxBrokerBatch + 3 {
				many = append(many, fmt.Sprint(i))
			}
			if err := b.Publish(context.Background(), envs(many...), func() { dones <- 1 }); err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(context.Background(), envs("x", "y"), func() { dones <- 2 }); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-dones:
				t.Fatalf("done %d called before any fan-out", d)
			case <-time.After(50 * time.Millisecond):
			}
			close(release)
			for _, want := range append(many, "x", "y") {
				if id := <-got; id != want {
					t.Fatalf("got %s, want %s", id, want)
				}
			}
			for _, want := range []int{1, 2} {
				select {
				case d := <-dones:
					if d != want {
						t.Fatalf("done %d, want %d (order)", d, want)
					}
				case <-time.After(time.Second):
					t.Fatalf("done %d never called", want)
				}
			}
			select {
			case d := <-dones:
				t.Fatalf("done %d called twice", d)
			case <-time.After(50 * time.Millisecond):
			}
		}},
		{"close delivers what was queued, then refuses", func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{}) {
			for i := range 5 {
				if err := b.Publish(context.Background(), []domain.Envelope{{ID: fmt.Sprint(i)}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			closed := make(chan error, 1)
			go func() { closed <- b.Close(context.Background()) }()
			close(release)
			for i := range 5 {
				if id := <-got; id != fmt.Sprint(i) {
					t.Fatalf("event %d arrived as %s", i, id)
				}
			}
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(context.Background(), []domain.Envelope{{ID: "late"}}, nil); !errors.Is(err, gateway.ErrBrokerClosed) {
				t.Fatalf("publish after close: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := gateway.NewLocalBroker()
			got := make(chan string, gateway.DefaultBrokerQueue+gateway.MaxBrokerBatch+1)
			release := make(chan struct{})
			t.Cleanup(func() {
				select {
				case <-release:
				default:
					close(release) // a failed case must not leave Close waiting
				}
				_ = b.Close(context.Background())
			})
			b.Subscribe(func(envs []domain.Envelope) {
				<-release
				for _, env := range envs {
					got <- env.ID
				}
			})
			tt.run(t, b, got, release)
		})
	}
}

// TestLocalBrokerCoalesce checks when the broker holds an event back for the
// next one: only while events come closer together than Coalesce and
// fanning each out alone would keep the node busy more than coalesceDuty
// of the time; then only some events wait, never more than one in two.
func TestLocalBrokerCoalesce(t *testing.T) {
	const (
		mostPaired = "most"  // about 3 calls in 4 carry two events, the rest one
		somePaired = "mixed" // some calls carry one event, some several
		nonePaired = "none"  // every call carries one event, sent at once
	)
	tests := []struct {
		name     string
		coalesce time.Duration
		every    time.Duration // between publishes
		work     time.Duration // one delivery call's fan-out
		events   int
		// Expectations over the calls after the first five (warm-up).
		want    string
		maxWait time.Duration // for nonePaired: longest publish → call start
	}{
		// Duty alone 1.5: as many events wait as minShare allows (one in two).
		{"saturating fan-out pairs most events", 200 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond, 36, mostPaired, 0},
		// Duty alone 0.5: about one event in five waits. Each fan-out ends
		// before the next event arrives, so every pair is the broker's doing.
		{"busy fan-out pairs some events", 200 * time.Millisecond, 40 * time.Millisecond, 20 * time.Millisecond, 40, somePaired, 0},
		// Duty alone 0.3 (< coalesceDuty): nothing waits.
		{"lightly busy fan-out never waits", 200 * time.Millisecond, 40 * time.Millisecond, 12 * time.Millisecond, 20, nonePaired, 20 * time.Millisecond},
		{"zero Coalesce never waits", 0, 40 * time.Millisecond, 30 * time.Millisecond, 20, nonePaired, 20 * time.Millisecond},
		{"light fan-out never waits", 200 * time.Millisecond, 30 * time.Millisecond, 0, 15, nonePaired, 20 * time.Millisecond},
		{"events further apart than Coalesce never wait", 50 * time.Millisecond, 100 * time.Millisecond, 30 * time.Millisecond, 8, nonePaired, 25 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := gateway.NewLocalBrokerConfig(gateway.LocalBrokerConfig{Coalesce: tt.coalesce})
			defer b.Close(context.Background())
			type call struct {
				ids   []string
				start time.Time
			}
			calls := make(chan call, tt.events)
			b.Subscribe(func(envs []domain.Envelope) {
				c := call{start: time.Now()}
				for _, env := range envs {
					c.ids = append(c.ids, env.ID)
				}
				time.Sleep(tt.work)
				calls <- c
			})
			sent := make([]time.Time, tt.events)
			for i := range tt.events {
				sent[i] = time.Now()
				if err := b.Publish(context.Background(), []domain.Envelope{{ID: fmt.Sprint(i)}}, nil); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tt.every)
			}
			var got []call
			for n := 0; n < tt.events; {
				c := <-calls
				got = append(got, c)
				n += len(c.ids)
			}
			next, pairs, singles := 0, 0, 0
			for i, c := range got {
				for _, id := range c.ids {
					if id != fmt.Sprint(next) {
						t.Fatalf("event %d arrived as %s", next, id)
					}
					next++
				}
				if i < 5 {
					continue
				}
				if len(c.ids) > 1 {
					pairs++
				} else {
					singles++
				}
				if tt.want == nonePaired && tt.maxWait > 0 {
					first, _ := strconv.Atoi(c.ids[0])
					if wait := c.start.Sub(sent[first]); wait > tt.maxWait {
						t.Errorf("event %s waited %v before fan-out, want ≤ %v", c.ids[0], wait, tt.maxWait)
					}
				}
			}
			switch tt.want {
			case mostPaired:
				// 3 pairs per single; allow for scheduling hiccups.
				if singles == 0 || pairs < 2*singles {
					t.Errorf("%d calls with several events, %d with one: want about 3 to 1", pairs, singles)
				}
			case somePaired:
				if pairs == 0 || singles <= pairs {
					t.Errorf("%d calls with several events, %d with one: want some of each, mostly one", pairs, singles)
				}
			case nonePaired:
				if tt.maxWait > 0 && pairs > 0 {
					t.Errorf("%d calls with several events: nothing should have waited", pairs)
				}
			}
		})
	}
}
