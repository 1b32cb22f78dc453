package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/chat"
	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// world is one store plus a cursor into its outbox, so each step asserts
// exactly the envelopes it produced.
type world struct {
	t    *testing.T
	db   *domain.DB
	s    *chat.Store
	seen int
}

func newWorld(t *testing.T, db *domain.DB) *world {
	return &world{t: t, db: db, s: chat.NewStore(db)}
}

// as is a request context of member (JWT sub), with an operation id so
// events carry x-triggered-by as they do over REST.
func as(member string) context.Context {
	ctx := domain.WithClaims(context.Background(), &domain.Claims{Name: "Member " + member, RegisteredClaims: jwtSub(member)})
	return domain.WithTrigger(ctx, domain.TriggeredBy{OperationID: "v1.test", RequestID: "r-" + member})
}

func admin() context.Context {
	return domain.WithClaims(context.Background(), &domain.Claims{Admin: true, RegisteredClaims: jwtSub("backend")})
}

// emitted returns the envelopes written since the last call.
func (w *world) emitted() []domain.Envelope {
	w.t.Helper()
	all := dbtest.Outbox(w.t, w.db)
	out := all[w.seen:]
	w.seen = len(all)
	return out
}

// route is what one envelope looks like from the outside: its event name
// and the sorted canonical channels it reaches.
type route struct {
	Name     string
	Channels []string
}

func routes(envs []domain.Envelope) []route {
	out := make([]route, len(envs))
	for i, e := range envs {
		ch := e.Scope.ChannelNames()
		slices.Sort(ch)
		out[i] = route{e.Name, ch}
	}
	return out
}

func (w *world) expect(want ...route) []domain.Envelope {
	w.t.Helper()
	envs := w.emitted()
	got := routes(envs)
	for i := range want {
		slices.Sort(want[i].Channels)
	}
	if len(got) != len(want) {
		w.t.Fatalf("emitted %d envelopes %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(got[i].Channels, want[i].Channels) {
			w.t.Fatalf("envelope %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	return envs
}

func data(t *testing.T, env domain.Envelope) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(env.Data, &m); err != nil {
		t.Fatalf("data of %s: %v", env.Name, err)
	}
	return m
}

func rooms(ms ...string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = domain.MemberChannel(domain.StreamChatRooms, m)
	}
	return out
}

func threads(ms ...string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = domain.MemberChannel(domain.StreamThreads, m)
	}
	return out
}

