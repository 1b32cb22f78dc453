package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/outbox"
)

type pinged struct {
	N int `json:"n"`
}

func (pinged) Name() string { return "Pinged" }

// collector is a Sink that records what it got. Keep marks each event
// (so a test can tell kept from recalled ones) unless keepErr is set;
// Deliver records and confirms at once unless hold is set (then done is
// never called, as when the process dies before the fan-out).
type collector struct {
	mu       sync.Mutex
	envs     []domain.Envelope
	kept     int
	recalled int
	keepErr  error
	hold     bool
	ch       chan struct{}
	store    *keptStore
}

// keptStore is what a real sink keeps in the database: the ids of kept
// events, shared by the collectors of successive relays of one database.
type keptStore struct {
	mu  sync.Mutex
	ids map[string]bool
}

func newCollector() *collector {
	return &collector{ch: make(chan struct{}, 1<<16), store: &keptStore{ids: map[string]bool{}}}
}

// next returns a collector for the next relay of the same database.
func (c *collector) next() *collector {
	n := newCollector()
	n.store = c.store
	return n
}

func (c *collector) Keep(_ context.Context, _ domain.Querier, envs []domain.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keepErr != nil {
		return c.keepErr
	}
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	for i := range envs {
		envs[i].Streams = []domain.StreamOffset{{Channel: "c", Offset: uint64(c.kept + 1), Epoch: "kept"}}
		c.kept++
		c.store.ids[envs[i].ID] = true
	}
	return nil
}

func (c *collector) Recall(_ context.Context, envs []domain.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	for i := range envs {
		envs[i].Streams = nil
		if c.store.ids[envs[i].ID] {
			envs[i].Streams = []domain.StreamOffset{{Channel: "c", Epoch: "recalled"}}
			c.recalled++
		}
	}
	return nil
}

func (c *collector) Deliver(_ context.Context, envs []domain.Envelope, done func()) error {
	c.mu.Lock()
	c.envs = append(c.envs, envs...)
	hold := c.hold
	c.mu.Unlock()
	for range envs {
		c.ch <- struct{}{}
	}
	if !hold {
		done()
	}
	return nil
}

func (c *collector) wait(t *testing.T, n int) []domain.Envelope {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-c.ch:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d of %d events", len(c.envs), n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]domain.Envelope(nil), c.envs...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.envs)
}

func runRelay(t *testing.T, db *domain.DB, mode outbox.Mode, sink outbox.Sink) (stop func()) {
	t.Helper()
	return runRelayConfig(t, db, sink, outbox.Config{PollInterval: 200 * time.Millisecond, DrainWait: 200 * time.Millisecond, Mode: mode})
}

// forEachMode runs fn against SQLite and against PostgreSQL in each relay
// mode: poll, and logical decoding when the server has wal_level=logical
// (.ci/run sets it).
func forEachMode(t *testing.T, fn func(t *testing.T, db *domain.DB, mode outbox.Mode)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, dbtest.SQLite(t), outbox.ModePoll) })
	t.Run("postgres-poll", func(t *testing.T) { fn(t, dbtest.Postgres(t), outbox.ModePoll) })
	t.Run("postgres-logical", func(t *testing.T) {
		db := dbtest.Postgres(t)
		requireLogical(t, db)
		fn(t, db, outbox.ModeLogical)
	})
}

