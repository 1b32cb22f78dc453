// Package outbox relays committed events from the transactional outbox
// (domain/outbox.go writes it inside every module's transaction) to the
// gateway, in commit order, and moves its position only past events that
// are safe: kept where clients can get them back, and handed to every hub.
// It also wakes on commits, prunes relayed rows and keeps a second node off
// a database that one node already relays.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/domain"
)

// Sink takes the relayed events in commit order, in three steps.
type Sink interface {
	// Keep runs inside the relay's transaction, once per event, for
	// events relayed for the first time: what it writes through tx commits
	// together with the relay's stored position, so after a crash an event
	// is either kept with its position or neither. It may set fields of
	// envs (stream offsets) that Deliver then carries. A sink that is a
	// OneStatementKeeper may be given an autocommit session instead.
	Keep(ctx context.Context, tx domain.Querier, envs []domain.Envelope) error
	// Recall sets the same fields for events kept before a restart but not
	// yet delivered, from what Keep wrote.
	Recall(ctx context.Context, envs []domain.Envelope) error
	// Deliver hands envs to every hub, in order, and calls done once they
	// have them; only then does the relay's delivered position move past
	// them. A nil error with done never called keeps them for the next run.
	Deliver(ctx context.Context, envs []domain.Envelope, done func()) error
}

// Pruner is implemented by sinks that keep rows of their own; the relay
// prunes them with the outbox.
type Pruner interface {
	Prune(ctx context.Context) (int64, error)
}

// Config tunes the relay. Zero values mean the documented defaults.
type Config struct {
	// PollInterval bounds the wait for a wake-up (NOTIFY on PostgreSQL, an
	// in-process commit signal on both stores). Zero means 500ms.
	PollInterval time.Duration
	// Retention is how long relayed rows stay in the outbox. Zero means 24h.
	Retention time.Duration
	// PruneEvery is the pruning period. Zero means 1 minute.
	PruneEvery time.Duration
	// RestartGrace holds the delivery of events that were already waiting
	// when the relay started (committed, or kept, but not delivered before
	// the previous process stopped) until this long after the start, so
	// clients of protocols that cannot replay (Pusher, ActionCable) have
	// reconnected when they go out. Kept events are in the history at once.
	// Zero delivers at once.
	RestartGrace time.Duration
	// DrainWait bounds how long Run waits, once ctx ends, for the events
	// already handed over to be delivered. Zero means 10s.
	DrainWait time.Duration
	// Mode is how the relay learns of commits on PostgreSQL (see Mode).
	// Empty means ModeAuto.
	Mode Mode
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Status receives what the relay tells about itself (running, failing,
	// lag, deliveries) for readiness and metrics. Nil means a Status of
	// the relay's own (see Relay.Status); pass one to keep it across the
	// relays of a node.
	Status *Status
}

func (c *Config) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = time.Minute
	}
	if c.DrainWait == 0 {
		c.DrainWait = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.Status == nil {
		c.Status = &Status{}
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval < 0 {
		errs = append(errs, errors.New("relay: PollInterval must not be negative"))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("relay: Retention must not be negative"))
	}
	if c.PruneEvery < 0 {
		errs = append(errs, errors.New("relay: PruneEvery must not be negative"))
	}
	if c.RestartGrace < 0 {
		errs = append(errs, errors.New("relay: RestartGrace must not be negative"))
	}
	if c.DrainWait < 0 {
		errs = append(errs, errors.New("relay: DrainWait must not be negative"))
	}
	switch c.Mode {
	case "", ModeAuto, ModePoll, ModeLogical:
	default:
		errs = append(errs, fmt.Errorf("relay: mode %q is not one of auto, poll, logical", c.Mode))
	}
	return errors.Join(errs...)
}

