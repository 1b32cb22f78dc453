package centrifuge

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"switchboard/gateway"
	"switchboard/gateway/gatewaytest"
)

// A publication that reaches a subscription after its subscribe reply but
// is at or below the offset the reply covered (its fan-out took the
// subscriber list before the reply and ran late) is dropped, not sent
// twice; later and unpositioned publications go out. Before this rule a
// busy channel occasionally repeated an offset to a fresh subscriber.
func TestSubscriptionDropsWhatTheReplyCovered(t *testing.T) {
	msg := func(offset uint64) *gateway.Message {
		return &gateway.Message{Channel: "notification-channel-42", Event: "e", Data: json.RawMessage(`{}`), Offset: offset}
	}
	tests := []struct {
		name string
		run  func(s *subscription)
		want []string // offsets sent, in order ("0" for an unpositioned one)
	}{
		{"late single after the reply", func(s *subscription) {
			s.flush(5)
			s.Deliver(msg(5))
			s.Deliver(msg(6))
		}, []string{"6"}},
		{"late backlog after the reply", func(s *subscription) {
			s.flush(5)
			s.DeliverMany([]*gateway.Message{msg(4), msg(5), msg(6), msg(7)})
		}, []string{"6", "7"}},
		{"buffered during the reply", func(s *subscription) {
			s.Deliver(msg(5))
			s.DeliverMany([]*gateway.Message{msg(6), msg(7)})
			s.flush(5)
		}, []string{"6", "7"}},
		{"unpositioned always goes", func(s *subscription) {
			s.flush(5)
			s.Deliver(msg(0))
		}, []string{"0"}},
	}
	offset := regexp.MustCompile(`"offset":(\d+)`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink gatewaytest.Sink
			w := sink.Writer()
			s := &subscription{c: &conn{w: w}, buffering: true}
			tt.run(s)
			<-w.CloseWith(nil)
			var got []string
			for _, f := range sink.Frames() {
				if m := offset.FindSubmatch(f); m != nil {
					got = append(got, string(m[1]))
				} else {
					got = append(got, "0")
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("sent offsets %v, want %v", got, tt.want)
			}
		})
	}
}
