package domain_test

import (
	"context"
	"strings"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

type benched struct {
	ID  int    `json:"id"`
	Pad string `json:"pad"`
}

func (benched) Name() string { return "Benched" }

// BenchmarkOutboxInsert is one transaction holding one ~300-byte event
// written to the outbox (InTx + Emit), on each store.
func BenchmarkOutboxInsert(b *testing.B) {
	stores := []struct {
		name string
		open func(testing.TB) *domain.DB
	}{
		{"sqlite", func(t testing.TB) *domain.DB { return dbtest.SQLite(t) }},
		{"postgres", func(t testing.TB) *domain.DB { return dbtest.Postgres(t) }},
	}
	scope := domain.Scope{Project: "bench", Family: domain.FamilyAttendees}
	pad := strings.Repeat("x", 260)
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			db := s.open(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := db.InTx(ctx, func(tx *domain.Tx) error {
					return tx.Emit(scope, benched{ID: i, Pad: pad})
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
