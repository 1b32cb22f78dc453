package gateway_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/gateway"
)

func TestInbox(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		delay time.Duration // per command
	}{
		{"one command", 1, 0},
		{"a burst, handled in order", 500, 0},
		{"slow handler: the reader is paused, nothing dropped", 100, 200 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			var running, overlap atomic.Int32
			in := gateway.NewInbox(func(b []byte) {
				if running.Add(1) > 1 {
					overlap.Add(1)
				}
				time.Sleep(tt.delay)
				mu.Lock()
				got = append(got, string(b))
				mu.Unlock()
				running.Add(-1)
			})
			for i := range tt.n {
				in.Push([]byte(fmt.Sprint(i)))
			}
			in.Wait()
			mu.Lock()
			defer mu.Unlock()
			if len(got) != tt.n {
				t.Fatalf("handled %d of %d", len(got), tt.n)
			}
			for i, s := range got {
				if s != fmt.Sprint(i) {
					t.Fatalf("command %d handled as %s", i, s)
				}
			}
			if overlap.Load() != 0 {
				t.Fatal("two commands handled at once")
			}
		})
	}
}
