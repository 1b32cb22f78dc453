package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"switchboard/domain"
)

// MessageInput posts a message. CreationUUID is the client's id for it: a
// repeat returns the first message and emits nothing.
type MessageInput struct {
	Body            string          `json:"body"`
	RichTextBody    json.RawMessage `json:"rich_text_body"`
	CreationUUID    *string         `json:"creation_uuid"`
	ParentMessageID *int64          `json:"parent_message_id"`
}

// maxBody bounds a message body; the seed's clients cap input similarly.
const maxBody = 10000

func validateBody(body string, rich json.RawMessage) (*string, error) {
	if strings.TrimSpace(body) == "" {
		return nil, domain.Invalid("body", "is required")
	}
	if len(body) > maxBody {
		return nil, domain.Invalid("body", "must be at most %d characters", maxBody)
	}
	rich = bytes.TrimSpace(rich)
	if len(rich) == 0 || bytes.Equal(rich, []byte("null")) {
		return nil, nil
	}
	if rich[0] != '{' || !json.Valid(rich) {
		return nil, domain.Invalid("rich_text_body", "must be a JSON object")
	}
	if len(rich) > 4*maxBody {
		return nil, domain.Invalid("rich_text_body", "is too large")
	}
	s := string(rich)
	return &s, nil
}

// PostMessage stores a message of the bearer (a participant) and routes it:
//   - the room channel gets newMessage for every message, replies included;
//   - a top-level message of a non-embedded room also goes to every
//     participant's chat-room-channel (same payload, same envelope);
//   - a reply goes to the threads channel of every thread participant.
//
// created is false when creation_uuid repeated an earlier message.
func (s *Store) PostMessage(ctx context.Context, roomID int64, in MessageInput) (out JSONMessage, created bool, err error) {
	rich, err := validateBody(in.Body, in.RichTextBody)
	if err != nil {
		return JSONMessage{}, false, err
	}
	if in.CreationUUID != nil && (*in.CreationUUID == "" || len(*in.CreationUUID) > 100) {
		return JSONMessage{}, false, domain.Invalid("creation_uuid", "must be 1 to 100 characters")
	}
	err = s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		cl, r, me, err := participantOnly(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if in.CreationUUID != nil {
			m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+msgCols+` FROM chat_messages WHERE room_id = $1 AND sender_id = $2 AND creation_uuid = $3`,
				r.ID, me.MemberID, *in.CreationUUID))
			if err == nil {
				out, err = view(ctx, tx, r, m)
				return err
			}
			if !domain.IsNoRows(err) {
				return fmt.Errorf("chat: creation uuid: %w", err)
			}
		}
		var parent message
		if in.ParentMessageID != nil {
			if parent, err = loadMessage(ctx, tx, r.ID, *in.ParentMessageID); err != nil {
				return domain.Invalid("parent_message_id", "message %d is not in this room", *in.ParentMessageID)
			}
			if parent.ParentID != nil {
				return domain.Invalid("parent_message_id", "replies to replies are not supported; reply to message %d", *parent.ParentID)
			}
			if parent.ID <= visibleAfter(r, me) {
				return domain.Invalid("parent_message_id", "message %d is not in this room", parent.ID)
			}
		}
		name := me.Name
		if cl.Name != "" && cl.Name != me.Name {
			name = cl.Name
			if _, err := tx.ExecContext(ctx, `UPDATE chat_participants SET name = $1 WHERE id = $2`, name, me.ID); err != nil {
				return fmt.Errorf("chat: participant name: %w", err)
			}
		}
		t := now()
		var threadID *int64
		if in.ParentMessageID != nil {
			id, err := ensureThread(ctx, tx, r.ID, parent)
			if err != nil {
				return err
			}
			threadID = &id
		}
		m := message{RoomID: r.ID, ParticipantID: me.ID, SenderID: me.MemberID, SenderName: name, Body: in.Body, RichText: rich,
			CreationUUID: in.CreationUUID, ParentID: in.ParentMessageID, ThreadID: threadID, SentAt: t, CreatedAt: t}
		if err := tx.QueryRowContext(ctx, `INSERT INTO chat_messages (room_id, participant_id, sender_id, sender_name, body, rich_text_body, creation_uuid, parent_message_id, thread_id, sent_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`, m.RoomID, m.ParticipantID, m.SenderID, m.SenderName, m.Body,
			m.RichText, m.CreationUUID, m.ParentID, m.ThreadID, m.SentAt, m.CreatedAt).Scan(&m.ID); err != nil {
			return fmt.Errorf("chat: insert message: %w", err)
		}
		created = true
		if threadID == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE chat_participants SET unread_count = unread_count + 1
