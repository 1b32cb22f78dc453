package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"switchboard/domain"
)

// Store keeps rooms, participants, messages and threads. Every write also
// writes its events to the outbox in the same transaction, and every count
// an event carries is read back inside that transaction, so what clients see
// never drifts from the rows.
type Store struct {
	db *domain.DB
}

// NewStore returns a Store on db.
func NewStore(db *domain.DB) *Store { return &Store{db: db} }

var (
	_ domain.Membership   = (*Store)(nil)
	_ domain.RoomResolver = (*Store)(nil)
)

// IsRoomParticipant implements domain.Membership: room is the numeric room
// id of chat-room-{room}-channel; removed participants and deleted rooms
// answer false.
func (s *Store) IsRoomParticipant(ctx context.Context, room, member string) (bool, error) {
	id, err := strconv.ParseInt(room, 10, 64)
	if err != nil || id < 1 {
		return false, nil
	}
	var n int
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM chat_participants WHERE room_id = $1 AND member_id = $2 AND removed_at IS NULL`,
		id, member).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("chat: membership: %w", err)
	}
	return n > 0, nil
}

// RoomIDByUUID implements domain.RoomResolver.
func (s *Store) RoomIDByUUID(ctx context.Context, uuid string) (string, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM chat_rooms WHERE uuid = $1`, uuid).Scan(&id)
	if domain.IsNoRows(err) {
		return "", domain.NotFound("chat room %q not found", uuid)
	}
	if err != nil {
		return "", fmt.Errorf("chat: room by uuid: %w", err)
	}
	return itoa(id), nil
}

