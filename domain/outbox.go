package domain

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// OutboxTopic is the watermill topic of the outbox; its table is
// watermill_events and the relay's offsets live in watermill_offsets_events.
const OutboxTopic = "events"

// RelayGroup is the one consumer group that reads the outbox.
const RelayGroup = "relay"

// outboxMigrations create the outbox. The PostgreSQL tables are exactly what
// watermill-sql v3.1.0's DefaultPostgreSQLSchema expects (xid8 ordering, so a
// row committed out of order is never skipped), plus a statement trigger that
// NOTIFYs the relay on commit.
var outboxMigrations = []Migration{{
	Module: "outbox", Version: 1,
	Postgres: `
CREATE TABLE IF NOT EXISTS "watermill_events" (
    "offset" BIGSERIAL,
    "uuid" VARCHAR(36) NOT NULL,
    "created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload" JSON DEFAULT NULL,
    "metadata" JSON DEFAULT NULL,
    "transaction_id" xid8 NOT NULL,
    PRIMARY KEY ("transaction_id", "offset")
);
CREATE TABLE IF NOT EXISTS "watermill_offsets_events" (
    consumer_group VARCHAR(255) NOT NULL,
    offset_acked BIGINT,
    last_processed_transaction_id xid8 NOT NULL,
    PRIMARY KEY(consumer_group)
);
CREATE INDEX IF NOT EXISTS watermill_events_created_at ON "watermill_events" (created_at);
CREATE OR REPLACE FUNCTION switchboard_notify_outbox() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('switchboard_outbox_' || current_schema(), '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER switchboard_outbox_notify AFTER INSERT ON "watermill_events"
  FOR EACH STATEMENT EXECUTE FUNCTION switchboard_notify_outbox();
`,
	SQLite: `
CREATE TABLE IF NOT EXISTS "watermill_events" (
    "offset" INTEGER PRIMARY KEY AUTOINCREMENT,
    "uuid" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload" BLOB,
    "metadata" TEXT
);
CREATE TABLE IF NOT EXISTS "watermill_offsets_events" (
    consumer_group TEXT NOT NULL PRIMARY KEY,
    offset_acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS watermill_events_created_at ON "watermill_events" (created_at);
`,
}, {
	// Sessions of a process that wakes its own relay skip NOTIFY (see
	// OpenConfig.LocalWake); everyone else still wakes the relay.
	Module: "outbox", Version: 2,
	Postgres: `
CREATE OR REPLACE FUNCTION switchboard_notify_outbox() RETURNS trigger AS $$
BEGIN
  IF current_setting('switchboard.local_wake', true) IS DISTINCT FROM 'on' THEN
    PERFORM pg_notify('switchboard_outbox_' || current_schema(), '');
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
`,
	SQLite: `SELECT 1;`,
}}

// schemaAdapters returns the watermill-sql adapters for the dialect.
func schemaAdapters(d Dialect) (wmsql.SchemaAdapter, wmsql.OffsetsAdapter) {
	if d == Postgres {
		return wmsql.DefaultPostgreSQLSchema{}, wmsql.DefaultPostgreSQLOffsetsAdapter{}
	}
	return sqliteSchema{}, sqliteOffsets{}
}

// outboxInsert returns the statement that inserts envs into the outbox:
// the query of watermill-sql's schema adapter for the store (what its
// Publisher would run), for one multi-row INSERT inside the caller's
// transaction or fused with its last insert (see Tx.commit).
func outboxInsert(d Dialect, envs []Envelope) (statement, error) {
	msgs := make(message.Messages, len(envs))
	for i, env := range envs {
		payload, err := json.Marshal(env)
		if err != nil {
			return statement{}, fmt.Errorf("outbox: encode %s: %w", env.Name, err)
		}
		m := message.NewMessage(env.ID, payload)
		m.Metadata.Set("name", env.Name)
		msgs[i] = m
	}
	schema, _ := schemaAdapters(d)
	q, err := schema.InsertQuery(OutboxTopic, msgs)
	if err != nil {
		return statement{}, fmt.Errorf("outbox: insert query: %w", err)
	}
	return statement{query: q.Query, args: q.Args}, nil
}