WHERE room_id = $1 AND removed_at IS NULL AND member_id <> $2`, r.ID, me.MemberID); err != nil {
				return fmt.Errorf("chat: unread counts: %w", err)
			}
		} else if err := addReply(ctx, tx, *threadID, parent.ID, me.MemberID, name, t); err != nil {
			return err
		}
		if out, err = view(ctx, tx, r, m); err != nil {
			return err
		}
		scope := roomScope(r.ID)
		if threadID == nil && !r.Embedded {
			all, err := participants(ctx, tx, r.ID)
			if err != nil {
				return err
			}
			scope.Members, scope.Stream = memberIDs(all), domain.StreamChatRooms
		}
		if err := tx.Emit(scope, NewMessage{out}); err != nil {
			return err
		}
		if threadID == nil {
			return nil
		}
		members, err := threadMembers(ctx, tx, *threadID)
		if err != nil || len(members) == 0 {
			return err
		}
		return tx.Emit(memberThreads(members...), NewMessage{out})
	})
	return out, created, err
}

// ensureThread returns the thread of parent, starting it (with the parent's
// sender as its first participant) on the first reply.
func ensureThread(ctx context.Context, tx *domain.Tx, roomID int64, parent message) (int64, error) {
	if parent.ThreadID != nil {
		return *parent.ThreadID, nil
	}
	t := now()
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO chat_threads (room_id, parent_message_id, created_at) VALUES ($1, $2, $3) RETURNING id`,
		roomID, parent.ID, t).Scan(&id); err != nil {
		return 0, fmt.Errorf("chat: start thread: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE chat_messages SET thread_id = $1 WHERE id = $2`, id, parent.ID); err != nil {
		return 0, fmt.Errorf("chat: start thread: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chat_thread_participants (thread_id, member_id, name, joined_at) VALUES ($1, $2, $3, $4)`,
		id, parent.SenderID, parent.SenderName, parent.CreatedAt); err != nil {
		return 0, fmt.Errorf("chat: start thread: %w", err)
	}
	return id, nil
}

// addReply counts a reply on its thread and parent, makes the replier a
// thread participant and raises the other thread participants' unread.
func addReply(ctx context.Context, tx *domain.Tx, threadID, parentID int64, member, name string, at time.Time) error {
	stmts := []struct {
		q    string
		args []any
	}{
		{`UPDATE chat_threads SET replies_count = replies_count + 1 WHERE id = $1`, []any{threadID}},
		{`UPDATE chat_messages SET replies_count = replies_count + 1 WHERE id = $1`, []any{parentID}},
		{`INSERT INTO chat_thread_participants (thread_id, member_id, name, joined_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (thread_id, member_id) DO UPDATE SET name = excluded.name`, []any{threadID, member, name, at}},
		{`UPDATE chat_thread_participants SET unread_count = unread_count + 1 WHERE thread_id = $1 AND member_id <> $2`, []any{threadID, member}},
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
			return fmt.Errorf("chat: reply: %w", err)
		}
	}
	return nil
}

// EditInput changes a message's text.
type EditInput struct {
	Body         string          `json:"body"`
	RichTextBody json.RawMessage `json:"rich_text_body"`
}

