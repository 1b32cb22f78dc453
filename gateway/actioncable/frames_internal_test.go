package actioncable

import (
	"encoding/json"
	"testing"
	"time"
	"unique"

	"switchboard/gateway"
	"switchboard/gateway/gatewaytest"
)

// payload strips the WebSocket header of a server frame (unmasked, text).
func payload(t *testing.T, f []byte) string {
	t.Helper()
	if f[0] != 0x81 {
		t.Fatalf("not a final text frame: %x", f[0])
	}
	switch n := f[1]; {
	case n < 126:
		return string(f[2:])
	case n == 126:
		return string(f[4:])
	default:
		return string(f[10:])
	}
}

func TestFrames(t *testing.T) {
	id := `{"channel":"Chats::RoomChannel","chat_room_id":7,"note":"<a&b> \"q\" é"}`
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"welcome", welcomeFrame, `{"type":"welcome"}`},
		{"ping", pingFrame(time.Unix(1700000000, 0)), `{"type":"ping","message":1700000000}`},
		{"unauthorized", disconnectFrame(ReasonUnauthorized, false), `{"type":"disconnect","reason":"unauthorized","reconnect":false}`},
		{"restart", disconnectFrame(ReasonServerRestart, true), `{"type":"disconnect","reason":"server_restart","reconnect":true}`},
		{"confirm keeps the identifier", confirmFrame(id), `{"identifier":"{\"channel\":\"Chats::RoomChannel\",\"chat_room_id\":7,\"note\":\"<a&b> \\\"q\\\" é\"}","type":"confirm_subscription"}`},
		{"reject", rejectFrame(`{"channel":"X"}`), `{"identifier":"{\"channel\":\"X\"}","type":"reject_subscription"}`},
		{"broadcast", broadcastFrame(`{"channel":"NotificationChannel"}`, &gateway.Message{Event: "newNotification", Data: json.RawMessage(`{"id":1}`)}),
			`{"identifier":"{\"channel\":\"NotificationChannel\"}","message":{"event":"newNotification","data":{"id":1}}}`},
		{"broadcast without data", broadcastFrame(`{}`, &gateway.Message{Event: "ping-ish"}), `{"identifier":"{}","message":{"event":"ping-ish","data":null}}`},
		{"client event", broadcastFrame(`{}`, &gateway.Message{Event: "client-typing", Data: json.RawMessage(`{}`), From: &gateway.ClientInfo{UserID: "42"}}),
			`{"identifier":"{}","message":{"event":"client-typing","data":{},"user_id":"42"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := payload(t, tt.frame)
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("invalid JSON %s", got)
			}
		})
	}
	// The identifier parses back to exactly what the client sent.
	var m struct{ Identifier string }
	_ = json.Unmarshal([]byte(payload(t, confirmFrame(id))), &m)
	if m.Identifier != id {
		t.Fatalf("identifier changed: %q", m.Identifier)
	}
}

// TestEncodedOncePerIdentifier: subscribers sharing an identifier get the
// same bytes (one encoding), another identifier gets its own.
func TestEncodedOncePerIdentifier(t *testing.T) {
	var sink gatewaytest.Sink
	newSub := func(identifier string) *subscription {
		c := &conn{id: identifier, w: sink.Writer()}
		return &subscription{c: c, identifier: identifier, key: unique.Make("actioncable:" + identifier)}
	}
	a := `{"channel":"NotificationChannel"}`
	b := `{"channel":"NotificationChannel","v":2}`
	subs := []*subscription{newSub(a), newSub(a), newSub(a), newSub(b)}
	m := &gateway.Message{Channel: "notification-channel-42", Event: "newNotification", Data: json.RawMessage(`{}`)}
	encodes := 0
	for _, s := range subs {
		s.Deliver(m)
		m.Frame(s.key.Value(), func(*gateway.Message) []byte { encodes++; return nil })
	}
	for _, s := range subs {
		<-s.c.w.CloseWith(nil)
	}
	if encodes != 0 {
		t.Fatalf("Deliver did not cache the frame: %d extra encodes", encodes)
	}
	got := sink.Frames()
	if len(got) != 4 {
		t.Fatalf("%d frames", len(got))
	}
	first := map[string][]byte{}
	for _, f := range got {
		p := payload(t, f)
		var v struct{ Identifier string }
		_ = json.Unmarshal([]byte(p), &v)
		if prev, ok := first[v.Identifier]; ok && &prev[0] != &f[0] {
			t.Fatalf("identifier %s encoded twice", v.Identifier)
		}
		first[v.Identifier] = f
	}
	if len(first) != 2 {
		t.Fatalf("identifiers: %d", len(first))
	}
}