// Relay forwards committed outbox rows to a Sink.
//
// Why not watermill-sql's Subscriber, which earlier versions used: it has
// one position, committed in the transaction that read the rows once every
// row is acked. Acking on hand-over to the in-memory broker lost whatever
// was queued when the process died; acking after the fan-out would hold
// that transaction (SQLite's write lock) for the whole fan-out. The relay
// keeps watermill's outbox table, row format and offsets table, and moves
// two positions instead (see read.go).
type Relay struct {
	db   *domain.DB
	sink Sink
	cfg  Config

	ready     chan struct{} // closed once Run has read its positions
	readyOnce sync.Once
	mode      atomic.Value // Mode running, once Run has chosen

	adoptUntil *position // poll mode: see adoption in poll.go

	mu        sync.Mutex
	delivered position // poll mode: highest position whose events every hub has
	pending   int      // batches handed over, done not called yet
	changed   chan struct{}
	toDelete  []position // logical mode: delivered rows to delete
	// deleteTries counts the deletions of a row that found nothing (see
	// flushDeletes), logical mode.
	deleteTries map[position]int

	// keeps and deletes are the logical stream's autocommit sessions on
	// PostgreSQL (session.go), one per loop.
	keeps, deletes asyncSession
}

// NewRelay returns a relay of db's outbox into sink.
func NewRelay(db *domain.DB, sink Sink, cfg Config) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || sink == nil {
		return nil, errors.New("relay: db and sink are required")
	}
	return &Relay{db: db, sink: sink, cfg: cfg, changed: make(chan struct{}, 1), ready: make(chan struct{}),
		keeps: asyncSession{db: db}, deletes: asyncSession{db: db}}, nil
}

// Ready is closed once Run has started relaying: what commits from then on
// is not part of the backlog that RestartGrace holds.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

func (r *Relay) markReady() {
	r.readyOnce.Do(func() {
		r.cfg.Status.setRunning(true)
		close(r.ready)
	})
}

// Status is where the relay reports itself (Config.Status).
func (r *Relay) Status() *Status { return r.cfg.Status }

// Mode reports the mode Run chose; empty before it has.
func (r *Relay) Mode() Mode {
	m, _ := r.mode.Load().(Mode)
	return m
}

// Run relays until ctx is done, then waits (DrainWait at most) for the
// events already handed over and stores what was delivered. A database that
// cannot be reached at start is retried every second, as later.
func (r *Relay) Run(ctx context.Context) error {
	defer func() {
		r.cfg.Status.setRunning(false)
		r.cfg.Status.setFailing(nil)
	}()
	mode, why, ok, err := r.chooseMode(ctx)
	if err != nil || !ok {
		return err
	}
	if mode == ModeLogical {
		r.mode.Store(ModeLogical)
		r.cfg.Logger.Info("relay: logical decoding", "mode", ModeLogical, "why", why)
		err := r.runLogical(ctx)
		if !errors.Is(err, errNoLogical) {
			return err
		}
		mode, why = ModePoll, err.Error()
		r.cfg.Logger.Warn("relay: logical decoding is not possible; polling instead", "err", err)
	} else {
		r.cfg.Logger.Info("relay: polling the outbox", "mode", ModePoll, "why", why)
	}
	r.mode.Store(mode)
	return r.runPoll(ctx)
}

// batch is one read of the outbox: the position of its last row and the
// events of its rows (those that decode), as the sink filled them.
type batch struct {
	last position
	rows int
	envs []domain.Envelope
}

func (b batch) empty() bool { return b.rows == 0 }

// newBatch returns the batch of rows; a row that cannot be decoded would
// block the outbox forever, so it is logged and skipped.
func (r *Relay) newBatch(rows []row) batch {
	b := batch{rows: len(rows), envs: make([]domain.Envelope, 0, len(rows))}
	if len(rows) > 0 {
		b.last = rows[len(rows)-1].pos
	}
	for _, rw := range rows {
		if !rw.ok {
			r.cfg.Logger.Error("relay: undecodable outbox row skipped", "offset", rw.pos.offset, "payload", truncate(rw.raw, 200))
			continue
		}
		b.envs = append(b.envs, rw.env)
	}
	return b
}

// opContext bounds one read-and-keep step: a database that stops answering
// (a cut network path) fails it, and the loop retries, instead of hanging.
func (r *Relay) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(r.db.Timeout(), 5*time.Second))
}

