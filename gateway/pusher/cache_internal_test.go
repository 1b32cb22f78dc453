package pusher

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sync"
	"testing"
	"time"
	"unique"

	"switchboard/gateway"
)

// The cache interceptor stores an event before the hub fans it out, so a
// client can subscribe in between: it gets the event replayed from the
// cache and must not get it again from the fan-out still under way. Later
// events arrive normally, one by one or as a backlog.
func TestCacheReplayNotRepeatedByFanout(t *testing.T) {
	const hub = "cache-scores"
	msg := func(event string) *gateway.Message {
		return &gateway.Message{Channel: hub, Event: event, Data: json.RawMessage(`{}`)}
	}
	tests := []struct {
		name    string
		publish func(h *gateway.Hub, late, next *gateway.Message)
	}{
		{"one by one", func(h *gateway.Hub, late, next *gateway.Message) {
			h.Publish(late)
			h.Publish(next)
		}},
		{"as a backlog", func(h *gateway.Hub, late, next *gateway.Message) {
			h.PublishMany([]*gateway.Message{late, next})
		}},
	}
	event := regexp.MustCompile(`"event":"([^"]+)"`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var out bytes.Buffer
			w := gateway.NewWriter(gateway.WriterConfig{Write: func(frames [][]byte) error {
				mu.Lock()
				defer mu.Unlock()
				for _, f := range frames {
					out.Write(f)
				}
				return nil
			}})
			s := &subscription{c: &conn{w: w}, name: hub, hub: hub, key: unique.Make("pusher:" + hub)}
			h := gateway.NewHub()
			cache := newLastEvents(time.Now)

			late, next := msg("late"), msg("next")
			cache.store(late, time.Minute) // the interceptor ran; the fan-out has not yet
			cache.replayAndSubscribe(h, hub, s)
			cache.store(next, time.Minute)
			tt.publish(h, late, next)

			<-w.CloseWith(nil)
			mu.Lock()
			defer mu.Unlock()
			var got []string
			for _, m := range event.FindAllSubmatch(out.Bytes(), -1) {
				got = append(got, string(m[1]))
			}
			if want := []string{"late", "next"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("events sent %v, want %v", got, want)
			}
		})
	}
}
