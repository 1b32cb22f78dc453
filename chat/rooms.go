package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"switchboard/domain"
)

// RoomInput creates a room. The creator (the bearer) always becomes a
// participant; ParticipantIDs are the other members.
type RoomInput struct {
	Name           string     `json:"name"`
	Kind           string     `json:"kind"`
	Description    string     `json:"description"`
	ShowHistory    *bool      `json:"show_history"`
	Embedded       bool       `json:"embedded"`
	Identifier     string     `json:"identifier"`
	ParticipantIDs []MemberID `json:"participant_ids"`
}

// maxParticipants bounds one room: chatRoomCreated is one event per
// participant, written in the creating transaction.
const maxParticipants = 500

func (in *RoomInput) validate() error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return domain.Invalid("name", "is required")
	}
	if len(in.Name) > 200 {
		return domain.Invalid("name", "must be at most 200 characters")
	}
	if in.Kind == "" {
		in.Kind = "group_chat"
	}
	if len(in.Kind) > 50 {
		return domain.Invalid("kind", "must be at most 50 characters")
	}
	if len(in.Description) > 2000 {
		return domain.Invalid("description", "must be at most 2000 characters")
	}
	if len(in.Identifier) > 200 {
		return domain.Invalid("identifier", "must be at most 200 characters")
	}
	if len(in.ParticipantIDs) > maxParticipants {
		return domain.Invalid("participant_ids", "must list at most %d members", maxParticipants)
	}
	for _, m := range in.ParticipantIDs {
		if !validMember(string(m)) {
			return domain.Invalid("participant_ids", "%q is not a member id", m)
		}
	}
	return nil
}

// RoomView is a room as one member sees it over REST: the seed's ChatRoom
// plus what a client needs to render it.
type RoomView struct {
	ChatRoom
	Embedded        bool             `json:"embedded"`
	PinnedMessageID *int64           `json:"pinned_message_id"`
	PinnedAt        *string          `json:"pinned_at"`
	CreatorID       MemberID         `json:"creator_id"`
	CreatedAt       domain.Timestamp `json:"created_at"`
}

// roomFor renders r for participant me.
func roomFor(ctx context.Context, q domain.Querier, r room, me participant, all []participant) (RoomView, error) {
	cur := me.json()
	others := []ParticipantJSON{}
	for _, p := range all {
		if p.MemberID != me.MemberID && len(others) < 5 {
			others = append(others, p.json())
		}
	}
	v := RoomView{
		ChatRoom: ChatRoom{
			ID: r.ID, UUID: r.UUID, Identifier: r.Identifier, UnreadMessagesCount: me.Unread, ChatRoomKind: r.Kind,
			ChatRoomName: r.Name, ChatRoomDescription: r.Description, ChatRoomShowHistory: r.ShowHistory,
			OtherParticipantsPreview: others, CurrentParticipant: &cur,
		},
		Embedded: r.Embedded, PinnedMessageID: r.PinnedMessageID, PinnedAt: cur.PinnedAt, CreatorID: MemberID(r.CreatorID),
		CreatedAt: domain.Timestamp(r.CreatedAt),
	}
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+msgCols+` FROM chat_messages
WHERE room_id = $1 AND parent_message_id IS NULL AND id > $2 ORDER BY id DESC LIMIT 1`, r.ID, visibleAfter(r, me)))
	if domain.IsNoRows(err) {
		return v, nil
	}
	if err != nil {
		return RoomView{}, fmt.Errorf("chat: last message: %w", err)
	}
	last, err := view(ctx, q, r, m)
	if err != nil {
		return RoomView{}, err
	}
	v.LastMessage = &last
	return v, nil
}

// visibleAfter is the id below which me may not read: late joiners of a
// room that hides its history see only what came after they joined.
func visibleAfter(r room, me participant) int64 {
	if r.ShowHistory {
		return 0
	}
	return me.VisibleAfter
}