func roomCh(id int64) string { return domain.RoomChannel(strconv.FormatInt(id, 10)) }

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func code(err error) string {
	if e, ok := domain.AsError(err); ok {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "internal: " + err.Error()
}

// setup creates a non-embedded room of 42 (creator) with 43 and 44.
func setup(w *world, embedded bool) chat.RoomView {
	w.t.Helper()
	r, err := w.s.CreateRoom(as("42"), chat.RoomInput{Name: "Crew", Embedded: embedded, ParticipantIDs: []chat.MemberID{"43", "44"}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.emitted()
	return r
}

func TestCreateRoomSendsEachParticipantTheirOwnRoom(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r, err := w.s.CreateRoom(as("42"), chat.RoomInput{Name: "Crew", Description: "d", ParticipantIDs: []chat.MemberID{"43", "44", "43"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.ID < 1 || r.UUID == "" || r.CurrentParticipant.CommunityMemberID != "42" {
			t.Fatalf("created room %+v", r)
		}
		envs := w.expect(
			route{"chatRoomCreated", rooms("42")},
			route{"chatRoomCreated", rooms("43")},
			route{"chatRoomCreated", rooms("44")},
		)
		// Member ids are JSON numbers, like the room's id: a frontend
		// matches them with ===.
		for i, member := range []float64{42, 43, 44} {
			d := data(t, envs[i])
			cur := d["current_participant"].(map[string]any)
			if cur["community_member_id"] != member {
				t.Fatalf("event to %v has current_participant %v", member, cur)
			}
			others := d["other_participants_preview"].([]any)
			if len(others) != 2 {
				t.Fatalf("event to %v previews %d others, want 2", member, len(others))
			}
			for _, o := range others {
				switch o.(map[string]any)["community_member_id"] {
				case member:
					t.Fatalf("event to %v lists them among the others", member)
				case 42.0, 43.0, 44.0:
				default:
					t.Fatalf("event to %v previews %v: community_member_id must be a number", member, o)
				}
			}
			for _, k := range []string{"id", "uuid", "identifier", "unread_messages_count", "chat_room_kind", "chat_room_name",
				"chat_room_description", "chat_room_show_history", "last_message"} {
				if _, ok := d[k]; !ok {
					t.Fatalf("chatRoomCreated lacks %q: %s", k, envs[i].Data)
				}
			}
			if d["id"].(float64) != float64(r.ID) || d["chat_room_name"] != "Crew" || d["unread_messages_count"].(float64) != 0 {
				t.Fatalf("payload %s", envs[i].Data)
			}
			if envs[i].TriggeredBy == nil || envs[i].TriggeredBy.OperationID != "v1.test" {
				t.Fatalf("no x-triggered-by on %s", envs[i].Data)
			}
		}

		// Embedded rooms are created silently.
		if _, err := w.s.CreateRoom(as("42"), chat.RoomInput{Name: "Lesson", Embedded: true, ParticipantIDs: []chat.MemberID{"43"}}); err != nil {
			t.Fatal(err)
		}
		w.expect()

		_, err = w.s.CreateRoom(as("42"), chat.RoomInput{Name: "x", ParticipantIDs: []chat.MemberID{"bad id!"}})
		if code(err) != "validation_failed" {
			t.Fatalf("bad participant id: %v", err)
		}
	}, chat.Migrations())
}

func TestNewMessageRouting(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		for _, tc := range []struct {
			name     string
			embedded bool
		}{{"non-embedded", false}, {"embedded", true}} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t, db)
				w.emitted()
				r := setup(w, tc.embedded)
				m, created, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "hi", RichTextBody: json.RawMessage(`{"body":"hi"}`)})
				if err != nil || !created {
					t.Fatalf("post: %v created=%v", err, created)
				}
				want := []string{roomCh(r.ID)}
				if !tc.embedded {
					want = append(want, rooms("42", "43", "44")...)
				}
				envs := w.expect(route{"newMessage", want})
				d := data(t, envs[0])
				for _, k := range []string{"id", "chat_room_uuid", "chat_room_kind", "chat_room_participant_id", "body", "rich_text_body",
					"sent_at", "created_at", "sender", "creation_uuid", "chat_thread_id", "parent_message_id", "lesson_id", "edited_at",
					"replies_count", "total_thread_participants_count", "thread_participants_preview", "chat_thread_replies_count"} {
					if _, ok := d[k]; !ok {
						t.Fatalf("newMessage lacks %q: %s", k, envs[0].Data)
					}
				}
				if d["id"].(float64) != float64(m.ID) || d["chat_room_uuid"] != r.UUID || d["body"] != "hi" ||
					d["sender"].(map[string]any)["id"] != 42.0 || d["sender"].(map[string]any)["community_member_id"] != 42.0 ||
					d["parent_message_id"] != nil ||
					d["chat_room_participant_id"].(float64) != float64(r.CurrentParticipant.ID) {
					t.Fatalf("payload %s", envs[0].Data)
				}
				// Unread counts: everyone but the sender.
				for member, want := range map[string]int{"42": 0, "43": 1, "44": 1} {
					v, err := w.s.Get(as(member), r.ID)
					if err != nil {
						t.Fatal(err)
					}
					if v.UnreadMessagesCount != want || v.LastMessage == nil || v.LastMessage.ID != m.ID {
						t.Fatalf("member %s: unread %d last %v, want %d", member, v.UnreadMessagesCount, v.LastMessage, want)
					}
				}
				// A non-participant can neither post nor read.
				if _, _, err := w.s.PostMessage(as("99"), r.ID, chat.MessageInput{Body: "x"}); code(err) != "forbidden" {
					t.Fatalf("outsider post: %v", err)
				}
				if _, err := w.s.ListMessages(as("99"), r.ID, nil, domain.Page{Limit: 10}); code(err) != "forbidden" {
					t.Fatalf("outsider read: %v", err)
				}
				w.expect()
			})
		}
	}, chat.Migrations())
}

