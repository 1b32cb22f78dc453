package dbtest

import (
	"context"
	"encoding/json"
	"testing"

	"switchboard/domain"
)

// Outbox returns the envelopes written to db's outbox, in commit order, so a
// module test can assert what an action emitted (names, channels, payloads)
// without running a relay.
func Outbox(t testing.TB, db *domain.DB) []domain.Envelope {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT payload FROM watermill_events ORDER BY "offset"`)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []domain.Envelope
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		var env domain.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("decode outbox row: %v", err)
		}
		out = append(out, env)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}
