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
// busy channel occasionally repeated an offset to a fresh subscriber, and a
// client recovering across a crash occasionally got recalled offsets again.
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
		// A restarted relay recalls events the killed process kept (old
		// offsets) and delivers them among new ones in transaction-id
		// order: the client has the old ones, and must see offsets rise.
		{"recalled old offsets among new ones", func(s *subscription) {
			s.flush(50)
			s.DeliverMany([]*gateway.Message{msg(51), msg(48), msg(49), msg(50), msg(52)})
			s.Deliver(msg(50))
			s.Deliver(msg(53))
		}, []string{"51", "52", "53"}},
		{"offsets still rise when buffered out of order", func(s *subscription) {
			s.DeliverMany([]*gateway.Message{msg(7), msg(6), msg(8)})
			s.flush(5)
		}, []string{"7", "8"}},
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
