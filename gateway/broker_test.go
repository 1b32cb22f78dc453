package gateway_test

import (
	"context"
	"errors"
	"fmt"
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
				if err := b.Publish(context.Background(), domain.Envelope{ID: fmt.Sprint(i)}); err != nil {
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
				if err := b.Publish(ctx, domain.Envelope{ID: fmt.Sprint(i)}); err != nil {
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
				err := b.Publish(ctx, domain.Envelope{ID: fmt.Sprint(accepted)})
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
		{"close delivers what was queued, then refuses", func(t *testing.T, b *gateway.LocalBroker, got <-chan string, release chan struct{}) {
			for i := range 5 {
				if err := b.Publish(context.Background(), domain.Envelope{ID: fmt.Sprint(i)}); err != nil {
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
			if err := b.Publish(context.Background(), domain.Envelope{ID: "late"}); !errors.Is(err, gateway.ErrBrokerClosed) {
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
