// Package chat is community messaging: rooms, participants, messages and
// threads, with the seed's events on chat-room-channel-{member},
// chat-room-{room}-channel and chat-community-member-{member}-threads-channel.
// It also answers the gateway's room questions (domain.Membership,
// domain.RoomResolver).
package chat

import (
	"encoding/json"

	"switchboard/domain"
)

// Member is a community member as the wire shows it (sender, thread
// participants). ID and CommunityMemberID are both the member's id (the
// JWT sub), a number when the sub is numeric (see MemberID): the seed gives
// sender no shape, and clients look for either key. The name is the one
// the member last presented.
type Member struct {
	ID                MemberID `json:"id"`
	CommunityMemberID MemberID `json:"community_member_id"`
	Name              string   `json:"name"`
}

// ParticipantJSON is a room participant on the wire (current_participant,
// other_participants_preview).
type ParticipantJSON struct {
	ID                  int64    `json:"id"` // the participation (chat_room_participant_id)
	CommunityMemberID   MemberID `json:"community_member_id"`
	Name                string   `json:"name"`
	UnreadMessagesCount int      `json:"unread_messages_count"`
	LastReadMessageID   *int64   `json:"last_read_message_id"`
	PinnedAt            *string  `json:"pinned_at"`
}

// ChatRoom is the seed's ChatRoom as seen by one participant: the unread
// count and current_participant are that participant's own, so every
// participant gets a separate event.
type ChatRoom struct {
	ID                       int64             `json:"id"`
	UUID                     string            `json:"uuid"`
	Identifier               string            `json:"identifier"`
	UnreadMessagesCount      int               `json:"unread_messages_count"`
	ChatRoomKind             string            `json:"chat_room_kind"`
	ChatRoomName             string            `json:"chat_room_name"`
	ChatRoomDescription      string            `json:"chat_room_description"`
	ChatRoomShowHistory      bool              `json:"chat_room_show_history"`
	OtherParticipantsPreview []ParticipantJSON `json:"other_participants_preview"`
	CurrentParticipant       *ParticipantJSON  `json:"current_participant"`
	LastMessage              *JSONMessage      `json:"last_message"`
}

// ChatRoomCreated goes to each participant of a new non-embedded room.
type ChatRoomCreated struct{ ChatRoom }

// Name implements domain.Event.
func (ChatRoomCreated) Name() string { return "chatRoomCreated" }

// SimplifiedChatRoom is the seed's payload of chatRoomUpdated.
type SimplifiedChatRoom struct {
	UUID                string       `json:"uuid"`
	ChatRoomName        string       `json:"chat_room_name"`
	ChatRoomDescription string       `json:"chat_room_description"`
	ChatRoomShowHistory bool         `json:"chat_room_show_history"`
	PinnedMessage       *JSONMessage `json:"pinned_message"`
}

// ChatRoomUpdated carries a room's new name, description, history rule or
// pinned message.
type ChatRoomUpdated struct{ SimplifiedChatRoom }

// Name implements domain.Event.
func (ChatRoomUpdated) Name() string { return "chatRoomUpdated" }

// ChatRoomDeleted tells a member a room is gone (deleted, or the member was
// removed from it).
type ChatRoomDeleted struct {
	ChatRoomUUID string `json:"chat_room_uuid"`
}

// Name implements domain.Event.
func (ChatRoomDeleted) Name() string { return "chatRoomDeleted" }

// ChatRoomRead tells the reader's other tabs that the room was read.
type ChatRoomRead struct {
	ChatRoomUUID string `json:"chat_room_uuid"`
}

// Name implements domain.Event.
func (ChatRoomRead) Name() string { return "chatRoomRead" }

// ChatRoomPinned goes to the member who pinned a non-embedded room.
type ChatRoomPinned struct {
	ChatRoomID int64            `json:"chat_room_id"`
	PinnedAt   domain.Timestamp `json:"pinned_at"`
}

// Name implements domain.Event.
func (ChatRoomPinned) Name() string { return "chatRoomPinned" }

// ChatRoomUnPinned goes to the member who unpinned a room.
type ChatRoomUnPinned struct {
	ChatRoomID int64 `json:"chat_room_id"`
}

// Name implements domain.Event.
func (ChatRoomUnPinned) Name() string { return "chatRoomUnPinned" }

