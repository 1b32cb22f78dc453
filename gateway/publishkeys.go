package gateway

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"switchboard/domain"
)

// Idempotency keys of server publications (Centrifugo's publish and
// broadcast idempotency_key): a publisher that retries a publish it does
// not know the outcome of sends the same key, and within the key's window
// the retry publishes nothing and gets the first publication's answer.
//
// A key is claimed in the transaction that writes the publication to the
// outbox, so the two commit together or not at all: exactly one
// publication per key and channel, on every node of a database, across
// restarts. Its answer (the stream position the relay gave the
// publication) is stored once known, so a retry answers the same even
// after the publication left the history.

// PublishKeyWindow is how long a publication's idempotency key is
// remembered (Centrifugo's window).
const PublishKeyWindow = 5 * time.Minute

// PublishedKey is the publication a key already named: its outbox event
// and, when known, its stream position (Offset 0 otherwise).
type PublishedKey struct {
	EventID  string
	Position StreamPosition
}

// ClaimPublishKey records, in tx, that key names publication eventID on
// channel. When key was used on channel within PublishKeyWindow it records
// nothing and returns the earlier publication with dup true: the caller
// must then not publish. On PostgreSQL a concurrent claim of the same key
// waits for the other transaction and then sees its row.
func ClaimPublishKey(ctx context.Context, tx *domain.Tx, channel, key, eventID string, now time.Time) (prev PublishedKey, dup bool, err error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM switchboard_publish_keys WHERE channel = $1 AND key = $2 AND created_at < $3`,
		channel, key, now.Add(-PublishKeyWindow).UnixMilli()); err != nil {
		return PublishedKey{}, false, fmt.Errorf("publish key: expire: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO switchboard_publish_keys (channel, key, event_id, "offset", epoch, created_at)
VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (channel, key) DO NOTHING`, channel, key, eventID, now.UnixMilli())
	if err != nil {
		return PublishedKey{}, false, fmt.Errorf("publish key: claim: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return PublishedKey{}, false, nil
	}
	var off int64
	err = tx.QueryRowContext(ctx, `SELECT event_id, "offset", epoch FROM switchboard_publish_keys WHERE channel = $1 AND key = $2`,
		channel, key).Scan(&prev.EventID, &off, &prev.Position.Epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return PublishedKey{}, false, errors.New("publish key: claim: the key vanished under a concurrent expiry; retry")
	}
	if err != nil {
		return PublishedKey{}, false, fmt.Errorf("publish key: read: %w", err)
	}
	prev.Position.Offset = uint64(off)
	return prev, true, nil
}

// StorePublishKeyPosition records the answer of key on channel: where its
// publication was kept.
func StorePublishKeyPosition(ctx context.Context, db *domain.DB, channel, key string, pos StreamPosition) error {
	if _, err := db.ExecContext(ctx, `UPDATE switchboard_publish_keys SET "offset" = $1, epoch = $2 WHERE channel = $3 AND key = $4`,
		int64(pos.Offset), pos.Epoch, channel, key); err != nil {
		return fmt.Errorf("publish key: store position: %w", err)
	}
	return nil
}

// publishKeyMigrations create the keys' table (see Migrations).
var publishKeyMigrations = []domain.Migration{{
	Module: "gateway", Version: 2,
	Postgres: `
CREATE TABLE switchboard_publish_keys (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    epoch TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, key)
);
CREATE INDEX switchboard_publish_keys_created ON switchboard_publish_keys (created_at);
`,
	SQLite: `
CREATE TABLE switchboard_publish_keys (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    epoch TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel, key)
);
CREATE INDEX switchboard_publish_keys_created ON switchboard_publish_keys (created_at);
`,
}}