func TestCreationUUIDIsIdempotent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		cu := "c-1"
		a, created, err := w.s.PostMessage(as("43"), r.ID, chat.MessageInput{Body: "once", CreationUUID: &cu})
		if err != nil || !created {
			t.Fatal(err, created)
		}
		w.expect(route{"newMessage", append(rooms("42", "43", "44"), roomCh(r.ID))})
		b, created, err := w.s.PostMessage(as("43"), r.ID, chat.MessageInput{Body: "once", CreationUUID: &cu})
		if err != nil || created || b.ID != a.ID {
			t.Fatalf("repeat: %v created=%v id %d vs %d", err, created, b.ID, a.ID)
		}
		w.expect()
		v := must[chat.RoomView](t)(w.s.Get(as("42"), r.ID))
		if v.UnreadMessagesCount != 1 {
			t.Fatalf("unread %d after a repeated post, want 1", v.UnreadMessagesCount)
		}
	}, chat.Migrations())
}

func TestThreadRouting(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		root, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "root"})
		if err != nil {
			t.Fatal(err)
		}
		w.emitted()

		// 43 replies: the room channel hears it, the member channels do not,
		// and only the thread's participants (42 wrote the root, 43 replied)
		// get it on their threads channel.
		reply, _, err := w.s.PostMessage(as("43"), r.ID, chat.MessageInput{Body: "re", ParentMessageID: &root.ID})
		if err != nil {
			t.Fatal(err)
		}
		envs := w.expect(route{"newMessage", []string{roomCh(r.ID)}}, route{"newMessage", threads("42", "43")})
		d := data(t, envs[1])
		if d["parent_message_id"].(float64) != float64(root.ID) || d["chat_thread_id"] == nil ||
			d["chat_thread_replies_count"].(float64) != 1 || d["total_thread_participants_count"].(float64) != 2 ||
			len(d["thread_participants_preview"].([]any)) != 2 {
			t.Fatalf("reply payload %s", envs[1].Data)
		}
		if string(envs[0].Data) != string(envs[1].Data) {
			t.Fatalf("room and thread copies differ:\n%s\n%s", envs[0].Data, envs[1].Data)
		}
		for i, p := range d["thread_participants_preview"].([]any) {
			if id := p.(map[string]any)["id"]; id != []any{42.0, 43.0}[i] || p.(map[string]any)["community_member_id"] != id {
				t.Fatalf("thread preview %d = %v, want member %v as a number", i, p, []any{42.0, 43.0}[i])
			}
		}
		threadID := int64(d["chat_thread_id"].(float64))

		// 44 joins the thread by replying.
		if _, _, err := w.s.PostMessage(as("44"), r.ID, chat.MessageInput{Body: "me too", ParentMessageID: &root.ID}); err != nil {
			t.Fatal(err)
		}
		w.expect(route{"newMessage", []string{roomCh(r.ID)}}, route{"newMessage", threads("42", "43", "44")})

		// Replies to replies are refused.
		if _, _, err := w.s.PostMessage(as("44"), r.ID, chat.MessageInput{Body: "x", ParentMessageID: &reply.ID}); code(err) != "validation_failed" {
			t.Fatalf("reply to reply: %v", err)
		}

		// Editing a reply: room channel plus thread participants, in the
		// updatedMessage shape (no chat_room_kind).
		if _, err := w.s.EditMessage(as("43"), r.ID, reply.ID, chat.EditInput{Body: "re!"}); err != nil {
			t.Fatal(err)
		}
		envs = w.expect(route{"updatedMessage", []string{roomCh(r.ID)}}, route{"updatedMessage", threads("42", "43", "44")})
		d = data(t, envs[0])
		if d["body"] != "re!" || d["edited_at"] == nil {
			t.Fatalf("updatedMessage %s", envs[0].Data)
		}
		if _, ok := d["chat_room_kind"]; ok {
			t.Fatalf("updatedMessage carries chat_room_kind: %s", envs[0].Data)
		}
		// Only the sender (or an admin) edits or deletes.
		if _, err := w.s.EditMessage(as("42"), r.ID, reply.ID, chat.EditInput{Body: "hijack"}); code(err) != "forbidden" {
			t.Fatalf("edit by another member: %v", err)
		}
		if err := w.s.DeleteMessage(as("44"), r.ID, reply.ID); code(err) != "forbidden" {
			t.Fatalf("delete by another member: %v", err)
		}
		w.expect()

		// Thread read goes to the reader only.
		if err := w.s.MarkThreadRead(as("42"), threadID); err != nil {
			t.Fatal(err)
		}
		envs = w.expect(route{"chatThreadRead", threads("42")})
		if data(t, envs[0])["chat_thread_id"].(float64) != float64(threadID) {
			t.Fatalf("chatThreadRead %s", envs[0].Data)
		}
		if err := w.s.MarkThreadRead(as("99"), threadID); code(err) != "forbidden" {
			t.Fatalf("outsider thread read: %v", err)
		}

		// Deleting a reply: MessageWithParent with the parent's new count on
		// the room channel; the threads-channel ParentMessage shape.
		if err := w.s.DeleteMessage(as("43"), r.ID, reply.ID); err != nil {
			t.Fatal(err)
		}
		envs = w.expect(route{"deletedMessage", []string{roomCh(r.ID)}}, route{"deletedMessage", threads("42", "43", "44")})
		d = data(t, envs[0])
		parent := d["parent_message"].(map[string]any)
		if d["id"].(float64) != float64(reply.ID) || parent["id"].(float64) != float64(root.ID) || parent["replies_count"].(float64) != 1 ||
			parent["body"] != "root" {
			t.Fatalf("room deletedMessage %s", envs[0].Data)
		}
		tp := data(t, envs[1])["parent_message"].(map[string]any)
		// The seed types this one id as a string (and only this one).
		if _, ok := tp["chat_room_participant_id"].(string); !ok {
			t.Fatalf("threads deletedMessage participant id not a string: %s", envs[1].Data)
		}
		if tp["sender"].(map[string]any)["id"] != 42.0 {
			t.Fatalf("threads deletedMessage sender id must be a number: %s", envs[1].Data)
		}
		if _, ok := tp["body"]; ok {
			t.Fatalf("threads deletedMessage carries body: %s", envs[1].Data)
		}

		// An admin may delete anyone's message; the root takes its thread.
		if err := w.s.DeleteMessage(admin(), r.ID, root.ID); err != nil {
			t.Fatal(err)
		}
		envs = w.expect(route{"deletedMessage", []string{roomCh(r.ID)}}, route{"deletedMessage", threads("42", "43", "44")})
		if data(t, envs[0])["parent_message"] != nil {
			t.Fatalf("top-level deletedMessage has a parent: %s", envs[0].Data)
		}
		if err := w.s.MarkThreadRead(as("42"), threadID); code(err) != "not_found" {
			t.Fatalf("thread of a deleted root: %v", err)
		}
	}, chat.Migrations())
}

