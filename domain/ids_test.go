package domain_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// A busy table draws more ids per round trip, a quiet one fewer.
func TestIDDrawSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		since time.Duration
		want  int
	}{
		{"first draw", 0, 0, 32},
		{"used up within a second: doubled", 32, 200 * time.Millisecond, 64},
		{"doubled up to the cap", 512, time.Millisecond, 1024},
		{"never over the cap", 1024, time.Millisecond, 1024},
		{"steady rate: unchanged", 256, 5 * time.Second, 256},
		{"quiet half minute: halved", 256, time.Minute, 128},
		{"never under the floor", 32, time.Hour, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.IDDrawSize(tc.size, tc.since); got != tc.want {
				t.Fatalf("draw after %d ids %v ago = %d, want %d", tc.size, tc.since, got, tc.want)
			}
		})
	}
}

// A draw ahead that lands after a caller drew its own block keeps the ids
// in order and drops those below one already handed out.
func TestAddIDs(t *testing.T) {
	for _, tc := range []struct {
		name        string
		held        []int64
		last        int64
		drawn, want []int64
	}{
		{"empty block", nil, 10, []int64{11, 12}, []int64{11, 12}},
		{"after the held ones", []int64{11, 12}, 10, []int64{13, 14}, []int64{11, 12, 13, 14}},
		{"drawn earlier in the sequence, still ahead", []int64{21, 22}, 10, []int64{11, 12}, []int64{11, 12, 21, 22}},
		{"drawn earlier, partly handed past", []int64{31, 32}, 30, []int64{11, 12}, []int64{31, 32}},
		{"all below the last handed out", nil, 30, []int64{11, 12}, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.AddIDs(tc.held, tc.last, tc.drawn); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Once half a block is used, the next block is drawn in the background;
// with the pool's only connection held by the writing transaction, the
// writer draws on that connection itself instead of waiting for the pool.
func TestInsertRowDrawsAhead(t *testing.T) {
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	ctx := context.Background()
	db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := domain.Migrate(ctx, db, domain.CoreMigrations()); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	insert := func(tx *domain.Tx, slug string) {
		t.Helper()
		id, err := tx.InsertRow(ctx, "projects", insertProject, slug, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	t.Run("draw ahead at half a block", func(t *testing.T) {
		err := db.InTx(ctx, func(tx *domain.Tx) error {
			for i := range 17 { // 32 drawn, 15 left: half used
				insert(tx, "a"+itoa(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for domain.IDsHeld(db, "projects") <= 15 {
			if time.Now().After(deadline) {
				t.Fatalf("%d ids held 5 s after half the block was used: no draw ahead", domain.IDsHeld(db, "projects"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("pool exhausted: the writer draws on its own connection", func(t *testing.T) {
		db.SetMaxOpenConns(1)
		defer db.SetMaxOpenConns(0)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := db.InTx(tctx, func(tx *domain.Tx) error {
			var one int
			if err := tx.QueryRowContext(tctx, `SELECT 1`).Scan(&one); err != nil { // holds the only connection
				return err
			}
			for i := range 3000 { // more than every block drawn so far
				insert(tx, "b"+itoa(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM projects`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	distinct := len(slices.Compact(sorted))
	if !slices.IsSorted(ids) {
		t.Fatal("ids not increasing in the order they were handed out")
	}
	if rows != len(ids) || distinct != len(ids) {
		t.Fatalf("%d rows for %d inserts, %d distinct ids", rows, len(ids), distinct)
	}
}
