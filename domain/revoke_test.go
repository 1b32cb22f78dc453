package domain_test

import (
	"context"
	"slices"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

func TestTxRevokeRidesOnTheNextEvent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		err := db.InTx(ctx, func(tx *domain.Tx) error {
			if err := tx.Emit(domain.Scope{Channels: []string{"before"}}, pinged{N: 1}); err != nil {
				return err
			}
			tx.Revoke("44", "chat-room-7-channel")
			tx.Revoke("45", "chat-room-7-channel")
			return tx.Emit(domain.Scope{Channels: []string{"after"}}, pinged{N: 2}, pinged{N: 3})
		})
		if err != nil {
			t.Fatal(err)
		}
		envs := dbtest.Outbox(t, db)
		want := [][]domain.Revocation{nil, {{Member: "44", Channel: "chat-room-7-channel"}, {Member: "45", Channel: "chat-room-7-channel"}}, nil}
		if len(envs) != len(want) {
			t.Fatalf("%d envelopes, want %d", len(envs), len(want))
		}
		for i := range want {
			if !slices.Equal(envs[i].Revoke, want[i]) {
				t.Fatalf("envelope %d revokes %+v, want %+v", i, envs[i].Revoke, want[i])
			}
		}

		// A revocation no event follows would leave subscriptions open.
		err = db.InTx(ctx, func(tx *domain.Tx) error {
			tx.Revoke("44", "chat-room-7-channel")
			return nil
		})
		if err == nil {
			t.Fatal("a transaction that revokes without an event committed")
		}
		if n := len(dbtest.Outbox(t, db)); n != 3 {
			t.Fatalf("outbox has %d rows after the refused transaction, want 3", n)
		}
	})
}