func TestRoomUpdateRouting(t *testing.T) {
	str := func(s string) *string { return &s }
	f := false
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		m, _, err := w.s.PostMessage(as("43"), r.ID, chat.MessageInput{Body: "pin me"})
		if err != nil {
			t.Fatal(err)
		}
		w.emitted()
		members := append(rooms("42", "43", "44"), roomCh(r.ID))
		for _, tc := range []struct {
			name  string
			patch chat.RoomPatch
			want  []route
		}{
			{"description: room channel only", chat.RoomPatch{Description: str("new")}, []route{{"chatRoomUpdated", []string{roomCh(r.ID)}}}},
			{"show_history: room channel only", chat.RoomPatch{ShowHistory: &f}, []route{{"chatRoomUpdated", []string{roomCh(r.ID)}}}},
			{"name: every participant too", chat.RoomPatch{Name: str("Renamed")}, []route{{"chatRoomUpdated", members}}},
			{"pinned message: every participant too", chat.RoomPatch{PinnedMessageID: json.RawMessage(strconv.FormatInt(m.ID, 10))},
				[]route{{"chatRoomUpdated", members}}},
			{"no change: nothing", chat.RoomPatch{Name: str("Renamed")}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := w.s.UpdateRoom(as("43"), r.ID, tc.patch); err != nil {
					t.Fatal(err)
				}
				w.expect(tc.want...)
			})
		}
		_, err = w.s.UpdateRoom(as("43"), r.ID, chat.RoomPatch{PinnedMessageID: json.RawMessage(`999999`)})
		if code(err) != "validation_failed" {
			t.Fatalf("pin a foreign message: %v", err)
		}
		// The last payload is the full SimplifiedChatRoom.
		if _, err := w.s.UpdateRoom(as("42"), r.ID, chat.RoomPatch{Name: str("Final")}); err != nil {
			t.Fatal(err)
		}
		d := data(t, w.expect(route{"chatRoomUpdated", members})[0])
		pm, _ := d["pinned_message"].(map[string]any)
		if d["uuid"] != r.UUID || d["chat_room_name"] != "Final" || d["chat_room_description"] != "new" ||
			d["chat_room_show_history"] != false || pm == nil || pm["id"].(float64) != float64(m.ID) {
			t.Fatalf("SimplifiedChatRoom %s", d)
		}
		// Deleting the pinned message unpins it on the room channel.
		if err := w.s.DeleteMessage(as("43"), r.ID, m.ID); err != nil {
			t.Fatal(err)
		}
		envs := w.expect(route{"deletedMessage", []string{roomCh(r.ID)}}, route{"chatRoomUpdated", []string{roomCh(r.ID)}})
		if data(t, envs[1])["pinned_message"] != nil {
			t.Fatalf("pinned message survived its deletion: %s", envs[1].Data)
		}
		if _, err := w.s.UpdateRoom(as("99"), r.ID, chat.RoomPatch{Name: str("x")}); code(err) != "forbidden" {
			t.Fatalf("outsider update: %v", err)
		}
	}, chat.Migrations())
}

