package pusher

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"
	"time"
	"unique"

	"switchboard/gateway"
	"switchboard/gateway/gatewaytest"
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
			var sink gatewaytest.Sink
			w := sink.Writer()
			s := &subscription{c: &conn{w: w}, name: hub, hub: hub, key: unique.Make("pusher:" + hub)}
			h := gateway.NewHub()
			cache := newLastEvents(time.Now)

			late, next := msg("late"), msg("next")
			cache.store(late, time.Minute) // the interceptor ran; the fan-out has not yet
			cache.replayAndSubscribe(h, hub, s, nil)
			cache.store(next, time.Minute)
			tt.publish(h, late, next)

			<-w.CloseWith(nil)
			var got []string
			for _, f := range sink.Frames() {
				if m := event.FindSubmatch(f); m != nil {
					got = append(got, string(m[1]))
				}
			}
			if want := []string{"late", "next"}; !slices.Equal(got, want) {
				t.Fatalf("events sent %v, want %v", got, want)
			}
		})
	}
}
