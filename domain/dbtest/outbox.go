package dbtest

import (
	"context"
	"encoding/json"
	"testing"

	"switchboard/domain"
)

// Outbox returns every envelope in the outbox table, oldest first. Tests use
// it to prove that a write emitted exactly the events it should (and that a
// failed one emitted none) without running a relay.
func Outbox(t testing.TB, db *domain.DB) []domain.Envelope {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT payload FROM watermill_events ORDER BY "offset"`)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []domain.Envelope
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			t.Fatalf("scan outbox: %v", err)
		}
		var env domain.Envelope
		if err := json.Unmarshal(payload, &env); err != nil {
			t.Fatalf("decode outbox payload %s: %v", payload, err)
		}
		out = append(out, env)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

// Count returns the number of rows of table (a test-controlled name).
func Count(t testing.TB, db *domain.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}
