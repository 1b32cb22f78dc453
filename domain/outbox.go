package domain

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// OutboxTopic is the watermill topic of the outbox; its table is
// watermill_events and the relay's offsets live in watermill_offsets_events.
const OutboxTopic = "events"

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
}, {
	// The same test as a WHEN clause: for those sessions PostgreSQL then
	// neither queues the AFTER trigger nor calls the function, about 6 % of
	// its CPU per write on the outbox benchmark (BENCHMARKS.md, session 13).
	Module: "outbox", Version: 3,
	Postgres: `
DROP TRIGGER IF EXISTS switchboard_outbox_notify ON "watermill_events";
CREATE TRIGGER switchboard_outbox_notify AFTER INSERT ON "watermill_events"
  FOR EACH STATEMENT
  WHEN (current_setting('switchboard.local_wake', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION switchboard_notify_outbox();
`,
	SQLite: `SELECT 1;`,
}}

// outboxInsert returns the statement that inserts envs into the outbox:
// the query of watermill-sql's schema adapter for the store (what its
// Publisher would run), for one multi-row INSERT inside the caller's
// transaction or fused with its last insert (see Tx.commit). The outbox
// package reads the rows back (see outbox/read.go).
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
	var q wmsql.Query
	var err error
	if d == Postgres {
		q, err = wmsql.DefaultPostgreSQLSchema{}.InsertQuery(OutboxTopic, msgs)
	} else {
		q, err = sqliteInsert(OutboxTopic, msgs)
	}
	if err != nil {
		return statement{}, fmt.Errorf("outbox: insert query: %w", err)
	}
	return statement{query: q.Query, args: q.Args}, nil
}

// sqliteInsert is the SQLite counterpart of watermill-sql's insert query.
// SQLite has one writer at a time, so offsets are allocated and committed
// in the same order and a plain "offset > position" cursor never skips a
// row.
func sqliteInsert(topic string, msgs message.Messages) (wmsql.Query, error) {
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

// OutboxPublication names the PostgreSQL publication of schema's outbox
// inserts, which the relay's logical decoding subscribes to (see
// outbox/logical.go). Publications are per database, hence the schema in
// the name; a schema that does not fit an identifier is hashed.
func OutboxPublication(schema string) string {
	const prefix = "switchboard_outbox_"
	if plainIdent.MatchString(schema) && len(prefix)+len(schema) <= 63 {
		return prefix + schema
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return prefix + strconv.FormatUint(h.Sum64(), 16)
}

var plainIdent = regexp.MustCompile(`^[a-z0-9_]+$`)
