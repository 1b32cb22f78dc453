package domain_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

type benched struct {
	ID  int    `json:"id"`
	Pad string `json:"pad"`
}

func (benched) Name() string { return "Benched" }

// BenchmarkOutboxInsert is one transaction holding one ~300-byte event
// written to the outbox (InTx + Emit), alone ("event") or with the row it
// is about ("row+event": InsertRow, which PostgreSQL commits with the event
// as one statement), on each store.
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
	writes := []struct {
		name string
		fn   func(ctx context.Context, tx *domain.Tx, i int) error
	}{
		{"event", func(_ context.Context, tx *domain.Tx, i int) error {
			return tx.Emit(scope, benched{ID: i, Pad: pad})
		}},
		{"row+event", func(ctx context.Context, tx *domain.Tx, i int) error {
			id, err := tx.InsertRow(ctx, "projects", `INSERT INTO projects (id, slug, name, created_at) VALUES ($1, $2, 'bench', $3)`,
				"b"+strconv.Itoa(i), time.Now())
			if err != nil {
				return err
			}
			return tx.Emit(scope, benched{ID: int(id), Pad: pad})
		}},
	}
	for _, s := range stores {
		for _, w := range writes {
			b.Run(s.name+"/"+w.name, func(b *testing.B) {
				db := s.open(b)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := db.InTx(ctx, func(tx *domain.Tx) error { return w.fn(ctx, tx, i) }); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