func TestPersonalEventsGoToTheActorOnly(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		if _, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "x"}); err != nil {
			t.Fatal(err)
		}
		w.emitted()

		if err := w.s.MarkRead(as("43"), r.ID); err != nil {
			t.Fatal(err)
		}
		envs := w.expect(route{"chatRoomRead", rooms("43")})
		if data(t, envs[0])["chat_room_uuid"] != r.UUID {
			t.Fatalf("chatRoomRead %s", envs[0].Data)
		}
		if v := must[chat.RoomView](t)(w.s.Get(as("43"), r.ID)); v.UnreadMessagesCount != 0 {
			t.Fatalf("unread after read = %d", v.UnreadMessagesCount)
		}
		if v := must[chat.RoomView](t)(w.s.Get(as("44"), r.ID)); v.UnreadMessagesCount != 1 {
			t.Fatalf("44's unread changed by 43's read: %d", v.UnreadMessagesCount)
		}

		if _, err := w.s.Pin(as("44"), r.ID); err != nil {
			t.Fatal(err)
		}
		envs = w.expect(route{"chatRoomPinned", rooms("44")})
		d := data(t, envs[0])
		if d["chat_room_id"].(float64) != float64(r.ID) || d["pinned_at"] == "" {
			t.Fatalf("chatRoomPinned %s", envs[0].Data)
		}
		if _, err := w.s.Pin(as("44"), r.ID); err != nil {
			t.Fatal(err)
		}
		w.expect() // pinning twice changes nothing
		if err := w.s.Unpin(as("44"), r.ID); err != nil {
			t.Fatal(err)
		}
		envs = w.expect(route{"chatRoomUnPinned", rooms("44")})
		if data(t, envs[0])["chat_room_id"].(float64) != float64(r.ID) {
			t.Fatalf("chatRoomUnPinned %s", envs[0].Data)
		}
		if err := w.s.MarkRead(as("99"), r.ID); code(err) != "forbidden" {
			t.Fatalf("outsider read: %v", err)
		}
		emb := setup(w, true)
		if _, err := w.s.Pin(as("42"), emb.ID); code(err) != "validation_failed" {
			t.Fatalf("pin embedded: %v", err)
		}
		w.expect()
	}, chat.Migrations())
}