// EditMessage changes a message (its sender or an admin) and sends
// updatedMessage to the room channel and, when the message belongs to a
// thread, to the thread participants' threads channels.
func (s *Store) EditMessage(ctx context.Context, roomID, id int64, in EditInput) (MessageJSON, error) {
	rich, err := validateBody(in.Body, in.RichTextBody)
	if err != nil {
		return MessageJSON{}, err
	}
	var out MessageJSON
	err = s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		cl, r, _, _, err := access(ctx, tx, roomID)
		if err != nil {
			return err
		}
		m, err := loadMessage(ctx, tx, r.ID, id)
		if err != nil {
			return err
		}
		if m.SenderID != cl.Subject && !cl.Admin {
			return domain.Forbidden("only the sender may edit message %d", id)
		}
		t := now()
		m.Body, m.RichText, m.EditedAt = in.Body, rich, &t
		if _, err := tx.ExecContext(ctx, `UPDATE chat_messages SET body = $1, rich_text_body = $2, edited_at = $3 WHERE id = $4`,
			m.Body, m.RichText, t, m.ID); err != nil {
			return fmt.Errorf("chat: edit message: %w", err)
		}
		v, err := view(ctx, tx, r, m)
		if err != nil {
			return err
		}
		out = v.MessageJSON
		if err := tx.Emit(roomScope(r.ID), UpdatedMessage{out}); err != nil {
			return err
		}
		if m.ThreadID == nil {
			return nil
		}
		members, err := threadMembers(ctx, tx, *m.ThreadID)
		if err != nil || len(members) == 0 {
			return err
		}
		return tx.Emit(memberThreads(members...), UpdatedMessage{out})
	})
	return out, err
}

