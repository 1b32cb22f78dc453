package actioncable_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/gateway/actioncable"
)

// Several streams per subscription: a class's stream_from templates are
// streamed as well as its stream (every one of them), like stream_from
// called several times in a Rails channel.
func TestResolveStreamFrom(t *testing.T) {
	reg, err := actioncable.NewRegistry(
		actioncable.Class{Name: "RoomWithInbox", Stream: "chat-room-{room}-channel",
			StreamFrom: []string{"notification-channel-{me}", "chat-community-member-{me}-threads-channel"}},
		actioncable.Class{Name: "Everything", StreamFrom: []string{"notification-channel-{me}", "dashboard.project.{project}.attendees"}},
		actioncable.Class{Name: "Twice", Stream: "notification-channel-{me}", StreamFrom: []string{"notification-channel-{me}"}},
		actioncable.Class{Name: "ByUUID", Streams: []string{"chat-room-{room}-channel", "chat-room-{room_uuid:uuid}-channel"},
			StreamFrom: []string{"chat-room-channel-{me}"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		identifier string
		streams    []string // nil: an error
		err        error
	}{
		{"stream then stream_from, in order", `{"channel":"RoomWithInbox","room":7}`,
			[]string{"chat-room-7-channel", "notification-channel-42", "chat-community-member-42-threads-channel"}, nil},
		{"stream_from only: the first is primary", `{"channel":"Everything","project":"demo"}`,
			[]string{"notification-channel-42", "dashboard.project.demo.attendees"}, nil},
		{"stream_from param missing", `{"channel":"Everything"}`, nil, actioncable.ErrBadIdentifier},
		{"primary param missing", `{"channel":"RoomWithInbox"}`, nil, actioncable.ErrBadIdentifier},
		{"repeats collapse", `{"channel":"Twice"}`, []string{"notification-channel-42"}, nil},
		{"alternatives still pick the first that applies", `{"channel":"ByUUID","uuid":"uuid-7"}`,
			[]string{"chat-room-7-channel", "chat-room-channel-42"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := reg.Resolve(context.Background(), tt.identifier, "42", rooms{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Streams, tt.streams) || b.Stream != tt.streams[0] {
				t.Fatalf("streams %v (primary %s), want %v", b.Streams, b.Stream, tt.streams)
			}
		})
	}
}

func TestStreamFromValidated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class actioncable.Class
	}{
		{"not canonical", actioncable.Class{Name: "X", Stream: "notification-channel-{me}", StreamFrom: []string{"anything-{me}"}}},
		{"bad placeholder", actioncable.Class{Name: "X", StreamFrom: []string{"notification-channel-{a.b}"}}},
		{"nothing at all", actioncable.Class{Name: "X"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := actioncable.NewRegistry(tc.class); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "cable.json")
	if err := os.WriteFile(p, []byte(`{"channels":[{"channel":"Inbox","stream_from":["notification-channel-{me}","chat-room-channel-{me}"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := actioncable.LoadRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Resolve(context.Background(), `{"channel":"Inbox"}`, "9", nil)
	if err != nil || !slices.Equal(b.Streams, []string{"notification-channel-9", "chat-room-channel-9"}) {
		t.Fatalf("file class: %v %v", b.Streams, err)
	}
}

// One subscription receives every stream, each in order; unsubscribe
// leaves all of them; a stream the member may not read rejects the whole
// subscription; revoking one stream rejects it.
func TestSubscriptionWithSeveralStreams(t *testing.T) {
	s := newServer(t, func(c *actioncable.Config) {
		reg, err := actioncable.NewRegistry(append(actioncable.BuiltinClasses(),
			actioncable.Class{Name: "RoomWithInbox", Stream: "chat-room-{room}-channel", StreamFrom: []string{"notification-channel-{me}"},
				Actions: []string{"typing"}})...)
		if err != nil {
			t.Fatal(err)
		}
		c.Registry = reg
	})
	c := s.connect("42")
	id := `{"channel":"RoomWithInbox","room":7}`
	c.send("subscribe", id, nil)
	c.expect(confirm(id))
	notify := func(n int) {
		s.node.Dispatch(domain.Envelope{Name: "newNotification", Scope: domain.Scope{Members: []string{"42"}, Stream: domain.StreamNotifications},
			Data: json.RawMessage(`{"n":` + itoa(n) + `}`)})
	}
	say := func(n int) {
		s.node.Dispatch(domain.Envelope{Name: "newMessage", Scope: domain.Scope{Room: "7"}, Data: json.RawMessage(`{"n":` + itoa(n) + `}`)})
	}
	for i := 1; i <= 3; i++ {
		notify(i)
		say(i)
	}
	// Per stream, in order.
	last := map[string]float64{}
	for range 6 {
		m, _, err := c.next(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m["identifier"] != id {
			t.Fatalf("frame %v", m)
		}
		msg := m["message"].(map[string]any)
		ev, n := msg["event"].(string), msg["data"].(map[string]any)["n"].(float64)
		if n != last[ev]+1 {
			t.Fatalf("%s %v after %v: out of order", ev, n, last[ev])
		}
		last[ev] = n
	}
	if last["newNotification"] != 3 || last["newMessage"] != 3 {
		t.Fatalf("received %v", last)
	}
	// perform goes to the primary stream.
	bob := s.connect("43")
	bob.send("subscribe", `{"channel":"Chats::RoomChannel","chat_room_id":7}`, nil)
	bob.expect(confirm(`{"channel":"Chats::RoomChannel","chat_room_id":7}`))
	c.send("message", id, map[string]any{"action": "typing", "on": true})
	if m, _, err := bob.next(2 * time.Second); err != nil || m["message"].(map[string]any)["event"] != "client-typing" {
		t.Fatalf("bob got %v %v", m, err)
	}

	c.send("unsubscribe", id, nil)
	c.silent(200 * time.Millisecond)
	notify(4)
	say(4)
	c.silent(200 * time.Millisecond)
	if n := s.node.Hub.Count("notification-channel-42"); n != 0 {
		t.Fatalf("the notification stream still has %d subscribers", n)
	}
	if n := s.node.Hub.Count("chat-room-7-channel"); n != 1 { // bob's
		t.Fatalf("the room has %d subscribers, want bob's only", n)
	}

	// Member 99 reads his notifications but is no participant of room 7:
	// the whole subscription is rejected.
	eve := s.connect("99")
	eve.send("subscribe", id, nil)
	eve.expect(reject(id))

	// Revoking either stream rejects the subscription, and leaves both.
	c.send("subscribe", id, nil)
	c.expect(confirm(id))
	s.node.Revoke("42", "notification-channel-42")
	c.expect(reject(id))
	if n := s.node.Hub.Count("chat-room-7-channel"); n != 1 { // bob's
		t.Fatalf("room has %d subscribers after the revocation, want 1", n)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
