package actioncable_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/actioncable"
)

// rooms is a hand-written stand-in for the chat module: room "7" (uuid
// "uuid-7") has members 42 and 43; room "8" only member 99.
type rooms struct{}

func (rooms) IsRoomParticipant(_ context.Context, room, member string) (bool, error) {
	switch room {
	case "7":
		return member == "42" || member == "43", nil
	case "8":
		return member == "99", nil
	case "500":
		return false, errors.New("store unreachable")
	}
	return false, nil
}

func (rooms) RoomIDByUUID(_ context.Context, uuid string) (string, error) {
	switch uuid {
	case "uuid-7":
		return "7", nil
	case "uuid-8":
		return "8", nil
	}
	return "", domain.NotFound("chat room %q", uuid)
}

func TestResolve(t *testing.T) {
	reg, err := actioncable.NewRegistry(actioncable.BuiltinClasses()...)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		identifier string
		rooms      domain.RoomResolver
		stream     string
		err        error // errors.Is target; nil means success
	}{
		{"notifications", `{"channel":"NotificationChannel"}`, nil, "notification-channel-42", nil},
		{"extra params ignored", `{"channel":"NotificationChannel","community_member_id":99}`, nil, "notification-channel-42", nil},
		{"member chat rooms", `{"channel":"ChatRoomChannel"}`, nil, "chat-room-channel-42", nil},
		{"room by integer id", `{"channel":"Chats::RoomChannel","chat_room_id":7}`, nil, "chat-room-7-channel", nil},
		{"room by string id", `{"chat_room_id":"7","channel":"Chats::RoomChannel"}`, nil, "chat-room-7-channel", nil},
		{"room by uuid", `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-7"}`, rooms{}, "chat-room-7-channel", nil},
		{"id wins over uuid", `{"channel":"Chats::RoomChannel","chat_room_id":8,"chat_room_uuid":"uuid-7"}`, rooms{}, "chat-room-8-channel", nil},
		{"null id falls back to uuid", `{"channel":"Chats::RoomChannel","chat_room_id":null,"chat_room_uuid":"uuid-7"}`, rooms{}, "chat-room-7-channel", nil},
		{"unknown uuid", `{"channel":"Chats::RoomChannel","chat_room_uuid":"nope"}`, rooms{}, "", domain.ErrNotFound},
		{"uuid without resolver", `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-7"}`, nil, "", domain.ErrNotFound},
		{"threads", `{"channel":"Chats::CommunityMemberThreadsChannel"}`, nil, "chat-community-member-42-threads-channel", nil},
		{"dashboard", `{"channel":"DashboardChannel","project":"demo","family":"attendees"}`, nil, "dashboard.project.demo.attendees", nil},
		{"room param missing", `{"channel":"Chats::RoomChannel"}`, nil, "", actioncable.ErrBadIdentifier},
		{"fractional id", `{"channel":"Chats::RoomChannel","chat_room_id":7.5}`, nil, "", actioncable.ErrBadIdentifier},
		{"negative id", `{"channel":"Chats::RoomChannel","chat_room_id":-7}`, nil, "", actioncable.ErrBadIdentifier},
		{"boolean id", `{"channel":"Chats::RoomChannel","chat_room_id":true}`, nil, "", actioncable.ErrBadIdentifier},
		{"object id", `{"channel":"Chats::RoomChannel","chat_room_id":{"a":1}}`, nil, "", actioncable.ErrBadIdentifier},
		{"dot smuggled into project", `{"channel":"DashboardChannel","project":"demo.x","family":"attendees"}`, nil, "", actioncable.ErrBadIdentifier},
		{"unknown class", `{"channel":"AdminChannel"}`, nil, "", actioncable.ErrUnknownChannel},
		{"no channel", `{"room":"1"}`, nil, "", actioncable.ErrBadIdentifier},
		{"channel not a string", `{"channel":1}`, nil, "", actioncable.ErrBadIdentifier},
		{"not an object", `"NotificationChannel"`, nil, "", actioncable.ErrBadIdentifier},
		{"not JSON", `{channel:`, nil, "", actioncable.ErrBadIdentifier},
		{"empty", ``, nil, "", actioncable.ErrBadIdentifier},
		{"too long", `{"channel":"NotificationChannel","x":"` + strings.Repeat("a", 2000) + `"}`, nil, "", actioncable.ErrBadIdentifier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := reg.Resolve(context.Background(), tt.identifier, "42", tt.rooms)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if b.Stream != tt.stream {
				t.Fatalf("stream = %q, want %q", b.Stream, tt.stream)
			}
		})
	}
}