func TestRemovedParticipantIsRevoked(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		room := strconv.FormatInt(r.ID, 10)
		if ok := must[bool](t)(w.s.IsRoomParticipant(context.Background(), room, "44")); !ok {
			t.Fatal("44 should be a participant")
		}
		// Only the creator (or the member themself, or an admin) removes.
		if err := w.s.RemoveParticipant(as("43"), r.ID, "44"); code(err) != "forbidden" {
			t.Fatalf("removal by a participant: %v", err)
		}
		if err := w.s.RemoveParticipant(as("42"), r.ID, "44"); err != nil {
			t.Fatal(err)
		}
		envs := w.expect(route{"chatRoomDeleted", rooms("44")})
		if want := []domain.Revocation{{Member: "44", Channel: roomCh(r.ID)}}; !slices.Equal(envs[0].Revoke, want) {
			t.Fatalf("revocations %+v, want %+v", envs[0].Revoke, want)
		}
		if ok := must[bool](t)(w.s.IsRoomParticipant(context.Background(), room, "44")); ok {
			t.Fatal("44 is still a participant")
		}
		if _, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "after"}); err != nil {
			t.Fatal(err)
		}
		w.expect(route{"newMessage", append(rooms("42", "43"), roomCh(r.ID))})
		if _, _, err := w.s.PostMessage(as("44"), r.ID, chat.MessageInput{Body: "still here?"}); code(err) != "forbidden" {
			t.Fatalf("removed member posts: %v", err)
		}
		if err := w.s.RemoveParticipant(as("42"), r.ID, "44"); code(err) != "not_found" {
			t.Fatalf("second removal: %v", err)
		}
		// Leaving is allowed to oneself.
		if err := w.s.RemoveParticipant(as("43"), r.ID, "43"); err != nil {
			t.Fatal(err)
		}
		w.expect(route{"chatRoomDeleted", rooms("43")})
	}, chat.Migrations())
}

