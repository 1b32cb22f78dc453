package domain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// queueWrites starts one single-statement write per slug while db's
// committers are held, waits until all of them are queued or taken, lets
// the committers go and returns each write's error.
func queueWrites(t *testing.T, db *domain.DB, slugs []string) []error {
	t.Helper()
	ctx := context.Background()
	release := domain.PauseGroupCommit(db)
	errs := make([]chan error, len(slugs))
	for i, slug := range slugs {
		errs[i] = make(chan error, 1)
		go func() {
			errs[i] <- db.InTx(ctx, func(tx *domain.Tx) error { return insertAndEmit(ctx, tx, slug) })
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for domain.GroupQueued(db) < len(slugs)-domain.GroupConns {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("only %d of %d writes queued", domain.GroupQueued(db), len(slugs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	out := make([]error, len(slugs))
	for i := range errs {
		out[i] = <-errs[i]
	}
	return out
}

// Writes that arrive while others are in flight commit together, a handful
// of transactions for many requests, and a write PostgreSQL refuses fails
// alone: the others in its group still commit, each with its event.
func TestGroupCommit(t *testing.T) {
	// Each new slug commits exactly once; every other write ("taken"
	// exists, or an equal write won) fails as a unique violation.
	cases := []struct {
		name  string
		slugs []string
		// grouped: the writes took at most GroupConns transactions.
		grouped bool
	}{
		{name: "twenty writes, few transactions", slugs: numbered("a", 20), grouped: true},
		{name: "a refused write in the middle", slugs: append(append(numbered("b", 10), "taken"), numbered("c", 9)...)},
		{name: "two writes of one new key", slugs: []string{"d", "e", "d", "f"}},
	}
	db := dbtest.Postgres(t, domain.CoreMigrations())
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *domain.Tx) error { return insertAndEmit(ctx, tx, "taken") }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := outboxCount(t, db)
			errs := queueWrites(t, db, tc.slugs)
			committed := map[string]int{}
			for i, err := range errs {
				switch {
				case err == nil:
					committed[tc.slugs[i]]++
				case !domain.IsUniqueViolation(err):
					t.Fatalf("write %d (%s): %v", i, tc.slugs[i], err)
				}
			}
			for _, slug := range tc.slugs {
				if want := map[bool]int{true: 0, false: 1}[slug == "taken"]; committed[slug] != want {
					t.Fatalf("%s committed %d times, want %d (errors %v)", slug, committed[slug], want, errs)
				}
			}
			events := outboxCount(t, db) - before
			if events != len(committed) {
				t.Fatalf("%d events for %d committed writes", events, len(committed))
			}
			// Each committed write's event names its row.
			for _, n := range lastEventNs(t, db, events) {
				var slug string
				if err := db.QueryRow(`SELECT slug FROM projects WHERE id = $1`, n).Scan(&slug); err != nil || committed[slug] != 1 {
					t.Fatalf("event names id %d: slug %q, %v", n, slug, err)
				}
			}
			if tc.grouped {
				var txns int
				if err := db.QueryRow(`SELECT count(DISTINCT transaction_id) FROM (SELECT transaction_id FROM watermill_events ORDER BY "offset" DESC LIMIT $1) e`, events).Scan(&txns); err != nil {
					t.Fatal(err)
				}
				if txns > domain.GroupConns {
					t.Fatalf("%d writes took %d transactions, want at most %d", events, txns, domain.GroupConns)
				}
			}
		})
	}
}

// emitOnly is a write of one event and no row: one statement, so it goes
// through the committers.
func emitOnly(ctx context.Context, db *domain.DB, n int) error {
	return db.InTx(ctx, func(tx *domain.Tx) error { return tx.Emit(domain.Scope{Channels: []string{"c"}}, pinged{N: n}) })
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + itoa(i)
	}
	return out
}

// A caller that gives up while its write waits for a committer hears that
// the database is unavailable, and its write is not sent afterwards.
func TestGroupCommitCallerGivesUp(t *testing.T) {
	db := dbtest.Postgres(t, domain.CoreMigrations())
	release := domain.PauseGroupCommit(db)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := emitOnly(ctx, db, 1)
	release()
	if !errors.Is(err, context.DeadlineExceeded) || !domain.IsUnavailable(err) {
		t.Fatalf("InTx after the deadline: %v, want an unavailable deadline error", err)
	}
	bg := context.Background()
	// This write goes through a committer after the abandoned one.
	for range domain.GroupConns {
		if err := emitOnly(bg, db, 2); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range lastEventNs(t, db, outboxCount(t, db)) {
		if n != 2 {
			t.Fatalf("the abandoned write (n=1) was committed")
		}
	}
}

// A closed DB answers a write at once, as unavailable.
func TestGroupCommitAfterClose(t *testing.T) {
	db := dbtest.Postgres(t, domain.CoreMigrations())
	db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := emitOnly(ctx, db, 1)
	if !domain.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("write after Close: %v after %s, want unavailable at once", err, time.Since(start))
	}
}

// When PostgreSQL ends the committers' connections (a restart, an
// operator), each committer fails at most its next group, as unavailable,
// and reconnects: writes then succeed again.
func TestGroupCommitReconnects(t *testing.T) {
	db := dbtest.Postgres(t, domain.CoreMigrations())
	ctx := context.Background()
	emit := func() error { return emitOnly(ctx, db, 1) }
	// Open every committer's connection: writes queued together reach both.
	release := domain.PauseGroupCommit(db)
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- emit() }()
	}
	time.Sleep(100 * time.Millisecond)
	release()
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var ended int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		domain.GroupCommitName(db.Schema)).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("no committer connection found in pg_stat_activity")
	}
	failed, ok := 0, 0
	for ok < 3 {
		err := emit()
		switch {
		case err == nil:
			ok++
		case domain.IsUnavailable(err) && failed < domain.GroupConns:
			failed++
			ok = 0
		default:
			t.Fatalf("write after the connections ended (%d failed before): %v", failed, err)
		}
	}
}