// TestAuthorization runs resolved streams through the gateway's own
// Authorizer, the one every protocol shares.
func TestAuthorization(t *testing.T) {
	reg, err := actioncable.NewRegistry(actioncable.BuiltinClasses()...)
	if err != nil {
		t.Fatal(err)
	}
	auth := &gateway.Authorizer{Membership: rooms{}}
	member := &domain.Claims{Projects: []string{"demo"}}
	member.Subject = "42"
	tests := []struct {
		name       string
		identifier string
		wantErr    error
	}{
		{"own notifications", `{"channel":"NotificationChannel"}`, nil},
		{"room member", `{"channel":"Chats::RoomChannel","chat_room_id":7}`, nil},
		{"room member by uuid", `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-7"}`, nil},
		{"not a room member", `{"channel":"Chats::RoomChannel","chat_room_id":8}`, domain.ErrForbidden},
		{"not a room member by uuid", `{"channel":"Chats::RoomChannel","chat_room_uuid":"uuid-8"}`, domain.ErrForbidden},
		{"unknown room", `{"channel":"Chats::RoomChannel","chat_room_id":12345}`, domain.ErrForbidden},
		{"project in claims", `{"channel":"DashboardChannel","project":"demo","family":"attendees"}`, nil},
		{"project not in claims", `{"channel":"DashboardChannel","project":"expo","family":"attendees"}`, domain.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := reg.Resolve(ctx, tt.identifier, member.Subject, rooms{})
			if err == nil {
				err = auth.CanRead(ctx, member, b.Stream)
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewRegistryValidates(t *testing.T) {
	tests := []struct {
		name  string
		class actioncable.Class
		want  string // substring of the error; "" means valid
	}{
		{"valid", actioncable.Class{Name: "AttendeesChannel", Stream: "dashboard.project.{project}.attendees"}, ""},
		{"valid alternatives with actions", actioncable.Class{Name: "Room", Streams: []string{"chat-room-{id}-channel"}, Actions: []string{"typing"}}, ""},
		{"no name", actioncable.Class{Stream: "notification-channel-{me}"}, "without a name"},
		{"no stream", actioncable.Class{Name: "X"}, "no stream template"},
		{"both", actioncable.Class{Name: "X", Stream: "notification-channel-{me}", Streams: []string{"chat-room-channel-{me}"}}, "not both"},
		{"not canonical", actioncable.Class{Name: "X", Stream: "chat_{room}"}, "not a canonical"},
		{"unclosed", actioncable.Class{Name: "X", Stream: "chat-room-{id-channel"}, "unclosed"},
		{"bad placeholder", actioncable.Class{Name: "X", Stream: "chat-room-{a.b}-channel"}, "bad placeholder"},
		{"channel placeholder", actioncable.Class{Name: "X", Stream: "chat-room-{channel}-channel"}, "bad placeholder"},
		{"bad action", actioncable.Class{Name: "X", Stream: "notification-channel-{me}", Actions: []string{"a b"}}, "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := actioncable.NewRegistry(tt.class)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestLoadRegistry(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"channels":[
		{"channel":"AttendeesChannel","stream":"dashboard.project.{project}.attendees"},
		{"channel":"Chats::RoomChannel","streams":["chat-room-{chat_room_id}-channel"],"actions":["typing"]}
	]}`)
	reg, err := actioncable.LoadRegistry(good)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Resolve(context.Background(), `{"channel":"AttendeesChannel","project":"demo"}`, "1", nil)
	if err != nil || b.Stream != "dashboard.project.demo.attendees" {
		t.Fatalf("file class: %+v, %v", b, err)
	}
	// The file's Chats::RoomChannel replaced the builtin: typing allowed,
	// uuids no longer accepted.
	c, _ := reg.Class("Chats::RoomChannel")
	if !c.Allows("typing") || c.Allows("speak") {
		t.Fatalf("actions of the override: %v", c.Actions)
	}
	if _, err := reg.Resolve(context.Background(), `{"channel":"Chats::RoomChannel","chat_room_uuid":"u"}`, "1", rooms{}); !errors.Is(err, actioncable.ErrBadIdentifier) {
		t.Fatalf("override kept the builtin uuid template: %v", err)
	}
	if _, ok := reg.Class("NotificationChannel"); !ok {
		t.Fatal("builtins lost when a file is loaded")
	}
	if builtin, _ := actioncable.LoadRegistry(""); len(builtin.Names()) != len(actioncable.BuiltinClasses()) {
		t.Fatalf("builtin names: %v", builtin.Names())
	}

	for name, body := range map[string]string{
		"unknown field": `{"channels":[{"channel":"X","stream":"notification-channel-{me}","typo":1}]}`,
		"bad template":  `{"channels":[{"channel":"X","stream":"whatever"}]}`,
		"not json":      `channels:`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := actioncable.LoadRegistry(write(strings.ReplaceAll(name, " ", "_")+".json", body)); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
	if _, err := actioncable.LoadRegistry(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}
