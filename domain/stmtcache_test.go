package domain_test

import (
	"context"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// Statements run through a Tx are prepared once per PostgreSQL connection
// and reused; a statement that cannot be prepared still fails with the
// database's own error; SQLite runs them as before.
func TestTxPreparedStatements(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		const q = `SELECT 40 + $1`
		for range 3 {
			err := db.InTx(ctx, func(tx *domain.Tx) error {
				var n int
				if err := tx.QueryRowContext(ctx, q, 2).Scan(&n); err != nil {
					return err
				}
				if n != 42 {
					t.Fatalf("got %d", n)
				}
				if db.Dialect != domain.Postgres {
					return nil
				}
				var prepared int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`, q).Scan(&prepared); err != nil {
					return err
				}
				if prepared != 1 {
					t.Fatalf("%d prepared statements for the query on this connection, want 1", prepared)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		err := db.InTx(ctx, func(tx *domain.Tx) error {
			_, err := tx.ExecContext(ctx, `SELEC nonsense`)
			return err
		})
		if err == nil {
			t.Fatal("a bad statement succeeded")
		}
	})
}