// sqliteSchema is our watermill-sql SchemaAdapter for SQLite. SQLite has one
// writer at a time, so offsets are allocated and committed in the same order
// and a plain "offset > acked" cursor never skips a row.
type sqliteSchema struct{}

// sqliteBatch bounds one relay transaction, which holds SQLite's write lock
// while it forwards; small batches keep writers waiting briefly.
const sqliteBatch = 100

func (sqliteSchema) InsertQuery(topic string, msgs message.Messages) (wmsql.Query, error) {
	var b strings.Builder
	b.WriteString(`INSERT INTO "watermill_` + topic + `" (uuid, payload, metadata) VALUES `)
	args := make([]any, 0, 3*len(msgs))
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?)")
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return wmsql.Query{}, fmt.Errorf("metadata of %s: %w", m.UUID, err)
		}
		args = append(args, m.UUID, []byte(m.Payload), string(md))
	}
	return wmsql.Query{Query: b.String(), Args: args}, nil
}

func (sqliteSchema) SelectQuery(topic, group string, _ wmsql.OffsetsAdapter) wmsql.Query {
	return wmsql.Query{
		Query: `SELECT "offset", uuid, payload, metadata FROM "watermill_` + topic + `"
WHERE "offset" > COALESCE((SELECT offset_acked FROM "watermill_offsets_` + topic + `" WHERE consumer_group = ?), 0)
ORDER BY "offset" ASC LIMIT ` + fmt.Sprint(sqliteBatch),
		Args: []any{group},
	}
}

func (sqliteSchema) UnmarshalMessage(row wmsql.Scanner) (wmsql.Row, error) {
	var r wmsql.Row
	var uuid string
	var md sql.NullString
	if err := row.Scan(&r.Offset, &uuid, &r.Payload, &md); err != nil {
		return wmsql.Row{}, fmt.Errorf("scan outbox row: %w", err)
	}
	r.UUID = []byte(uuid)
	msg := message.NewMessage(uuid, r.Payload)
	if md.Valid && md.String != "" {
		r.Metadata = []byte(md.String)
		if err := json.Unmarshal(r.Metadata, &msg.Metadata); err != nil {
			return wmsql.Row{}, fmt.Errorf("outbox metadata: %w", err)
		}
	}
	r.Msg = msg
	return r, nil
}

func (sqliteSchema) SchemaInitializingQueries(string) []wmsql.Query { return nil }

func (sqliteSchema) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelDefault }

// sqliteOffsets is the OffsetsAdapter that goes with sqliteSchema.
type sqliteOffsets struct{}

func (sqliteOffsets) AckMessageQuery(topic string, row wmsql.Row, group string) wmsql.Query {
	return wmsql.Query{
		Query: `INSERT INTO "watermill_offsets_` + topic + `" (consumer_group, offset_acked) VALUES (?, ?)
ON CONFLICT (consumer_group) DO UPDATE SET offset_acked = excluded.offset_acked`,
		Args: []any{group, row.Offset},
	}
}

func (sqliteOffsets) ConsumedMessageQuery(string, wmsql.Row, string, []byte) wmsql.Query {
	return wmsql.Query{}
}

func (sqliteOffsets) NextOffsetQuery(topic, group string) wmsql.Query {
	return wmsql.Query{
		Query: `SELECT COALESCE((SELECT offset_acked FROM "watermill_offsets_` + topic + `" WHERE consumer_group = ?), 0)`,
		Args:  []any{group},
	}
}

func (sqliteOffsets) SchemaInitializingQueries(string) []wmsql.Query { return nil }

func (sqliteOffsets) BeforeSubscribingQueries(topic, group string) []wmsql.Query {
	return []wmsql.Query{{
		Query: `INSERT INTO "watermill_offsets_` + topic + `" (consumer_group, offset_acked) VALUES (?, 0) ON CONFLICT DO NOTHING`,
		Args:  []any{group},
	}}
}

var (
	_ wmsql.SchemaAdapter  = sqliteSchema{}
	_ wmsql.OffsetsAdapter = sqliteOffsets{}
)
