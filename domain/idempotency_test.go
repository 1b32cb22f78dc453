package domain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// A write under an Idempotency-Key marks the key committed in its own
// transaction, and only the try holding the key's attempt id may: a try
// that was taken over fails and writes nothing, and a rolled-back write
// leaves the key reserved.
func TestIdempotencyKeyCommitsWithTheWrite(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, created_at, attempt) VALUES ('s', 'k', 'h', $1, 'A')`, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		status := func() int {
			var st int
			if err := db.QueryRowContext(ctx, `SELECT status FROM idempotency_keys WHERE scope = 's' AND key = 'k'`).Scan(&st); err != nil {
				t.Fatal(err)
			}
			return st
		}
		write := func(attempt string, n int, fail bool) error {
			return emit(t, db, domain.WithIdempotencyClaim(ctx, "s", "k", attempt), n, fail)
		}
		tests := []struct {
			name       string
			attempt    string
			fail       bool
			wantErr    bool
			wantStatus int
			wantRows   int
		}{
			{"a rolled-back write leaves the key reserved", "A", true, true, 0, 0},
			{"the holder's write commits and marks the key", "A", false, false, -1, 1},
			{"a try without the key's attempt id writes nothing", "B", false, true, -1, 1},
			{"the holder may write again in the same request", "A", false, false, -1, 2},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := write(tc.attempt, i, tc.fail)
				if (err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error %v", err, tc.wantErr)
				}
				if tc.attempt == "B" && !errors.Is(err, &domain.Error{Code: "idempotency_key_in_use"}) {
					t.Fatalf("err = %v, want idempotency_key_in_use", err)
				}
				if st := status(); st != tc.wantStatus {
					t.Fatalf("key status %d, want %d", st, tc.wantStatus)
				}
				if n := dbtest.Count(t, db, "projects"); n != tc.wantRows {
					t.Fatalf("%d rows, want %d", n, tc.wantRows)
				}
			})
		}
	})
}

func emit(t *testing.T, db *domain.DB, ctx context.Context, n int, fail bool) error {
	t.Helper()
	return db.InTx(ctx, func(tx *domain.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO projects (slug, name, created_at) VALUES ($1, 'x', $2)`,
			"p"+itoa(n)+time.Now().Format("150405.000000000"), time.Now()); err != nil {
			return err
		}
		if err := tx.Emit(domain.Scope{Channels: []string{"c"}}, pinged{N: n}); err != nil {
			return err
		}
		if fail {
			return errors.New("boom after insert")
		}
		return nil
	})
}
