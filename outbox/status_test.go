package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/outbox"
)

// The relay reports itself in its Status: running while it runs, what it
// delivered, each event's lag, the age of what waits for the fan-out; and
// Backlog counts the rows not yet delivered.
func TestRelayStatus(t *testing.T) {
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		st := &outbox.Status{}
		c := newCollector()
		stop := runRelayConfig(t, db, c, outbox.Config{PollInterval: 200 * time.Millisecond, DrainWait: 200 * time.Millisecond, Mode: mode, Status: st})
		if !st.Running() || st.Failing() != "" {
			t.Fatalf("started relay: Running %v, Failing %q", st.Running(), st.Failing())
		}
		emitRange(t, db, 0, 3)
		c.wait(t, 3)
		waitFor(t, "3 events counted", func() bool { return st.Events() == 3 })
		if st.Batches() == 0 || st.Lag(time.Now()) != 0 {
			t.Fatalf("after delivery: Batches %d, Lag %s; want > 0 and 0", st.Batches(), st.Lag(time.Now()))
		}
		cum, count, sum := st.LagHistogram()
		if count != 3 || sum <= 0 || cum[len(cum)-1] > count {
			t.Fatalf("lag histogram: count %d, sum %g, cumulative %v", count, sum, cum)
		}
		waitFor(t, "an empty backlog", func() bool { n, err := outbox.Backlog(context.Background(), db); return err == nil && n == 0 })

		// The sink stops confirming: the events wait for the fan-out and
		// stay in the backlog.
		c.mu.Lock()
		c.hold = true
		c.mu.Unlock()
		emitRange(t, db, 3, 5)
		c.wait(t, 2)
		if lag := st.Lag(time.Now().Add(time.Second)); lag < time.Second {
			t.Fatalf("Lag with 2 events unconfirmed = %s, want ≥ 1s a second later", lag)
		}
		// (The delivered position is stored in the background: wait for it.)
		waitFor(t, "a backlog of the 2 unconfirmed rows", func() bool {
			n, err := outbox.Backlog(context.Background(), db)
			return err == nil && n == 2
		})
		stop()
		if st.Running() {
			t.Fatal("Running after the relay stopped")
		}
	})
}

// A relay that cannot reach its database says so in Failing.
func TestRelayStatusFailing(t *testing.T) {
	db := openClosed(t)
	st := &outbox.Status{}
	r, err := outbox.NewRelay(db, newCollector(), outbox.Config{Mode: outbox.ModePoll, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "Failing set", func() bool { return st.Failing() != "" })
	if st.Running() || !strings.Contains(st.Failing(), "closed") {
		t.Fatalf("Running %v, Failing %q; want not running and the database error", st.Running(), st.Failing())
	}
	cancel()
	<-done
	if st.Failing() != "" {
		t.Fatalf("Failing %q after the relay stopped", st.Failing())
	}
}

// openClosed returns a store whose connections are closed.
func openClosed(t *testing.T) *domain.DB {
	t.Helper()
	db := dbtest.SQLite(t)
	_ = db.Close()
	return db
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
