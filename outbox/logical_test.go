package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/outbox"
)

// The point of logical decoding: a transaction left open elsewhere on the
// cluster (in another database, and in this one) does not hold back
// events committed after it began; each arrives at once.
func TestLogicalNotHeldByUnrelatedTransaction(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	ctx := context.Background()
	c := newCollector()
	runRelayConfig(t, db, c, outbox.Config{PollInterval: 10 * time.Second, Mode: outbox.ModeLogical})

	u, err := url.Parse(dbtest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	otherDB, err := sql.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer otherDB.Close()
	for _, h := range []*sql.DB{otherDB, db.DB} {
		tx, err := h.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SELECT pg_current_xact_id()`); err != nil { // takes an xid: holds xmin back
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		start := time.Now()
		if err := emit(t, db, i, false); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.ch:
			if d := time.Since(start); d > time.Second {
				t.Fatalf("event %d took %v behind an unrelated open transaction", i, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered within 5 s while an unrelated transaction is open", i)
		}
	}
}

// Logical decoding deletes a row once every hub has its event (the table
// is what is left to deliver, see outbox/logical.go), and holds no slot
// that would outlive the process.
func TestLogicalDeletesDeliveredRowsAndUsesTemporarySlots(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	c := newCollector()
	runRelay(t, db, outbox.ModeLogical, c)
	emitRange(t, db, 0, 3)
	c.wait(t, 3)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left int
		if err := db.QueryRow(`SELECT count(*) FROM watermill_events`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivered rows still in the outbox after 5 s", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var temp, permanent int
	if err := db.QueryRow(`SELECT count(*) FILTER (WHERE temporary AND active), count(*) FILTER (WHERE NOT temporary)
FROM pg_replication_slots WHERE slot_name LIKE 'switchboard\_%'`).Scan(&temp, &permanent); err != nil {
		t.Fatal(err)
	}
	if temp == 0 || permanent != 0 {
		t.Fatalf("switchboard slots: %d temporary active, %d permanent; want ≥1 and 0", temp, permanent)
	}
}

// Switching modes between runs (wal_level raised, then SWITCHBOARD_RELAY_MODE
// =poll) loses nothing and delivers nothing twice, even when a run stops
// with events kept but not delivered: each run recalls, not keeps again,
// what the previous one kept.
func TestRelayModeSwitches(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	modes := []outbox.Mode{outbox.ModePoll, outbox.ModeLogical, outbox.ModePoll, outbox.ModeLogical}
	c := newCollector()
	var all []domain.Envelope
	next := 0
	for run, mode := range modes {
		if run > 0 {
			c = c.next()
		}
		stop := runRelay(t, db, mode, c)
		pending := 0
		if run > 0 {
			pending = 2 // the previous run's unconfirmed events
		}
		emitRange(t, db, next, next+3)
		next += 3
		c.wait(t, pending+3)
		// The run stops mid-fan-out: its last events are kept, never confirmed.
		c.mu.Lock()
		c.hold = true
		c.mu.Unlock()
		emitRange(t, db, next, next+2)
		next += 2
		c.wait(t, 2)
		stop()
		c.mu.Lock()
		all = append(all, c.envs...)
		c.mu.Unlock()
		if run > 0 && (c.recalled != 2 || c.kept != 5) {
			t.Fatalf("run %d (%s): recalled %d kept %d, want 2 and 5", run, mode, c.recalled, c.kept)
		}
	}
	// Every event in order; the unconfirmed ones exactly twice (once before
	// the stop, once after), the others once.
	want := []int{}
	for run := 0; run < len(modes); run++ {
		if run > 0 {
			want = append(want, run*5-2, run*5-1)
		}
		for i := run * 5; i < run*5+5; i++ {
			want = append(want, i)
		}
	}
	var got []int
	for _, env := range all {
		var p pinged
		if err := json.Unmarshal(env.Data, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p.N)
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivered %v, want %v", got, want)
		}
	}
}

// ModeAuto polls when the role may not replicate, and says why; ModeLogical
// refuses to run there.
func TestRelayModeChoice(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	ctx := context.Background()
	role := "sb_norepl_" + strings.TrimPrefix(db.Schema, "t_")
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN NOREPLICATION`,
		`GRANT ALL ON SCHEMA ` + db.Schema + ` TO ` + role,
		`GRANT ALL ON ALL TABLES IN SCHEMA ` + db.Schema + ` TO ` + role,
		`GRANT ALL ON ALL SEQUENCES IN SCHEMA ` + db.Schema + ` TO ` + role,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(ctx, `REVOKE ALL ON ALL TABLES IN SCHEMA `+db.Schema+` FROM `+role)
		_, _ = db.ExecContext(ctx, `REVOKE ALL ON ALL SEQUENCES IN SCHEMA `+db.Schema+` FROM `+role)
		_, _ = db.ExecContext(ctx, `REVOKE ALL ON SCHEMA `+db.Schema+` FROM `+role)
		_, _ = db.ExecContext(ctx, `DROP ROLE `+role)
	})
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	plain, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	tests := []struct {
		name string
		db   *domain.DB
		cfg  outbox.Mode
		want outbox.Mode // "" = Run fails
	}{
		{"auto, replication role", db, outbox.ModeAuto, outbox.ModeLogical},
		{"auto, no replication", plain, outbox.ModeAuto, outbox.ModePoll},
		{"poll asked", db, outbox.ModePoll, outbox.ModePoll},
		{"logical asked, no replication", plain, outbox.ModeLogical, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector()
			r, err := outbox.NewRelay(tc.db, c, outbox.Config{Mode: tc.cfg, DrainWait: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			if tc.want == "" {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), "REPLICATION") {
						t.Fatalf("Run = %v, want an error naming REPLICATION", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Run kept running in logical mode without replication rights")
				}
				return
			}
			select {
			case <-r.Ready():
			case err := <-done:
				t.Fatalf("Run stopped: %v", err)
			case <-time.After(15 * time.Second):
				t.Fatal("relay not ready")
			}
			if got := r.Mode(); got != tc.want {
				t.Fatalf("mode %q, want %q", got, tc.want)
			}
			if err := emit(t, tc.db, i, false); err != nil {
				t.Fatal(err)
			}
			c.wait(t, 1)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A replication connection that dies (the server terminates it) is
// re-established with a new slot; events committed meanwhile arrive once,
// in order.
func TestLogicalReconnects(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	c := newCollector()
	runRelay(t, db, outbox.ModeLogical, c)
	emitRange(t, db, 0, 3)
	c.wait(t, 3)
	var killed bool
	if err := db.QueryRow(`SELECT COALESCE(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_replication WHERE application_name = $1`,
		outbox.ReplicationName(db.Schema)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate the relay's replication connection: %v (found: %v)", err, killed)
	}
	emitRange(t, db, 3, 8)
	got := c.wait(t, 5)
	time.Sleep(300 * time.Millisecond)
	if n := c.count(); n != 8 {
		t.Fatalf("delivered %d events, want 8", n)
	}
	for i, env := range got {
		if want := `{"n":` + itoa(i) + `}`; string(env.Data) != want {
			t.Fatalf("event %d = %s, want %s", i, env.Data, want)
		}
	}
}

// A restarted relay's backlog (read in transaction-id order) mixes events
// the killed process kept with fresh ones: the recalled events go out
// first, so every channel's offsets rise along the delivery, for every
// protocol (a Centrifugo subscription also drops what it already has, see
// gateway/centrifuge/subscription.go).
func TestBacklogDeliversRecalledFirst(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	emitRange(t, db, 0, 5)
	c := newCollector()
	// The previous process kept events 1 and 3 before it died.
	envs := dbtest.Outbox(t, db)
	if len(envs) != 5 {
		t.Fatalf("%d events in the outbox", len(envs))
	}
	c.store.ids[envs[1].ID], c.store.ids[envs[3].ID] = true, true
	stop := runRelay(t, db, outbox.ModeLogical, c)
	defer stop()
	got := c.wait(t, 5)
	var order []string
	for _, env := range got {
		order = append(order, env.ID)
	}
	want := []string{envs[1].ID, envs[3].ID, envs[0].ID, envs[2].ID, envs[4].ID}
	if !slices.Equal(order, want) {
		t.Fatalf("delivered %v, want the recalled ones first: %v", order, want)
	}
	if c.recalled != 2 || c.kept != 3 {
		t.Fatalf("recalled %d kept %d, want 2 and 3", c.recalled, c.kept)
	}
}

// gatedSink holds the first Keep until gate closes, so the stream falls
// behind, and records how many events and channel names each batch has.
type gatedSink struct {
	*collector
	gate    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	batches [][2]int // events, channel names
}

func (g *gatedSink) Keep(ctx context.Context, tx domain.Querier, envs []domain.Envelope) error {
	g.once.Do(func() { <-g.gate })
	names := 0
	for _, env := range envs {
		names += len(env.Scope.ChannelNames())
	}
	g.mu.Lock()
	g.batches = append(g.batches, [2]int{len(envs), names})
	g.mu.Unlock()
	return g.collector.Keep(ctx, tx, envs)
}

// A stream that fell behind catches up in batches bigger than the poll's
// 100 rows, bounded by the channels they name (the history's one INSERT
// per batch), and still delivers every event once, in commit order.
func TestLogicalCatchesUpInBigBatches(t *testing.T) {
	db := dbtest.Postgres(t)
	requireLogical(t, db)
	ctx := context.Background()
	g := &gatedSink{collector: newCollector(), gate: make(chan struct{})}
	runRelay(t, db, outbox.ModeLogical, g)
	if err := emit(t, db, 0, false); err != nil { // held in the gated Keep
		t.Fatal(err)
	}
	// Writers in parallel: each one's commits are in its own order.
	const writers, each, wide = 6, 50, 20
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("wide-%d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := emit(t, db, 1+w*1000+i, false); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // events naming 500 channels each: 16 fill a batch's channel bound
		defer wg.Done()
		for i := 0; i < wide; i++ {
			if err := db.InTx(ctx, func(tx *domain.Tx) error {
				return tx.Emit(domain.Scope{Channels: many}, pinged{N: 1 + writers*1000 + i})
			}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Let the stream decode what was committed before the gate opens.
	time.Sleep(300 * time.Millisecond)
	close(g.gate)
	total := 1 + writers*each + wide
	envs := g.wait(t, total)
	time.Sleep(100 * time.Millisecond)
	if n := g.count(); n != total {
		t.Fatalf("delivered %d events, want %d", n, total)
	}
	last := map[int]int{}
	seen := map[int]bool{}
	for _, env := range envs {
		var p pinged
		if err := json.Unmarshal(env.Data, &p); err != nil {
			t.Fatal(err)
		}
		if seen[p.N] {
			t.Fatalf("event %d delivered twice", p.N)
		}
		seen[p.N] = true
		w := p.N / 1000
		if prev, ok := last[w]; ok && p.N < prev {
			t.Fatalf("writer %d: event %d delivered after %d", w, p.N, prev)
		}
		last[w] = p.N
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	biggest := 0
	for _, b := range g.batches {
		biggest = max(biggest, b[0])
		if b[1] > 8000 && b[0] > 1 {
			t.Fatalf("a batch of %d events names %d channels, over the bound of 8000", b[0], b[1])
		}
	}
	if biggest <= 100 {
		t.Fatalf("largest batch %d events; a stream behind by %d should catch up in bigger ones (batches %v)", biggest, total, g.batches)
	}
}