// room is a chat_rooms row.
type room struct {
	ID              int64
	UUID            string
	Identifier      string
	Kind            string
	Name            string
	Description     string
	ShowHistory     bool
	Embedded        bool
	PinnedMessageID *int64
	CreatorID       string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

const roomCols = `id, uuid, identifier, kind, name, description, show_history, embedded, pinned_message_id, creator_id, created_at, updated_at`

func loadRoom(ctx context.Context, q domain.Querier, id int64) (room, error) {
	var r room
	err := q.QueryRowContext(ctx, `SELECT `+roomCols+` FROM chat_rooms WHERE id = $1`, id).Scan(&r.ID, &r.UUID, &r.Identifier,
		&r.Kind, &r.Name, &r.Description, &r.ShowHistory, &r.Embedded, &r.PinnedMessageID, &r.CreatorID, &r.CreatedAt, &r.UpdatedAt)
	if domain.IsNoRows(err) {
		return room{}, domain.NotFound("chat room %d not found", id)
	}
	if err != nil {
		return room{}, fmt.Errorf("chat: load room: %w", err)
	}
	return r, nil
}

// participant is an active chat_participants row.
type participant struct {
	ID           int64
	MemberID     string
	Name         string
	Unread       int
	LastRead     *int64
	VisibleAfter int64
	PinnedAt     *time.Time
}

func (p participant) json() ParticipantJSON {
	var pinned *string
	if p.PinnedAt != nil {
		s := p.PinnedAt.UTC().Format(time.RFC3339)
		pinned = &s
	}
	return ParticipantJSON{ID: p.ID, CommunityMemberID: MemberID(p.MemberID), Name: p.Name, UnreadMessagesCount: p.Unread,
		LastReadMessageID: p.LastRead, PinnedAt: pinned}
}

const partQuery = `SELECT p.id, p.member_id, p.name, p.unread_count, p.last_read_message_id, p.visible_after, pin.pinned_at
FROM chat_participants p LEFT JOIN chat_pins pin ON pin.room_id = p.room_id AND pin.member_id = p.member_id
WHERE p.room_id = $1 AND p.removed_at IS NULL`

func scanParticipant(row interface{ Scan(...any) error }) (participant, error) {
	var p participant
	var pinned sql.NullTime
	if err := row.Scan(&p.ID, &p.MemberID, &p.Name, &p.Unread, &p.LastRead, &p.VisibleAfter, &pinned); err != nil {
		return participant{}, err
	}
	if pinned.Valid {
		t := pinned.Time.UTC()
		p.PinnedAt = &t
	}
	return p, nil
}

// participants lists the room's active participants by join order.
func participants(ctx context.Context, q domain.Querier, roomID int64) ([]participant, error) {
	rows, err := q.QueryContext(ctx, partQuery+` ORDER BY p.id`, roomID)
	if err != nil {
		return nil, fmt.Errorf("chat: participants: %w", err)
	}
	defer rows.Close()
	var out []participant
	for rows.Next() {
		p, err := scanParticipant(rows)
		if err != nil {
			return nil, fmt.Errorf("chat: participants: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// findParticipant returns member's active participation, or ok=false.
func findParticipant(ctx context.Context, q domain.Querier, roomID int64, member string) (participant, bool, error) {
	p, err := scanParticipant(q.QueryRowContext(ctx, partQuery+` AND p.member_id = $2`, roomID, member))
	if domain.IsNoRows(err) {
		return participant{}, false, nil
	}
	if err != nil {
		return participant{}, false, fmt.Errorf("chat: participant: %w", err)
	}
	return p, true, nil
}

func memberIDs(ps []participant) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.MemberID
	}
	return out
}

// message is a chat_messages row.
type message struct {
	ID            int64
	RoomID        int64
	ParticipantID int64
	SenderID      string
	SenderName    string
	Body          string
	RichText      *string
	CreationUUID  *string
	ParentID      *int64
	ThreadID      *int64
	RepliesCount  int
	SentAt        time.Time
	CreatedAt     time.Time
	EditedAt      *time.Time
}

const msgCols = `id, room_id, participant_id, sender_id, sender_name, body, rich_text_body, creation_uuid, parent_message_id, thread_id, replies_count, sent_at, created_at, edited_at`

func scanMessage(row interface{ Scan(...any) error }) (message, error) {
	var m message
	var edited sql.NullTime
	if err := row.Scan(&m.ID, &m.RoomID, &m.ParticipantID, &m.SenderID, &m.SenderName, &m.Body, &m.RichText, &m.CreationUUID,
		&m.ParentID, &m.ThreadID, &m.RepliesCount, &m.SentAt, &m.CreatedAt, &edited); err != nil {
		return message{}, err
	}
	if edited.Valid {
		t := edited.Time.UTC()
		m.EditedAt = &t
	}
	return m, nil
}

func loadMessage(ctx context.Context, q domain.Querier, roomID, id int64) (message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+msgCols+` FROM chat_messages WHERE room_id = $1 AND id = $2`, roomID, id))
	if domain.IsNoRows(err) {
		return message{}, domain.NotFound("message %d not found", id)
	}
	if err != nil {
		return message{}, fmt.Errorf("chat: load message: %w", err)
	}
	return m, nil
}

// threadPreviewSize is how many thread participants a message shows; the
// total comes separately, as the seed's clients render "A, B, C and 4 more".
const threadPreviewSize = 3

// view renders m in the newMessage shape, reading thread counts in q (the
// writing transaction, for events).
func view(ctx context.Context, q domain.Querier, r room, m message) (JSONMessage, error) {
	out := JSONMessage{
		MessageJSON: MessageJSON{
			ID: m.ID, ChatRoomUUID: r.UUID, ChatRoomParticipantID: m.ParticipantID, Body: m.Body,
			SentAt: domain.Timestamp(m.SentAt), CreatedAt: domain.Timestamp(m.CreatedAt),
			Sender:       Member{ID: MemberID(m.SenderID), CommunityMemberID: MemberID(m.SenderID), Name: m.SenderName},
			CreationUUID: m.CreationUUID, ChatThreadID: m.ThreadID, ParentMessageID: m.ParentID,
			RepliesCount: m.RepliesCount, ThreadParticipantsPreview: []Member{},
		},
		ChatRoomKind: r.Kind,
	}
	if m.RichText != nil {
		out.RichTextBody = json.RawMessage(*m.RichText)
	}
	if m.EditedAt != nil {
		t := domain.Timestamp(*m.EditedAt)
		out.EditedAt = &t
	}
	if m.ThreadID == nil {
		return out, nil
	}
	if err := q.QueryRowContext(ctx, `SELECT replies_count FROM chat_threads WHERE id = $1`, *m.ThreadID).
		Scan(&out.ChatThreadRepliesCount); err != nil && !domain.IsNoRows(err) {
		return JSONMessage{}, fmt.Errorf("chat: thread: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM chat_thread_participants WHERE thread_id = $1`, *m.ThreadID).
		Scan(&out.TotalThreadParticipantsCount); err != nil {
		return JSONMessage{}, fmt.Errorf("chat: thread participants: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT member_id, name FROM chat_thread_participants WHERE thread_id = $1
ORDER BY joined_at, member_id LIMIT `+itoa(threadPreviewSize), *m.ThreadID)
	if err != nil {
		return JSONMessage{}, fmt.Errorf("chat: thread preview: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return JSONMessage{}, fmt.Errorf("chat: thread preview: %w", err)
		}
		out.ThreadParticipantsPreview = append(out.ThreadParticipantsPreview,
			Member{ID: MemberID(id), CommunityMemberID: MemberID(id), Name: name})
	}
	return out, rows.Err()
}

// threadMembers lists the thread's participants who still take part in the
// room: a member removed from the room stops getting its thread events.
func threadMembers(ctx context.Context, q domain.Querier, threadID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT tp.member_id FROM chat_thread_participants tp
JOIN chat_threads t ON t.id = tp.thread_id
JOIN chat_participants p ON p.room_id = t.room_id AND p.member_id = tp.member_id AND p.removed_at IS NULL
WHERE tp.thread_id = $1 ORDER BY tp.joined_at, tp.member_id`, threadID)
	if err != nil {
		return nil, fmt.Errorf("chat: thread members: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("chat: thread members: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// caller returns the bearer's claims; the REST group guarantees them.
func caller(ctx context.Context) (*domain.Claims, error) {
	c := domain.ClaimsFrom(ctx)
	if c == nil || c.Subject == "" {
		return nil, domain.ErrUnauthorized
	}
	return c, nil
}

// validMember reports whether id can name a member channel (the same rule
// the gateway parses channel names with).
func validMember(id string) bool {
	pc := domain.ParseChannel(domain.MemberChannel(domain.StreamChatRooms, id))
	return pc.Kind == domain.KindMember && pc.Member == id
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// inRoom runs fn in a transaction that first locks the room's row. Writes to
// one room are serialized on PostgreSQL too (SQLite has one writer anyway),
// so a repeated creation_uuid or a thread's first two replies never race,
// and an event's participant list is never read while a removal commits.
func (s *Store) inRoom(ctx context.Context, roomID int64, fn func(tx *domain.Tx) error) error {
	return s.db.InTx(ctx, func(tx *domain.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE chat_rooms SET updated_at = updated_at WHERE id = $1`, roomID); err != nil {
			return fmt.Errorf("chat: lock room: %w", err)
		}
		return fn(tx)
	})
}

// MemberID is a member id in a request body or a payload: "43" and 43 are
// read alike, and a numeric id is written as a number (see
// domain.MemberID).
type MemberID = domain.MemberID
