package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/outbox"
)

// Events kept but never confirmed delivered (the process died during the
// fan-out) are delivered again by the next relay, recalled rather than kept
// twice, in order; events confirmed delivered are not sent again.
func TestRelayRedeliversWhatNoHubConfirmed(t *testing.T) {
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		c := newCollector()
		stop := runRelay(t, db, mode, c)
		emitRange(t, db, 0, 3)
		c.wait(t, 3)
		// From here the hub never confirms: the process "dies" mid-fan-out.
		c.mu.Lock()
		c.hold = true
		c.mu.Unlock()
		emitRange(t, db, 3, 6)
		c.wait(t, 3)
		stop()
		emitRange(t, db, 6, 8) // committed while no relay runs

		c2 := c.next()
		runRelay(t, db, mode, c2)
		got := c2.wait(t, 5)
		time.Sleep(300 * time.Millisecond)
		if n := c2.count(); n != 5 {
			t.Fatalf("after restart delivered %d, want 5 (3 unconfirmed + 2 new, nothing confirmed again)", n)
		}
		for i, env := range got {
			if want := `{"n":` + itoa(i+3) + `}`; string(env.Data) != want {
				t.Fatalf("event %d = %s, want %s (order)", i, env.Data, want)
			}
			// The unconfirmed ones were kept before: recalled, not kept again.
			wantEpoch := "kept"
			if i < 3 {
				wantEpoch = "recalled"
			}
			if len(env.Streams) != 1 || env.Streams[0].Epoch != wantEpoch {
				t.Fatalf("event %d streams %+v, want epoch %q", i, env.Streams, wantEpoch)
			}
		}
		if c2.kept != 2 || c2.recalled != 3 {
			t.Fatalf("kept %d recalled %d, want 2 and 3", c2.kept, c2.recalled)
		}
	})
}

// A failing Keep rolls back with the stored position: nothing is delivered
// until it succeeds, then everything is, once, in order.
func TestRelayKeepFailureRetries(t *testing.T) {
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		c := newCollector()
		c.keepErr = errors.New("history unavailable")
		runRelayConfig(t, db, c, outbox.Config{PollInterval: 50 * time.Millisecond, Mode: mode})
		emitRange(t, db, 0, 3)
		time.Sleep(300 * time.Millisecond)
		if n := c.count(); n != 0 {
			t.Fatalf("delivered %d events whose keep failed", n)
		}
		c.mu.Lock()
		c.keepErr = nil
		c.mu.Unlock()
		got := c.wait(t, 3)
		for i, env := range got {
			if want := `{"n":` + itoa(i) + `}`; string(env.Data) != want {
				t.Fatalf("event %d = %s, want %s", i, env.Data, want)
			}
		}
	})
}

// Events waiting when the relay starts go out after RestartGrace (clients
// of protocols that cannot replay reconnect meanwhile); with nothing
// waiting, the first new event goes out at once.
func TestRelayRestartGrace(t *testing.T) {
	// Generous bounds: a relay's start (its LISTEN connection) can take
	// hundreds of milliseconds on a loaded CI box.
	const grace = 3 * time.Second
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		tests := []struct {
			name    string
			backlog bool
			min     time.Duration
			max     time.Duration
		}{
			{"nothing waiting: no hold", false, 0, grace / 2},
			// min: the hold is measured from the relay's start.
			{"events waiting: held", true, grace - 50*time.Millisecond, 5 * time.Second},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.backlog {
					if err := emit(t, db, i, false); err != nil {
						t.Fatal(err)
					}
				}
				c := newCollector()
				start := time.Now()
				stop := runRelayConfig(t, db, c, outbox.Config{PollInterval: 50 * time.Millisecond, RestartGrace: grace, Mode: mode})
				defer stop()
				if !tc.backlog {
					start = time.Now()
					if err := emit(t, db, i, false); err != nil {
						t.Fatal(err)
					}
				}
				c.wait(t, 1)
				if d := time.Since(start); d < tc.min || d > tc.max {
					t.Fatalf("delivered after %v, want between %v and %v", d, tc.min, tc.max)
				}
			})
		}
	})
}

// A second relay of the same database is refused with a message naming the
// cluster setting; once the first lets go, the database can be claimed.
func TestClaimRefusesSecondNode(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		release, err := outbox.Claim(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		// A second handle, as a second process would have.
		var other *domain.DB
		if db.Dialect == domain.Postgres {
			other, err = domain.Open(ctx, domain.OpenConfig{DatabaseURL: db.DSN})
		} else {
			other, err = domain.OpenSQLite(ctx, db.Path)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := outbox.Claim(ctx, other); !errors.Is(err, outbox.ErrClaimed) || !strings.Contains(err.Error(), "SWITCHBOARD_NATS_URL") {
			t.Fatalf("second claim: %v, want ErrClaimed naming SWITCHBOARD_NATS_URL", err)
		}
		release()
		again, err := outbox.Claim(ctx, other)
		if err != nil {
			t.Fatalf("claim after release: %v", err)
		}
		again()
	})
}

// A transaction left open elsewhere on the cluster hides later commits from
// the relay (their order is not final until it ends). When it ends, nothing
// wakes the relay; it must look again within milliseconds, not wait for
// its poll (10 s here).
func TestRelayNotParkedBehindUnrelatedTransaction(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	c := newCollector()
	runRelayConfig(t, db, c, outbox.Config{PollInterval: 10 * time.Second, Mode: outbox.ModePoll})
	time.Sleep(200 * time.Millisecond) // the relay is idle

	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, `SELECT pg_current_xact_id()`); err != nil { // takes an xid: holds xmin back
		t.Fatal(err)
	}
	if err := emit(t, db, 1, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.ch:
		t.Fatal("an event was relayed while an older transaction was still open (its order was not final)")
	case <-time.After(700 * time.Millisecond):
	}
	ended := time.Now()
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.ch:
		if d := time.Since(ended); d > 500*time.Millisecond {
			t.Fatalf("relayed %v after the blocking transaction ended", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not relayed within 5 s of the blocking transaction's end: the relay waited for its poll")
	}
}

// 20 writers × 50 commits each: the relay hands over every event exactly
// once, and each writer's events in the order it committed them (on
// PostgreSQL commits of different writers interleave out of xid order; the
// xid8 rule must neither skip nor reorder them).
func TestRelayConcurrentWritersNoSkipNoReorder(t *testing.T) {
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		const writers, each = 20, 50
		c := newCollector()
		runRelayConfig(t, db, c, outbox.Config{PollInterval: 100 * time.Millisecond, Mode: mode})
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					err := db.InTx(context.Background(), func(tx *domain.Tx) error {
						return tx.Emit(domain.Scope{Channels: []string{"c"}}, pinged{N: w*1000 + i})
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := c.wait(t, writers*each)
		time.Sleep(300 * time.Millisecond)
		if n := c.count(); n != writers*each {
			t.Fatalf("relayed %d events, want %d", n, writers*each)
		}
		next := make([]int, writers)
		seen := map[int]bool{}
		for _, env := range got {
			var p pinged
			if err := json.Unmarshal(env.Data, &p); err != nil {
				t.Fatal(err)
			}
			if seen[p.N] {
				t.Fatalf("event %d relayed twice", p.N)
			}
			seen[p.N] = true
			w, i := p.N/1000, p.N%1000
			if i != next[w] {
				t.Fatalf("writer %d: event %d arrived when %d was next (reordered or skipped)", w, i, next[w])
			}
			next[w]++
		}
	})
}
