package domain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// A request whose deadline passes inside its transaction: database/sql
// rolls back, the commit then only says "already rolled back", and the
// client must get 503 database_unavailable (retry), not 500.
func TestInTxDeadlineMidTransactionIsUnavailable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		err := db.InTx(ctx, func(tx *domain.Tx) error {
			var one int
			// Begins the transaction on both stores.
			if err := tx.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil {
				return err
			}
			// Nothing is left to send at commit, so the first call after the
			// deadline is Commit itself (the case seen under load).
			time.Sleep(400 * time.Millisecond)
			return nil
		})
		if err == nil {
			t.Fatal("the transaction committed after its deadline")
		}
		if !errors.Is(err, context.DeadlineExceeded) || !domain.IsUnavailable(err) {
			t.Fatalf("err %v: want the deadline, answered 503", err)
		}
	})
}