// MessageJSON is the field set the seed gives every message shape
// (updatedMessage's JSONMessage, deletedMessage's ParentMessage on the room
// channel). JSONMessage adds the two fields only newMessage carries.
type MessageJSON struct {
	ID                           int64             `json:"id"`
	ChatRoomUUID                 string            `json:"chat_room_uuid"`
	ChatRoomParticipantID        int64             `json:"chat_room_participant_id"`
	Body                         string            `json:"body"`
	RichTextBody                 json.RawMessage   `json:"rich_text_body"`
	SentAt                       domain.Timestamp  `json:"sent_at"`
	CreatedAt                    domain.Timestamp  `json:"created_at"`
	Sender                       Member            `json:"sender"`
	CreationUUID                 *string           `json:"creation_uuid"`
	ChatThreadID                 *int64            `json:"chat_thread_id"`
	ParentMessageID              *int64            `json:"parent_message_id"`
	LessonID                     *int64            `json:"lesson_id"`
	EditedAt                     *domain.Timestamp `json:"edited_at"`
	RepliesCount                 int               `json:"replies_count"`
	TotalThreadParticipantsCount int               `json:"total_thread_participants_count"`
	ThreadParticipantsPreview    []Member          `json:"thread_participants_preview"`
}

// JSONMessage is the seed's newMessage payload (and the REST message).
type JSONMessage struct {
	MessageJSON
	ChatRoomKind           string `json:"chat_room_kind"`
	ChatThreadRepliesCount int    `json:"chat_thread_replies_count"`
}

// NewMessage is a message posted to a room (or a reply to a thread).
type NewMessage struct{ JSONMessage }

// Name implements domain.Event.
func (NewMessage) Name() string { return "newMessage" }

// UpdatedMessage is an edited message, in the seed's updatedMessage shape.
type UpdatedMessage struct{ MessageJSON }

// Name implements domain.Event.
func (UpdatedMessage) Name() string { return "updatedMessage" }

// DeletedMessage is the room channel's MessageWithParent: the deleted id and
// the parent it was a reply to (null for a top-level message), so clients
// can fix the parent's reply count.
type DeletedMessage struct {
	ID            int64        `json:"id"`
	ParentMessage *MessageJSON `json:"parent_message"`
}

// Name implements domain.Event.
func (DeletedMessage) Name() string { return "deletedMessage" }

// ThreadParentMessage is the seed's ParentMessage on the threads channel,
// which differs from the room channel's: no body, chat_room_uuid or sent_at,
// and chat_room_participant_id is a string. That is the one id the seed
// types as a string, so it stays one here (the room channel's is a
// number); every other id follows the seed's numbers.
type ThreadParentMessage struct {
	ID                           int64             `json:"id"`
	ChatRoomParticipantID        string            `json:"chat_room_participant_id"`
	RichTextBody                 json.RawMessage   `json:"rich_text_body"`
	CreatedAt                    domain.Timestamp  `json:"created_at"`
	Sender                       Member            `json:"sender"`
	CreationUUID                 *string           `json:"creation_uuid"`
	ChatThreadID                 *int64            `json:"chat_thread_id"`
	ParentMessageID              *int64            `json:"parent_message_id"`
	LessonID                     *int64            `json:"lesson_id"`
	EditedAt                     *domain.Timestamp `json:"edited_at"`
	RepliesCount                 int               `json:"replies_count"`
	TotalThreadParticipantsCount int               `json:"total_thread_participants_count"`
	ThreadParticipantsPreview    []Member          `json:"thread_participants_preview"`
}

// ThreadDeletedMessage is deletedMessage on the threads channel.
type ThreadDeletedMessage struct {
	ID            int64                `json:"id"`
	ParentMessage *ThreadParentMessage `json:"parent_message"`
}

// Name implements domain.Event.
func (ThreadDeletedMessage) Name() string { return "deletedMessage" }

// ChatThreadRead tells the reader's other tabs that a thread was read.
type ChatThreadRead struct {
	ChatThreadID int64 `json:"chat_thread_id"`
}

// Name implements domain.Event.
func (ChatThreadRead) Name() string { return "chatThreadRead" }

// threadParent converts the room-channel shape to the threads-channel one.
func threadParent(m *MessageJSON) *ThreadParentMessage {
	if m == nil {
		return nil
	}
	return &ThreadParentMessage{
		ID: m.ID, ChatRoomParticipantID: itoa(m.ChatRoomParticipantID), RichTextBody: m.RichTextBody,
		CreatedAt: m.CreatedAt, Sender: m.Sender, CreationUUID: m.CreationUUID, ChatThreadID: m.ChatThreadID,
		ParentMessageID: m.ParentMessageID, LessonID: m.LessonID, EditedAt: m.EditedAt, RepliesCount: m.RepliesCount,
		TotalThreadParticipantsCount: m.TotalThreadParticipantsCount, ThreadParticipantsPreview: m.ThreadParticipantsPreview,
	}
}

// Scopes of the three channel families.

func memberRooms(members ...string) domain.Scope {
	return domain.Scope{Members: members, Stream: domain.StreamChatRooms}
}

func memberThreads(members ...string) domain.Scope {
	return domain.Scope{Members: members, Stream: domain.StreamThreads}
}

func roomScope(roomID int64) domain.Scope { return domain.Scope{Room: itoa(roomID)} }