// handOver delivers envs; delivered runs once the sink says every hub has
// them (at once when envs is empty).
func (r *Relay) handOver(ctx context.Context, envs []domain.Envelope, delivered func()) error {
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
	key := r.cfg.Status.handedOver(envs)
	var once sync.Once
	done := func() {
		once.Do(func() {
			r.cfg.Status.delivered(key, envs, time.Now())
			delivered()
			r.mu.Lock()
			r.pending--
			r.mu.Unlock()
			select {
			case r.changed <- struct{}{}:
			default:
			}
		})
	}
	if len(envs) == 0 {
		done()
		return nil
	}
	if err := r.sink.Deliver(ctx, envs, done); err != nil {
		r.cfg.Status.dropped(key)
		r.mu.Lock()
		r.pending--
		r.mu.Unlock()
		return fmt.Errorf("relay: deliver: %w", err)
	}
	return nil
}

// keepOrRecall gives envs to Sink.Keep through tx, except those the sink
// already kept (Recall finds them): the relay uses it where its positions
// cannot tell which rows were kept (rows left by the other mode, see
// logical.go). An event with nothing to keep is kept again, which writes
// nothing.
func (r *Relay) keepOrRecall(ctx context.Context, tx *sql.Tx, envs []domain.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	if err := r.sink.Recall(ctx, envs); err != nil {
		return fmt.Errorf("relay: recall: %w", err)
	}
	// Recalled events go first, then the fresh ones they are kept now:
	// every channel's offsets then rise along the batch, whatever order
	// the rows came in (transaction ids, where the killed process kept in
	// commit order).
	var recalled, fresh []domain.Envelope
	for _, env := range envs {
		if len(env.Streams) > 0 {
			recalled = append(recalled, env)
		} else {
			fresh = append(fresh, env)
		}
	}
	if len(fresh) > 0 {
		if err := r.sink.Keep(ctx, tx, fresh); err != nil {
			return fmt.Errorf("relay: keep: %w", err)
		}
	}
	copy(envs, recalled)
	copy(envs[len(recalled):], fresh)
	return nil
}

// asyncCommit lets a relay transaction commit without waiting for the WAL
// flush on PostgreSQL (REST writes still wait for theirs). Losing the last
// such commits in a database crash is harmless: the relay's positions and
// history rows roll back together, the same rows are read again in the same
// order, and they get the same offsets; their events are only delivered
// again (at-least-once, as after any crash). It saves one or two fsyncs per
// batch on the path from commit to screen.
func asyncCommit(ctx context.Context, tx *sql.Tx, d domain.Dialect) error {
	if d != domain.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO off`); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// drain waits for the batches already handed over, DrainWait at most.
func (r *Relay) drain() {
	deadline := time.Now().Add(r.cfg.DrainWait)
	for {
		r.mu.Lock()
		n := r.pending
		r.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.cfg.Logger.Warn("relay: stopped with events not yet delivered; they go out after the next start", "batches", n)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *Relay) pruneLoop(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			start := time.Now()
			n, err := r.Prune(ctx)
			cancel()
			if err != nil {
				r.cfg.Logger.Warn("relay: prune", "err", err)
			} else if n > 0 {
				r.cfg.Logger.Debug("relay: pruned", "rows", n, "took", time.Since(start))
			}
		}
	}
}

// Prune deletes outbox rows older than the retention window that every hub
// already has, then whatever the sink prunes with them. It returns the
// number of rows deleted.
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	secs := int64(r.cfg.Retention / time.Second)
	var q string
	if r.db.Dialect == domain.Postgres {
		q = `DELETE FROM "watermill_events" WHERE created_at < (CURRENT_TIMESTAMP - make_interval(secs => $1))::timestamp
AND transaction_id < (SELECT last_processed_transaction_id FROM "watermill_offsets_events" WHERE consumer_group = $2)`
	} else {
		q = `DELETE FROM "watermill_events" WHERE created_at < datetime('now', '-' || $1 || ' seconds')
AND "offset" <= (SELECT offset_acked FROM "watermill_offsets_events" WHERE consumer_group = $2)`
	}
	res, err := r.db.ExecContext(ctx, q, secs, deliveredGroup)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	n, _ := res.RowsAffected()
	if p, ok := r.sink.(Pruner); ok {
		m, err := p.Prune(ctx)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// While committed rows wait behind a running transaction, the relay looks
// again after pendingMinWait, doubling up to pendingMaxWait.
const (
	pendingMinWait = 2 * time.Millisecond
	pendingMaxWait = 50 * time.Millisecond
)

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