// CreateRoom creates a room with the bearer and the listed members, and for
// a non-embedded room sends each participant chatRoomCreated with their own
// view of it (one event per member: the payloads differ).
func (s *Store) CreateRoom(ctx context.Context, in RoomInput) (RoomView, error) {
	cl, err := caller(ctx)
	if err != nil {
		return RoomView{}, err
	}
	if err := in.validate(); err != nil {
		return RoomView{}, err
	}
	var out RoomView
	err = s.db.InTx(ctx, func(tx *domain.Tx) error {
		t := now()
		showHistory := in.ShowHistory == nil || *in.ShowHistory
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO chat_rooms (uuid, identifier, kind, name, description, show_history, embedded, creator_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			uuid.NewString(), in.Identifier, in.Kind, in.Name, in.Description, showHistory, in.Embedded, cl.Subject, t, t).Scan(&id)
		if domain.IsUniqueViolation(err) {
			return domain.Conflict("a chat room with identifier %q exists", in.Identifier)
		}
		if err != nil {
			return fmt.Errorf("chat: create room: %w", err)
		}
		members := []string{cl.Subject}
		for _, m := range in.ParticipantIDs {
			members = append(members, string(m))
		}
		seen := map[string]bool{}
		for _, m := range members {
			if seen[m] {
				continue
			}
			seen[m] = true
			name := ""
			if m == cl.Subject {
				name = cl.Name
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO chat_participants (room_id, member_id, name, joined_at) VALUES ($1, $2, $3, $4)`,
				id, m, name, t); err != nil {
				return fmt.Errorf("chat: add participant: %w", err)
			}
		}
		r, err := loadRoom(ctx, tx, id)
		if err != nil {
			return err
		}
		all, err := participants(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, p := range all {
			v, err := roomFor(ctx, tx, r, p, all)
			if err != nil {
				return err
			}
			if p.MemberID == cl.Subject {
				out = v
			}
			if !r.Embedded {
				if err := tx.Emit(memberRooms(p.MemberID), ChatRoomCreated{v.ChatRoom}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// access loads the room and the bearer's participation. Admins pass
// without being participants (ok=false then).
func access(ctx context.Context, q domain.Querier, roomID int64) (*domain.Claims, room, participant, bool, error) {
	cl, err := caller(ctx)
	if err != nil {
		return nil, room{}, participant{}, false, err
	}
	r, err := loadRoom(ctx, q, roomID)
	if err != nil {
		return nil, room{}, participant{}, false, err
	}
	me, ok, err := findParticipant(ctx, q, roomID, cl.Subject)
	if err != nil {
		return nil, room{}, participant{}, false, err
	}
	if !ok && !cl.Admin {
		return nil, room{}, participant{}, false, domain.Forbidden("member %s is not a participant of chat room %d", cl.Subject, roomID)
	}
	return cl, r, me, ok, nil
}

// participantOnly is access for actions only a participant can take
// (posting, reading, pinning), admins included.
func participantOnly(ctx context.Context, q domain.Querier, roomID int64) (*domain.Claims, room, participant, error) {
	cl, r, me, ok, err := access(ctx, q, roomID)
	if err != nil {
		return nil, room{}, participant{}, err
	}
	if !ok {
		return nil, room{}, participant{}, domain.Forbidden("member %s is not a participant of chat room %d", cl.Subject, roomID)
	}
	return cl, r, me, nil
}

// Get returns the room as the bearer sees it.
func (s *Store) Get(ctx context.Context, roomID int64) (RoomView, error) {
	_, r, me, _, err := access(ctx, s.db, roomID)
	if err != nil {
		return RoomView{}, err
	}
	all, err := participants(ctx, s.db, roomID)
	if err != nil {
		return RoomView{}, err
	}
	return roomFor(ctx, s.db, r, me, all)
}

// ListRooms pages through the bearer's rooms by id, each with the bearer's
// unread count.
func (s *Store) ListRooms(ctx context.Context, page domain.Page) (domain.List[RoomView], error) {
	cl, err := caller(ctx)
	if err != nil {
		return domain.List[RoomView]{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT room_id FROM chat_participants WHERE member_id = $1 AND removed_at IS NULL AND room_id > $2
ORDER BY room_id LIMIT $3`, cl.Subject, page.After, page.Limit+1)
	if err != nil {
		return domain.List[RoomView]{}, fmt.Errorf("chat: list rooms: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return domain.List[RoomView]{}, fmt.Errorf("chat: list rooms: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return domain.List[RoomView]{}, fmt.Errorf("chat: list rooms: %w", err)
	}
	out := make([]RoomView, 0, len(ids))
	for _, id := range ids {
		r, err := loadRoom(ctx, s.db, id)
		if err != nil {
			return domain.List[RoomView]{}, err
		}
		all, err := participants(ctx, s.db, id)
		if err != nil {
			return domain.List[RoomView]{}, err
		}
		for _, p := range all {
			if p.MemberID == cl.Subject {
				v, err := roomFor(ctx, s.db, r, p, all)
				if err != nil {
					return domain.List[RoomView]{}, err
				}
				out = append(out, v)
			}
		}
	}
	return domain.NewList(out, page.Limit, func(v RoomView) int64 { return v.ID }), nil
}

// RoomPatch changes a room. Nil fields stay; pinned_message_id may be set
// to null to unpin the message (so it is raw, to tell null from absent).
type RoomPatch struct {
	Name            *string         `json:"name"`
	Description     *string         `json:"description"`
	ShowHistory     *bool           `json:"show_history"`
	PinnedMessageID json.RawMessage `json:"pinned_message_id"`
}

// UpdateRoom applies p. Any change of name, description, show_history or
// pinned message goes to the room channel as chatRoomUpdated; a name or
// pinned-message change of a non-embedded room also goes to every
// participant's chat-room-channel (same payload, one envelope).
func (s *Store) UpdateRoom(ctx context.Context, roomID int64, p RoomPatch) (RoomView, error) {
	var out RoomView
	err := s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		cl, r, me, _, err := access(ctx, tx, roomID)
		if err != nil {
			return err
		}
		nameOrPin, changed := false, false
		if p.Name != nil {
			n := strings.TrimSpace(*p.Name)
			if n == "" {
				return domain.Invalid("name", "must not be empty")
			}
			if len(n) > 200 {
				return domain.Invalid("name", "must be at most 200 characters")
			}
			if n != r.Name {
				r.Name, nameOrPin, changed = n, true, true
			}
		}
		if p.Description != nil {
			if len(*p.Description) > 2000 {
				return domain.Invalid("description", "must be at most 2000 characters")
			}
			if *p.Description != r.Description {
				r.Description, changed = *p.Description, true
			}
		}
		if p.ShowHistory != nil && *p.ShowHistory != r.ShowHistory {
			r.ShowHistory, changed = *p.ShowHistory, true
		}
		if len(p.PinnedMessageID) > 0 {
			var pin *int64
			if !bytes.Equal(bytes.TrimSpace(p.PinnedMessageID), []byte("null")) {
				var id int64
				if err := json.Unmarshal(p.PinnedMessageID, &id); err != nil || id < 1 {
					return domain.Invalid("pinned_message_id", "must be a message id or null")
				}
				if _, err := loadMessage(ctx, tx, r.ID, id); err != nil {
					return domain.Invalid("pinned_message_id", "message %d is not in this room", id)
				}
				pin = &id
			}
			if !sameID(pin, r.PinnedMessageID) {
				r.PinnedMessageID, nameOrPin, changed = pin, true, true
			}
		}
		if changed {
			r.UpdatedAt = now()
			if _, err := tx.ExecContext(ctx, `UPDATE chat_rooms SET name = $1, description = $2, show_history = $3, pinned_message_id = $4, updated_at = $5 WHERE id = $6`,
				r.Name, r.Description, r.ShowHistory, r.PinnedMessageID, r.UpdatedAt, r.ID); err != nil {
				return fmt.Errorf("chat: update room: %w", err)
			}
			scope := roomScope(r.ID)
			if nameOrPin && !r.Embedded {
				all, err := participants(ctx, tx, r.ID)
				if err != nil {
					return err
				}
				scope.Members, scope.Stream = memberIDs(all), domain.StreamChatRooms
			}
			ev, err := simplified(ctx, tx, r)
			if err != nil {
				return err
			}
			if err := tx.Emit(scope, ChatRoomUpdated{ev}); err != nil {
				return err
			}
		}
		all, err := participants(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if me.MemberID == "" {
			me.MemberID = cl.Subject
		}
		out, err = roomFor(ctx, tx, r, me, all)
		return err
	})
	return out, err
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// simplified renders the seed's SimplifiedChatRoom.
func simplified(ctx context.Context, q domain.Querier, r room) (SimplifiedChatRoom, error) {
	out := SimplifiedChatRoom{UUID: r.UUID, ChatRoomName: r.Name, ChatRoomDescription: r.Description, ChatRoomShowHistory: r.ShowHistory}
	if r.PinnedMessageID != nil {
		m, err := loadMessage(ctx, q, r.ID, *r.PinnedMessageID)
		if err != nil {
			return SimplifiedChatRoom{}, err
		}
		v, err := view(ctx, q, r, m)
		if err != nil {
			return SimplifiedChatRoom{}, err
		}
		out.PinnedMessage = &v
	}
	return out, nil
}

// DeleteRoom deletes the room (its creator or an admin). Every participant
// gets chatRoomDeleted, and the same envelope revokes their room channel
// subscriptions: a deleted room's channel receives nothing more.
func (s *Store) DeleteRoom(ctx context.Context, roomID int64) error {
	return s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		cl, r, _, _, err := access(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if r.CreatorID != cl.Subject && !cl.Admin {
			return domain.Forbidden("only the creator of chat room %d may delete it", roomID)
		}
		all, err := participants(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM chat_rooms WHERE id = $1`, r.ID); err != nil {
			return fmt.Errorf("chat: delete room: %w", err)
		}
		for _, p := range all {
			tx.Revoke(p.MemberID, domain.RoomChannel(itoa(r.ID)))
		}
		if len(all) == 0 {
			return nil
		}
		return tx.Emit(memberRooms(memberIDs(all)...), ChatRoomDeleted{ChatRoomUUID: r.UUID})
	})
}

// AddParticipant adds member to the room (any participant or an admin may).
// A member joining later sees the history only if the room shows it. The
// new member of a non-embedded room gets chatRoomCreated, so the room
// appears in their list as it does for members present at creation.
func (s *Store) AddParticipant(ctx context.Context, roomID int64, member string) (ParticipantJSON, error) {
	if !validMember(member) {
		return ParticipantJSON{}, domain.Invalid("member_id", "is not a member id")
	}
	var out ParticipantJSON
	err := s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		_, r, _, _, err := access(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if p, ok, err := findParticipant(ctx, tx, r.ID, member); err != nil {
			return err
		} else if ok {
			out = p.json()
			return nil
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM chat_messages WHERE room_id = $1`, r.ID).Scan(&last); err != nil {
			return fmt.Errorf("chat: add participant: %w", err)
		}
		t := now()
		// A removed member rejoins on the same row (their old messages keep
		// pointing at it) with a fresh unread count and visibility.
		if _, err := tx.ExecContext(ctx, `INSERT INTO chat_participants (room_id, member_id, visible_after, joined_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (room_id, member_id) DO UPDATE SET removed_at = NULL, unread_count = 0, last_read_message_id = NULL,
  visible_after = excluded.visible_after, joined_at = excluded.joined_at`, r.ID, member, last, t); err != nil {
			return fmt.Errorf("chat: add participant: %w", err)
		}
		all, err := participants(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		for _, p := range all {
			if p.MemberID != member {
				continue
			}
			out = p.json()
			if r.Embedded {
				return nil
			}
			v, err := roomFor(ctx, tx, r, p, all)
			if err != nil {
				return err
			}
			return tx.Emit(memberRooms(member), ChatRoomCreated{v.ChatRoom})
		}
		return fmt.Errorf("chat: participant %s vanished", member)
	})
	return out, err
}

// RemoveParticipant removes member (themself, the room's creator or an
// admin may). The member gets chatRoomDeleted on their chat-room-channel,
// and that envelope revokes their room channel subscription so the gateway
// drops it before anything else reaches the room.
func (s *Store) RemoveParticipant(ctx context.Context, roomID int64, member string) error {
	return s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		cl, r, _, _, err := access(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if member != cl.Subject && r.CreatorID != cl.Subject && !cl.Admin {
			return domain.Forbidden("only the creator of chat room %d may remove other participants", roomID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE chat_participants SET removed_at = $1 WHERE room_id = $2 AND member_id = $3 AND removed_at IS NULL`,
			now(), r.ID, member)
		if err != nil {
			return fmt.Errorf("chat: remove participant: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domain.NotFound("member %s is not a participant of chat room %d", member, roomID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM chat_pins WHERE room_id = $1 AND member_id = $2`, r.ID, member); err != nil {
			return fmt.Errorf("chat: remove participant: %w", err)
		}
		tx.Revoke(member, domain.RoomChannel(itoa(r.ID)))
		return tx.Emit(memberRooms(member), ChatRoomDeleted{ChatRoomUUID: r.UUID})
	})
}

// MarkRead zeroes the bearer's unread count and tells the bearer's other
// sessions (chatRoomRead on their chat-room-channel).
func (s *Store) MarkRead(ctx context.Context, roomID int64) error {
	return s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		_, r, me, err := participantOnly(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chat_participants SET unread_count = 0,
  last_read_message_id = (SELECT MAX(id) FROM chat_messages WHERE room_id = $1) WHERE id = $2`, r.ID, me.ID); err != nil {
			return fmt.Errorf("chat: mark read: %w", err)
		}
		return tx.Emit(memberRooms(me.MemberID), ChatRoomRead{ChatRoomUUID: r.UUID})
	})
}

// Pin pins a non-embedded room for the bearer (chatRoomPinned to them).
// Pinning again keeps the first pinned_at and sends nothing.
func (s *Store) Pin(ctx context.Context, roomID int64) (time.Time, error) {
	var at time.Time
	err := s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		_, r, me, err := participantOnly(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if r.Embedded {
			return domain.Invalid("room", "embedded chat rooms cannot be pinned")
		}
		if me.PinnedAt != nil {
			at = *me.PinnedAt
			return nil
		}
		at = now().Truncate(time.Second)
		if _, err := tx.ExecContext(ctx, `INSERT INTO chat_pins (room_id, member_id, pinned_at) VALUES ($1, $2, $3)`,
			r.ID, me.MemberID, at); err != nil {
			return fmt.Errorf("chat: pin: %w", err)
		}
		return tx.Emit(memberRooms(me.MemberID), ChatRoomPinned{ChatRoomID: r.ID, PinnedAt: domain.Timestamp(at)})
	})
	return at, err
}

// Unpin unpins the room for the bearer (chatRoomUnPinned to them, only if
// it was pinned).
func (s *Store) Unpin(ctx context.Context, roomID int64) error {
	return s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		_, r, me, err := participantOnly(ctx, tx, roomID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM chat_pins WHERE room_id = $1 AND member_id = $2`, r.ID, me.MemberID)
		if err != nil {
			return fmt.Errorf("chat: unpin: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return tx.Emit(memberRooms(me.MemberID), ChatRoomUnPinned{ChatRoomID: r.ID})
	})
}