func requireLogical(t *testing.T, db *domain.DB) {
	t.Helper()
	var level string
	if err := db.QueryRow(`SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Skipf("PostgreSQL runs with wal_level=%s; logical decoding needs wal_level=logical (.ci/run sets it)", level)
	}
}

// runRelayPolling is runRelay with its safety-net poll set to poll.
func runRelayPolling(t *testing.T, db *domain.DB, sink outbox.Sink, poll time.Duration) (stop func()) {
	t.Helper()
	return runRelayConfig(t, db, sink, outbox.Config{PollInterval: poll, Mode: outbox.ModePoll})
}

func runRelayConfig(t *testing.T, db *domain.DB, sink outbox.Sink, cfg outbox.Config) (stop func()) {
	t.Helper()
	r, err := outbox.NewRelay(db, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("relay stopped before it started: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("relay not started within 15 s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// emitRange commits one event per n in [from, to).
func emitRange(t *testing.T, db *domain.DB, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := emit(t, db, i, false); err != nil {
			t.Fatal(err)
		}
	}
}

func emit(t *testing.T, db *domain.DB, n int, fail bool) error {
	t.Helper()
	return db.InTx(context.Background(), func(tx *domain.Tx) error {
		if _, err := tx.ExecContext(context.Background(), `INSERT INTO projects (slug, name, created_at) VALUES ($1, 'x', $2)`,
			"p"+time.Now().Format("150405.000000000"), time.Now()); err != nil {
			return err
		}
		if err := tx.Emit(domain.Scope{Channels: []string{"c"}}, pinged{N: n}); err != nil {
			return err
		}
		if fail {
			return errors.New("boom after insert")
		}
		return nil
	})
}

func TestRelayDeliversCommittedOnly(t *testing.T) {
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		c := newCollector()
		runRelay(t, db, mode, c)
		if err := emit(t, db, 1, true); err == nil {
			t.Fatal("expected the failing transaction to fail")
		}
		if err := emit(t, db, 2, false); err != nil {
			t.Fatal(err)
		}
		got := c.wait(t, 1)
		time.Sleep(300 * time.Millisecond)
		if n := c.count(); n != 1 {
			t.Fatalf("delivered %d events, want exactly 1", n)
		}
		if got[0].Name != "Pinged" || string(got[0].Data) != `{"n":2}` {
			t.Fatalf("unexpected envelope %+v data %s", got[0], got[0].Data)
		}
		var rows int
		if err := db.QueryRow(`SELECT count(*) FROM projects`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("projects rows = %d (%v), want 1: the failed write must leave nothing", rows, err)
		}
	})
}

func TestRelayRestartLosesNothing(t *testing.T) {
	forEachMode(t, func(t *testing.T, db *domain.DB, mode outbox.Mode) {
		c := newCollector()
		stop := runRelay(t, db, mode, c)
		emitRange(t, db, 0, 5)
		c.wait(t, 5)
		stop()
		// Committed while no relay runs.
		emitRange(t, db, 5, 15)
		c2 := c.next()
		runRelay(t, db, mode, c2)
		got := c2.wait(t, 10)
		time.Sleep(300 * time.Millisecond)
		if n := c2.count(); n != 10 {
			t.Fatalf("after restart delivered %d, want 10 (no loss, no replay of relayed rows)", n)
		}
		for i, env := range got {
			want := `{"n":` + itoa(i+5) + `}`
			if string(env.Data) != want {
				t.Fatalf("event %d = %s, want %s (order)", i, env.Data, want)
			}
		}
	})
}

func TestRelayPrunesRelayedRows(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		c := newCollector()
		runRelay(t, db, outbox.ModePoll, c)
		emitRange(t, db, 0, 3)
		c.wait(t, 3)
		r, err := outbox.NewRelay(db, c, outbox.Config{Retention: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // created_at has second precision on SQLite
		if _, err := r.Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := db.QueryRow(`SELECT count(*) FROM watermill_events`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		// PostgreSQL keeps the rows of the last relayed transaction (its cursor).
		if left > 1 {
			t.Fatalf("%d outbox rows left after pruning, want at most 1", left)
		}
	})
}

func TestRelayConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  outbox.Config
		ok   bool
	}{
		{"zero is defaults", outbox.Config{}, true},
		{"negative poll", outbox.Config{PollInterval: -1}, false},
		{"negative retention", outbox.Config{Retention: -1}, false},
		{"negative grace", outbox.Config{RestartGrace: -1}, false},
		{"logical", outbox.Config{Mode: outbox.ModeLogical}, true},
		{"unknown mode", outbox.Config{Mode: "fast"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := outbox.NewRelay(&domain.DB{}, newCollector(), tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestRelayWokenByNotify: with polling at 10 s, an event committed through
// another handle (as another process would) must still arrive at once:
// LISTEN/NOTIFY, not the poll, delivers it.
func TestRelayWokenByNotify(t *testing.T) {
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	ctx := context.Background()
	relayDB, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer relayDB.Close()
	if err := domain.Migrate(ctx, relayDB, domain.CoreMigrations()); err != nil {
		t.Fatal(err)
	}
	writer, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	c := newCollector()
	defer runRelayPolling(t, relayDB, c, 10*time.Second)()
	time.Sleep(300 * time.Millisecond) // let the relay reach its idle wait
	for i := 0; i < 3; i++ {
		start := time.Now()
		if err := emit(t, writer, i, false); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.ch:
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("event %d took %v: the relay was not woken by NOTIFY", i, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered within 5s with a 10s poll: NOTIFY did not wake the relay; old transactions: %s", i, oldTransactions(relayDB))
		}
	}
}

// oldTransactions lists transactions open for over a second anywhere in the
// cluster: they hold back pg_snapshot_xmin, and with it what the relay sees.
func oldTransactions(db *domain.DB) string {
	rows, err := db.Query(`SELECT pid, datname, state, now() - xact_start, left(query, 80) FROM pg_stat_activity
WHERE xact_start < now() - interval '1 second' AND pid <> pg_backend_pid()`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid int
		var dat, state, age, q sql.NullString
		if err := rows.Scan(&pid, &dat, &state, &age, &q); err != nil {
			return err.Error()
		}
		out = append(out, fmt.Sprintf("[%d %s %s %s %q]", pid, dat.String, state.String, age.String, q.String))
	}
	return strings.Join(out, " ")
}