// DeleteMessage deletes a message (its sender or an admin), with its
// replies when it started a thread. The room channel gets deletedMessage
// (MessageWithParent: the parent with its new reply count, for a reply);
// thread participants get the threads-channel shape. A pinned message is
// unpinned, and the room channel hears of it as chatRoomUpdated.
func (s *Store) DeleteMessage(ctx context.Context, roomID, id int64) error {
	return s.inRoom(ctx, roomID, func(tx *domain.Tx) error {
		cl, r, _, _, err := access(ctx, tx, roomID)
		if err != nil {
			return err
		}
		m, err := loadMessage(ctx, tx, r.ID, id)
		if err != nil {
			return err
		}
		if m.SenderID != cl.Subject && !cl.Admin {
			return domain.Forbidden("only the sender may delete message %d", id)
		}
		// Thread participants are read before the delete: deleting a
		// thread's first message cascades to the thread and its members.
		var members []string
		if m.ThreadID != nil {
			if members, err = threadMembers(ctx, tx, *m.ThreadID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM chat_messages WHERE id = $1`, m.ID); err != nil {
			return fmt.Errorf("chat: delete message: %w", err)
		}
		var parent *MessageJSON
		if m.ParentID != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE chat_messages SET replies_count = replies_count - 1 WHERE id = $1`, *m.ParentID); err != nil {
				return fmt.Errorf("chat: delete message: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE chat_threads SET replies_count = replies_count - 1 WHERE id = $1`, *m.ThreadID); err != nil {
				return fmt.Errorf("chat: delete message: %w", err)
			}
			pm, err := loadMessage(ctx, tx, r.ID, *m.ParentID)
			if err != nil {
				return err
			}
			pv, err := view(ctx, tx, r, pm)
			if err != nil {
				return err
			}
			parent = &pv.MessageJSON
		}
		if err := tx.Emit(roomScope(r.ID), DeletedMessage{ID: m.ID, ParentMessage: parent}); err != nil {
			return err
		}
		if len(members) > 0 {
			if err := tx.Emit(memberThreads(members...), ThreadDeletedMessage{ID: m.ID, ParentMessage: threadParent(parent)}); err != nil {
				return err
			}
		}
		// The pinned message (or the thread it sat in) may be gone now.
		if r.PinnedMessageID != nil {
			if _, err := loadMessage(ctx, tx, r.ID, *r.PinnedMessageID); domain.IsNoRows(err) || isNotFound(err) {
				r.PinnedMessageID = nil
				if _, err := tx.ExecContext(ctx, `UPDATE chat_rooms SET pinned_message_id = NULL, updated_at = $1 WHERE id = $2`, now(), r.ID); err != nil {
					return fmt.Errorf("chat: unpin deleted message: %w", err)
				}
				ev, err := simplified(ctx, tx, r)
				if err != nil {
					return err
				}
				return tx.Emit(roomScope(r.ID), ChatRoomUpdated{ev})
			} else if err != nil {
				return err
			}
		}
		return nil
	})
}

func isNotFound(err error) bool {
	e, ok := domain.AsError(err)
	return ok && e.Code == "not_found"
}

// MarkThreadRead zeroes the bearer's unread count of a thread and sends
// chatThreadRead to the bearer's threads channel.
func (s *Store) MarkThreadRead(ctx context.Context, threadID int64) error {
	return s.db.InTx(ctx, func(tx *domain.Tx) error {
		var roomID int64
		err := tx.QueryRowContext(ctx, `SELECT room_id FROM chat_threads WHERE id = $1`, threadID).Scan(&roomID)
		if domain.IsNoRows(err) {
			return domain.NotFound("chat thread %d not found", threadID)
		}
		if err != nil {
			return fmt.Errorf("chat: thread: %w", err)
		}
		_, _, me, err := participantOnly(ctx, tx, roomID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chat_thread_participants SET unread_count = 0 WHERE thread_id = $1 AND member_id = $2`,
			threadID, me.MemberID); err != nil {
			return fmt.Errorf("chat: mark thread read: %w", err)
		}
		return tx.Emit(memberThreads(me.MemberID), ChatThreadRead{ChatThreadID: threadID})
	})
}

// ListMessages pages through a room's messages, newest first. A late joiner
// of a room that hides its history sees only what came after joining.
// parentID, when set, lists that message's replies instead of the room's
// top-level messages.
func (s *Store) ListMessages(ctx context.Context, roomID int64, parentID *int64, page domain.Page) (domain.List[JSONMessage], error) {
	_, r, me, _, err := access(ctx, s.db, roomID)
	if err != nil {
		return domain.List[JSONMessage]{}, err
	}
	before := page.After
	if before == 0 {
		before = 1<<63 - 1
	}
	q := `SELECT ` + msgCols + ` FROM chat_messages WHERE room_id = $1 AND id > $2 AND id < $3 AND parent_message_id IS NULL ORDER BY id DESC LIMIT $4`
	args := []any{r.ID, visibleAfter(r, me), before, page.Limit + 1}
	if parentID != nil {
		q = `SELECT ` + msgCols + ` FROM chat_messages WHERE room_id = $1 AND id > $2 AND id < $3 AND parent_message_id = $5 ORDER BY id DESC LIMIT $4`
		args = append(args, *parentID)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return domain.List[JSONMessage]{}, fmt.Errorf("chat: list messages: %w", err)
	}
	var ms []message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return domain.List[JSONMessage]{}, fmt.Errorf("chat: list messages: %w", err)
		}
		ms = append(ms, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return domain.List[JSONMessage]{}, fmt.Errorf("chat: list messages: %w", err)
	}
	out := make([]JSONMessage, 0, len(ms))
	for _, m := range ms {
		v, err := view(ctx, s.db, r, m)
		if err != nil {
			return domain.List[JSONMessage]{}, err
		}
		out = append(out, v)
	}
	return domain.NewList(out, page.Limit, func(m JSONMessage) int64 { return m.ID }), nil
}
