package pusher_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"switchboard/gateway"
	"switchboard/gateway/pusher"
)

func TestIdleConnectionPingedThenClosed4201(t *testing.T) {
	f := newFull(t, fullOpts{
		apps:  []pusher.App{{ID: "a", Key: "k", Secret: "s", ActivityTimeout: 150 * time.Millisecond}},
		tweak: func(c *pusher.Config) { c.PongTimeout = 150 * time.Millisecond },
	})
	// A client that answers pings stays connected well past the timeouts.
	alive, _ := f.dial(t)
	stop := time.Now().Add(800 * time.Millisecond)
	pings := 0
	for time.Now().Before(stop) {
		if got := alive.read(); got.Event == "pusher:ping" {
			pings++
			alive.send(map[string]any{"event": "pusher:pong", "data": map[string]any{}})
		}
	}
	if pings < 2 {
		t.Fatalf("%d server pings in 800ms with a 150ms activity timeout", pings)
	}
	alive.quiet()
	// A silent client gets a ping, then close 4201.
	silent, _ := f.dial(t)
	if got := silent.read(); got.Event != "pusher:ping" {
		t.Fatalf("want a server ping, got %+v", got)
	}
	if code := silent.closeCode(); code != 4201 {
		t.Fatalf("close code %d, want 4201", code)
	}
}

func TestSlowConsumerDisconnected4100(t *testing.T) {
	// The write timeout outlasts the test: while the slow client reads
	// nothing, a blocked write that timed out would drop the socket with
	// no close frame (1006, correct for a dead client), which is not what
	// this test is about. It flaked exactly so whenever publishing took
	// longer than the 10 s default under -race on a busy machine.
	f := newFull(t, fullOpts{tweak: func(c *pusher.Config) { c.MaxQueue = 16; c.WriteTimeout = time.Minute }})
	slow, _ := f.dial(t)
	slow.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "firehose"}})
	slow.read()
	fast, _ := f.dial(t)
	fast.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "other"}})
	fast.read()
	// The slow client stops reading; 64 KB events pile up past the kernel
	// buffers and the 16-frame queue, until the connection is cut.
	payload, _ := json.Marshal(strings.Repeat("x", 64<<10))
	stats := f.node.Stats()
	cuts := stats.SlowConsumerCuts(gateway.ProtoPusher)
	for i := 0; i < 400 && stats.SlowConsumerCuts(gateway.ProtoPusher) == cuts; i++ {
		f.node.Publish(&gateway.Message{Channel: "pusher:app-id:firehose", Event: "big", Data: payload})
	}
	if code := slow.closeCode(); code != 4100 {
		t.Fatalf("close code %d, want 4100 (reconnect after backoff)", code)
	}
	fast.quiet() // others are unaffected
	deadline := time.Now().Add(5 * time.Second)
	for f.a.ConnCount() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.a.ConnCount(); n != 1 {
		t.Fatalf("%d connections left, want only the fast one", n)
	}
}

func TestShutdownSends4200(t *testing.T) {
	f := newFull(t, fullOpts{})
	a, _ := f.dial(t)
	b, _ := f.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.a.Shutdown(ctx)
	for _, c := range []*client{a, b} {
		if code := c.closeCode(); code != 4200 {
			t.Fatalf("close code %d, want 4200", code)
		}
	}
	late := (&fixture{srv: f.srv}).dial(t, f.app.Key)
	if code := late.closeCode(); code != 4200 {
		t.Fatalf("connection during shutdown: %d", code)
	}
}
