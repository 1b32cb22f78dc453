package domain_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

const insertProject = `INSERT INTO projects (id, slug, name, created_at) VALUES ($1, $2, 'x', $3)`

// InsertRow's row and the events that carry its id commit together or not at
// all, whatever the store does with the insert (PostgreSQL holds it back and
// sends it with the outbox insert, or before the next statement); a
// constraint it violates fails the transaction even if fn never sees it.
func TestTxInsertRow(t *testing.T) {
	type result struct {
		rows   []string // project slugs in the table afterwards, besides "taken"
		events int      // outbox rows written by the case
	}
	cases := []struct {
		name    string
		fn      func(ctx context.Context, tx *domain.Tx) error
		wantErr func(error) bool
		want    result
	}{
		{
			name: "row and event commit together",
			fn: func(ctx context.Context, tx *domain.Tx) error {
				return insertAndEmit(ctx, tx, "a")
			},
			want: result{rows: []string{"a"}, events: 1},
		},
		{
			name: "a later read in the transaction sees the row",
			fn: func(ctx context.Context, tx *domain.Tx) error {
				if err := insertAndEmit(ctx, tx, "b"); err != nil {
					return err
				}
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM projects WHERE slug = 'b'`).Scan(&n); err != nil {
					return err
				}
				if n != 1 {
					return errors.New("the held insert was not sent before the read")
				}
				return nil
			},
			want: result{rows: []string{"b"}, events: 1},
		},
		{
			name: "two rows, one event each",
			fn: func(ctx context.Context, tx *domain.Tx) error {
				if err := insertAndEmit(ctx, tx, "c1"); err != nil {
					return err
				}
				return insertAndEmit(ctx, tx, "c2")
			},
			want: result{rows: []string{"c1", "c2"}, events: 2},
		},
		{
			name: "fn's error rolls the row and event back",
			fn: func(ctx context.Context, tx *domain.Tx) error {
				if err := insertAndEmit(ctx, tx, "d"); err != nil {
					return err
				}
				return errors.New("boom")
			},
			wantErr: func(err error) bool { return err != nil && err.Error() == "boom" },
		},
		{
			name: "a violated constraint is reported at commit; nothing is written",
			fn: func(ctx context.Context, tx *domain.Tx) error {
				return insertAndEmit(ctx, tx, "taken")
			},
			wantErr: domain.IsUniqueViolation,
		},
		{
			name: "a violated constraint fails the transaction even when fn ignores it",
			fn: func(ctx context.Context, tx *domain.Tx) error {
				if err := insertAndEmit(ctx, tx, "taken"); err != nil {
					return err // SQLite runs the insert here
				}
				// PostgreSQL sends it before this read, whose error fn ignores.
				var n int
				_ = tx.QueryRowContext(ctx, `SELECT count(*) FROM projects`).Scan(&n)
				return nil
			},
			wantErr: domain.IsUniqueViolation,
		},
	}
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		if err := db.InTx(ctx, func(tx *domain.Tx) error {
			_, err := tx.InsertRow(ctx, "projects", insertProject, "taken", time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := outboxCount(t, db)
				err := db.InTx(ctx, func(tx *domain.Tx) error { return tc.fn(ctx, tx) })
				switch {
				case tc.wantErr == nil && err != nil:
					t.Fatalf("InTx: %v", err)
				case tc.wantErr != nil && !tc.wantErr(err):
					t.Fatalf("InTx error %v, not the expected one", err)
				}
				got := result{events: outboxCount(t, db) - before}
				rows, err := db.Query(`SELECT id, slug FROM projects WHERE slug <> 'taken' ORDER BY id`)
				if err != nil {
					t.Fatal(err)
				}
				ids := map[string]int64{}
				for rows.Next() {
					var id int64
					var slug string
					if err := rows.Scan(&id, &slug); err != nil {
						t.Fatal(err)
					}
					got.rows = append(got.rows, slug)
					ids[slug] = id
				}
				rows.Close()
				if len(got.rows) != len(tc.want.rows) || got.events != tc.want.events {
					t.Fatalf("got rows %v and %d events, want %v and %d", got.rows, got.events, tc.want.rows, tc.want.events)
				}
				for i := range got.rows {
					if got.rows[i] != tc.want.rows[i] {
						t.Fatalf("got rows %v, want %v", got.rows, tc.want.rows)
					}
				}
				// Each event names the id its row got.
				for _, n := range lastEventNs(t, db, got.events) {
					found := false
					for _, id := range ids {
						found = found || id == int64(n)
					}
					if !found {
						t.Fatalf("event names id %d, rows have %v", n, ids)
					}
				}
				if _, err := db.Exec(`DELETE FROM projects WHERE slug <> 'taken'`); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// Ids drawn ahead by two handles on one database (two processes) never
// collide, and every insert lands.
func TestInsertRowIdsAcrossHandles(t *testing.T) {
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	ctx := context.Background()
	var dbs []*domain.DB
	for range 2 {
		db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// Two full pools (48 each) with 200 writers would take nearly all of
		// the server's 100 connections from the tests running beside this one.
		db.SetMaxOpenConns(16)
		dbs = append(dbs, db)
	}
	if err := domain.Migrate(ctx, dbs[0], domain.CoreMigrations()); err != nil {
		t.Fatal(err)
	}
	const per = 100 // over three id blocks per handle
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for h, db := range dbs {
		for i := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.InTx(ctx, func(tx *domain.Tx) error {
					return insertAndEmit(ctx, tx, "h"+itoa(h)+"-"+itoa(i))
				})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows, ids, events int
	if err := dbs[0].QueryRow(`SELECT count(*), count(DISTINCT id) FROM projects`).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	events = outboxCount(t, dbs[0])
	if rows != 2*per || ids != 2*per || events != 2*per {
		t.Fatalf("%d rows with %d distinct ids and %d events, want %d of each", rows, ids, events, 2*per)
	}
}

// TestShiftPlaceholders covers the renumbering that fuses two statements.
func TestShiftPlaceholders(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`VALUES ($1,$2,$3,pg_current_xact_id())`, `VALUES ($9,$10,$11,pg_current_xact_id())`},
		{`INSERT INTO "t$1" (a) VALUES ('$2', $12)`, `INSERT INTO "t$1" (a) VALUES ('$2', $20)`},
		{`SELECT $`, `SELECT $`},
	} {
		if got := domain.ShiftPlaceholders(tc.in, 8); got != tc.want {
			t.Errorf("shift(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func insertAndEmit(ctx context.Context, tx *domain.Tx, slug string) error {
	id, err := tx.InsertRow(ctx, "projects", insertProject, slug, time.Now())
	if err != nil {
		return err
	}
	return tx.Emit(domain.Scope{Channels: []string{"c"}}, pinged{N: int(id)})
}

func outboxCount(t *testing.T, db *domain.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM watermill_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// lastEventNs decodes the pinged.N of the last n outbox rows.
func lastEventNs(t *testing.T, db *domain.DB, n int) []int {
	t.Helper()
	rows, err := db.Query(`SELECT payload FROM watermill_events ORDER BY "offset" DESC LIMIT $1`, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		var env struct {
			Data pinged `json:"data"`
		}
		if err := json.Unmarshal(payload, &env); err != nil {
			t.Fatal(err)
		}
		out = append(out, env.Data.N)
	}
	return out
}
