package outbox

import (
	"context"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

type nopSink struct{}

func (nopSink) Keep(context.Context, domain.Querier, []domain.Envelope) error { return nil }
func (nopSink) Recall(context.Context, []domain.Envelope) error               { return nil }
func (nopSink) Deliver(_ context.Context, _ []domain.Envelope, done func()) error {
	done()
	return nil
}

// Logical decoding can hand a row over a moment before its transaction is
// visible to a DELETE (see flushDeletes). The deletion that finds nothing
// must be retried, or the row survives and goes out again after a restart;
// a row that never appears is given up after deleteRetries.
func TestDeleteRetriesARowNotVisibleYet(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	r, err := NewRelay(db, nopSink{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM watermill_events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO watermill_events ("offset", uuid, payload, transaction_id) VALUES (1, 'u1', '{"id":"x"}', '42'::text::xid8)`); err != nil {
		t.Fatal(err)
	}
	key := position{xid: 42, offset: 1}
	r.queueDeletes([]position{key})
	r.flushDeletes() // the insert is not committed: nothing to delete yet
	if !r.queuedDeletes()[key] {
		t.Fatal("a deletion that found nothing was dropped, not retried")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r.flushDeletes()
	if n := count(); n != 0 || len(r.queuedDeletes()) != 0 {
		t.Fatalf("after the retry: %d rows left, %d deletions queued", n, len(r.queuedDeletes()))
	}

	ghost := position{xid: 43, offset: 2}
	r.queueDeletes([]position{ghost})
	for range deleteRetries + 1 {
		r.flushDeletes()
	}
	if len(r.queuedDeletes()) != 0 {
		t.Fatal("a row that never appears is retried forever")
	}
}
