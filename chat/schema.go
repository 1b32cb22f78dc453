package chat

import "switchboard/domain"

// Migrations create the chat tables. Participants are soft-removed
// (removed_at) so their old messages keep a valid chat_room_participant_id;
// visible_after is the last message id a late joiner may not see when the
// room hides its history.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "chat", Version: 1,
		Postgres: `CREATE TABLE chat_rooms (
  id BIGSERIAL PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE,
  identifier TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  show_history BOOLEAN NOT NULL DEFAULT TRUE,
  embedded BOOLEAN NOT NULL DEFAULT FALSE,
  pinned_message_id BIGINT,
  creator_id TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX chat_rooms_identifier ON chat_rooms (identifier) WHERE identifier <> '';
CREATE TABLE chat_participants (
  id BIGSERIAL PRIMARY KEY,
  room_id BIGINT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  unread_count INTEGER NOT NULL DEFAULT 0,
  last_read_message_id BIGINT,
  visible_after BIGINT NOT NULL DEFAULT 0,
  joined_at TIMESTAMPTZ NOT NULL,
  removed_at TIMESTAMPTZ,
  UNIQUE (room_id, member_id)
);
CREATE INDEX chat_participants_member ON chat_participants (member_id, room_id);
CREATE TABLE chat_pins (
  room_id BIGINT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  pinned_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (room_id, member_id)
);
CREATE TABLE chat_messages (
  id BIGSERIAL PRIMARY KEY,
  room_id BIGINT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  participant_id BIGINT NOT NULL,
  sender_id TEXT NOT NULL,
  sender_name TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  rich_text_body TEXT,
  creation_uuid TEXT,
  parent_message_id BIGINT REFERENCES chat_messages(id) ON DELETE CASCADE,
  thread_id BIGINT,
  replies_count INTEGER NOT NULL DEFAULT 0,
  sent_at TIMESTAMPTZ NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  edited_at TIMESTAMPTZ,
  UNIQUE (room_id, sender_id, creation_uuid)
);
CREATE INDEX chat_messages_room ON chat_messages (room_id, id);
CREATE TABLE chat_threads (
  id BIGSERIAL PRIMARY KEY,
  room_id BIGINT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  parent_message_id BIGINT NOT NULL UNIQUE REFERENCES chat_messages(id) ON DELETE CASCADE,
  replies_count INTEGER NOT NULL DEFAULT 0,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE chat_thread_participants (
  thread_id BIGINT NOT NULL REFERENCES chat_threads(id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  unread_count INTEGER NOT NULL DEFAULT 0,
  joined_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (thread_id, member_id)
);`,
		SQLite: `CREATE TABLE chat_rooms (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uuid TEXT NOT NULL UNIQUE,
  identifier TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  show_history BOOLEAN NOT NULL DEFAULT 1,
  embedded BOOLEAN NOT NULL DEFAULT 0,
  pinned_message_id INTEGER,
  creator_id TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX chat_rooms_identifier ON chat_rooms (identifier) WHERE identifier <> '';
CREATE TABLE chat_participants (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  unread_count INTEGER NOT NULL DEFAULT 0,
  last_read_message_id INTEGER,
  visible_after INTEGER NOT NULL DEFAULT 0,
  joined_at TIMESTAMP NOT NULL,
  removed_at TIMESTAMP,
  UNIQUE (room_id, member_id)
);
CREATE INDEX chat_participants_member ON chat_participants (member_id, room_id);
CREATE TABLE chat_pins (
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  pinned_at TIMESTAMP NOT NULL,
  PRIMARY KEY (room_id, member_id)
);
CREATE TABLE chat_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  participant_id INTEGER NOT NULL,
  sender_id TEXT NOT NULL,
  sender_name TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  rich_text_body TEXT,
  creation_uuid TEXT,
  parent_message_id INTEGER REFERENCES chat_messages(id) ON DELETE CASCADE,
  thread_id INTEGER,
  replies_count INTEGER NOT NULL DEFAULT 0,
  sent_at TIMESTAMP NOT NULL,
  created_at TIMESTAMP NOT NULL,
  edited_at TIMESTAMP,
  UNIQUE (room_id, sender_id, creation_uuid)
);
CREATE INDEX chat_messages_room ON chat_messages (room_id, id);
CREATE TABLE chat_threads (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
  parent_message_id INTEGER NOT NULL UNIQUE REFERENCES chat_messages(id) ON DELETE CASCADE,
  replies_count INTEGER NOT NULL DEFAULT 0,
  created_at TIMESTAMP NOT NULL
);
CREATE TABLE chat_thread_participants (
  thread_id INTEGER NOT NULL REFERENCES chat_threads(id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  unread_count INTEGER NOT NULL DEFAULT 0,
  joined_at TIMESTAMP NOT NULL,
  PRIMARY KEY (thread_id, member_id)
);`,
	}}
}