func TestLateJoinerAndShowHistory(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		for _, tc := range []struct {
			show bool
			want int
		}{{true, 2}, {false, 1}} {
			t.Run("show_history="+strconv.FormatBool(tc.show), func(t *testing.T) {
				w := newWorld(t, db)
				w.emitted()
				r, err := w.s.CreateRoom(as("42"), chat.RoomInput{Name: "h", ShowHistory: &tc.show})
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "before"}); err != nil {
					t.Fatal(err)
				}
				w.emitted()
				p, err := w.s.AddParticipant(as("42"), r.ID, "45")
				if err != nil || p.CommunityMemberID != "45" {
					t.Fatal(err, p)
				}
				envs := w.expect(route{"chatRoomCreated", rooms("45")})
				if data(t, envs[0])["current_participant"].(map[string]any)["community_member_id"] != 45.0 {
					t.Fatalf("chatRoomCreated to the joiner %s", envs[0].Data)
				}
				if _, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "after"}); err != nil {
					t.Fatal(err)
				}
				l, err := w.s.ListMessages(as("45"), r.ID, nil, domain.Page{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(l.Data) != tc.want || l.Data[0].Body != "after" {
					t.Fatalf("late joiner sees %d messages (%+v), want %d newest first", len(l.Data), l.Data, tc.want)
				}
				l = must[domain.List[chat.JSONMessage]](t)(w.s.ListMessages(as("42"), r.ID, nil, domain.Page{Limit: 1}))
				if len(l.Data) != 1 || l.NextCursor == "" {
					t.Fatalf("first page %+v", l)
				}
			})
		}
	}, chat.Migrations())
}

func TestDeleteRoomRevokesEveryone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		if err := w.s.DeleteRoom(as("43"), r.ID); code(err) != "forbidden" {
			t.Fatalf("delete by a non-creator: %v", err)
		}
		if err := w.s.DeleteRoom(as("42"), r.ID); err != nil {
			t.Fatal(err)
		}
		envs := w.expect(route{"chatRoomDeleted", rooms("42", "43", "44")})
		if data(t, envs[0])["chat_room_uuid"] != r.UUID {
			t.Fatalf("chatRoomDeleted %s", envs[0].Data)
		}
		var revoked []string
		for _, rv := range envs[0].Revoke {
			if rv.Channel != roomCh(r.ID) {
				t.Fatalf("revocation of %q", rv.Channel)
			}
			revoked = append(revoked, rv.Member)
		}
		slices.Sort(revoked)
		if !slices.Equal(revoked, []string{"42", "43", "44"}) {
			t.Fatalf("revoked %v", revoked)
		}
		for _, m := range []string{"42", "43", "44"} {
			if ok := must[bool](t)(w.s.IsRoomParticipant(context.Background(), strconv.FormatInt(r.ID, 10), m)); ok {
				t.Fatalf("%s still a participant of a deleted room", m)
			}
		}
		if _, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "x"}); code(err) != "not_found" {
			t.Fatalf("post to a deleted room: %v", err)
		}
		if _, err := w.s.RoomIDByUUID(context.Background(), r.UUID); code(err) != "not_found" {
			t.Fatalf("uuid of a deleted room: %v", err)
		}
		w.expect()
	}, chat.Migrations())
}

func TestMembershipAndResolver(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		id := strconv.FormatInt(r.ID, 10)
		for _, tc := range []struct {
			room, member string
			want         bool
		}{
			{id, "42", true}, {id, "43", true}, {id, "99", false},
			{"999999", "42", false}, {"abc", "42", false}, {"-1", "42", false},
		} {
			got, err := w.s.IsRoomParticipant(context.Background(), tc.room, tc.member)
			if err != nil || got != tc.want {
				t.Fatalf("IsRoomParticipant(%q,%q) = %v, %v; want %v", tc.room, tc.member, got, err, tc.want)
			}
		}
		got, err := w.s.RoomIDByUUID(context.Background(), r.UUID)
		if err != nil || got != id {
			t.Fatalf("RoomIDByUUID = %q, %v; want %q", got, err, id)
		}
		if _, err := w.s.RoomIDByUUID(context.Background(), "nope"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown uuid: %v", err)
		}
		if _, err := w.s.CreateRoom(as("42"), chat.RoomInput{Name: "a", Identifier: "dm:1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.s.CreateRoom(as("42"), chat.RoomInput{Name: "b", Identifier: "dm:1"}); code(err) != "conflict" {
			t.Fatalf("duplicate identifier: %v", err)
		}
	}, chat.Migrations())
}

func jwtSub(member string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: member} }
