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
	"time"

	"switchboard/domain"
)

// Sink takes the relayed events in commit order, in three steps.
type Sink interface {
	// Keep runs inside the relay's transaction, once per event, for
	// events relayed for the first time: what it writes through tx commits
	// together with the relay's stored position, so after a crash an event
	// is either kept with its position or neither. It may set fields of
	// envs (stream offsets) that Deliver then carries.
	Keep(ctx context.Context, tx *sql.Tx, envs []domain.Envelope) error
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
	// Logger defaults to slog.Default().
	Logger *slog.Logger
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

	ready chan struct{} // closed once Run has read its positions

	mu        sync.Mutex
	delivered position // highest position whose events every hub has
	pending   int      // batches handed over, done not called yet
	changed   chan struct{}
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
	return &Relay{db: db, sink: sink, cfg: cfg, changed: make(chan struct{}, 1), ready: make(chan struct{})}, nil
}

// Ready is closed once Run has started relaying: what commits from then on
// is not part of the backlog that RestartGrace holds.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// Run relays until ctx is done, then waits (DrainWait at most) for the
// events already handed over and stores the delivered position. A database
// that cannot be reached at start is retried every second, as later.
func (r *Relay) Run(ctx context.Context) error {
	var (
		wake              <-chan struct{}
		stopWake          func()
		stored, delivered position
		backlog           bool
	)
	for attempt := 0; ; attempt++ {
		err := func() (err error) {
			if wake == nil {
				if wake, stopWake, err = r.wakeups(); err != nil {
					return err
				}
			}
			if stored, delivered, err = r.positions(ctx); err != nil {
				return err
			}
			if r.cfg.RestartGrace > 0 {
				rows, err := readAfter(ctx, r.db, r.db.Dialect, delivered)
				if err != nil {
					return err
				}
				backlog = len(rows) > 0
			}
			return nil
		}()
		if err == nil {
			break
		}
		if attempt == 0 {
			r.cfg.Logger.Warn("relay: cannot start yet; retrying every second", "err", err)
		}
		if !sleep(ctx, time.Second) {
			if stopWake != nil {
				stopWake()
			}
			return nil
		}
	}
	defer stopWake()
	r.delivered = delivered

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); r.saveLoop(stop, delivered) }()
	go func() { defer wg.Done(); r.pruneLoop(stop) }()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// Events waiting at start are held for RestartGrace (see Config).
	var holdUntil time.Time
	if backlog {
		holdUntil = time.Now().Add(r.cfg.RestartGrace)
		r.cfg.Logger.Info("relay: events were waiting since the last run; delivering them after the restart grace",
			"grace", r.cfg.RestartGrace)
	}

	close(r.ready)
	cursor := delivered
	err := r.loop(ctx, wake, &cursor, stored, holdUntil)
	r.drain()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	r.cfg.Logger.Debug("relay stopped")
	return err
}

// loop reads, keeps and hands over batches until ctx ends.
func (r *Relay) loop(ctx context.Context, wake <-chan struct{}, cursor *position, stored position, holdUntil time.Time) error {
	poll := time.NewTimer(r.cfg.PollInterval)
	defer poll.Stop()
	failing := false          // an outage is logged when it starts and when it ends
	var backoff time.Duration // while committed rows are not yet readable
	for ctx.Err() == nil {
		var (
			b   batch
			err error
		)
		if cursor.before(stored) {
			// Kept before a restart, not delivered: recall, do not keep again.
			b, err = r.recall(ctx, *cursor, stored)
			if err == nil && b.empty() {
				*cursor = stored // pruned meanwhile: nothing left to recall
				continue
			}
		} else {
			b, err = r.keep(ctx, *cursor)
			if !b.empty() {
				stored = b.last
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !failing {
				r.cfg.Logger.Warn("relay: will retry every second until it succeeds", "err", err)
			} else {
				r.cfg.Logger.Debug("relay: will retry", "err", err)
			}
			failing = true
			if !sleep(ctx, time.Second) {
				return ctx.Err()
			}
			continue
		}
		if failing {
			r.cfg.Logger.Info("relay: resumed")
			failing = false
		}
		if b.empty() {
			// Committed rows hidden behind a transaction still running
			// elsewhere on the cluster wake nobody when it ends: look
			// again soon instead of waiting out the poll.
			pctx, cancel := r.opContext(ctx)
			pending, err := pendingAfter(pctx, r.db, r.db.Dialect, *cursor)
			cancel()
			if err == nil && pending {
				backoff = min(max(2*backoff, pendingMinWait), pendingMaxWait)
				if !sleep(ctx, backoff) {
					return ctx.Err()
				}
				continue
			}
			backoff = 0
			poll.Reset(r.cfg.PollInterval)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			case <-poll.C:
			}
			continue
		}
		backoff = 0
		if !holdUntil.IsZero() {
			if !sleep(ctx, time.Until(holdUntil)) {
				return ctx.Err()
			}
			holdUntil = time.Time{}
		}
		if err := r.handOver(ctx, b); err != nil {
			return err
		}
		*cursor = b.last
	}
	return ctx.Err()
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

// keep reads the rows after p and gives them to Sink.Keep in one
// transaction with the stored position.
func (r *Relay) keep(ctx context.Context, p position) (batch, error) {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return batch{}, fmt.Errorf("relay: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := asyncCommit(ctx, tx, r.db.Dialect); err != nil {
		return batch{}, err
	}
	rows, err := readAfter(ctx, tx, r.db.Dialect, p)
	if err != nil || len(rows) == 0 {
		return batch{}, err
	}
	b := r.newBatch(rows)
	if len(b.envs) > 0 {
		if err := r.sink.Keep(ctx, tx, b.envs); err != nil {
			return batch{}, fmt.Errorf("relay: keep: %w", err)
		}
	}
	if err := savePosition(ctx, tx, r.db.Dialect, storedGroup, b.last); err != nil {
		return batch{}, err
	}
	if err := tx.Commit(); err != nil {
		return batch{}, fmt.Errorf("relay: commit: %w", err)
	}
	return b, nil
}

// recall reads the rows after p up to stored and has the sink recall what
// it kept for them.
func (r *Relay) recall(ctx context.Context, p, stored position) (batch, error) {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	rows, err := readAfter(ctx, r.db, r.db.Dialect, p)
	if err != nil {
		return batch{}, err
	}
	n := 0
	for n < len(rows) && !stored.before(rows[n].pos) {
		n++
	}
	b := r.newBatch(rows[:n])
	if len(b.envs) > 0 {
		if err := r.sink.Recall(ctx, b.envs); err != nil {
			return batch{}, fmt.Errorf("relay: recall: %w", err)
		}
	}
	return b, nil
}

// opContext bounds one read-and-keep step: a database that stops answering
// (a cut network path) fails it, and the loop retries, instead of hanging.
func (r *Relay) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(r.db.Timeout(), 5*time.Second))
}

// handOver delivers b's events; the delivered position moves to its last
// row when the sink says every hub has them.
func (r *Relay) handOver(ctx context.Context, b batch) error {
	last, envs := b.last, b.envs
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
	var once sync.Once
	done := func() { once.Do(func() { r.deliveredUpTo(last) }) }
	if len(envs) == 0 {
		done()
		return nil
	}
	if err := r.sink.Deliver(ctx, envs, done); err != nil {
		r.mu.Lock()
		r.pending--
		r.mu.Unlock()
		return fmt.Errorf("relay: deliver: %w", err)
	}
	return nil
}

func (r *Relay) deliveredUpTo(p position) {
	r.mu.Lock()
	if r.delivered.before(p) {
		r.delivered = p
	}
	r.pending--
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// saveLoop stores the delivered position whenever it moved from saved, one
// write at a time (positions that move during a write are stored together
// next).
func (r *Relay) saveLoop(stop <-chan struct{}, saved position) {
	save := func() {
		r.mu.Lock()
		p := r.delivered
		r.mu.Unlock()
		if p == saved {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.saveDelivered(ctx, p); err != nil {
			r.cfg.Logger.Warn("relay: delivered position not saved yet", "err", err)
			return
		}
		saved = p
	}
	for {
		select {
		case <-r.changed:
			save()
		case <-stop:
			save()
			return
		}
	}
}

// saveDelivered stores the delivered position without waiting for the WAL
// flush (see asyncCommit).
func (r *Relay) saveDelivered(ctx context.Context, p position) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save relay position: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := asyncCommit(ctx, tx, r.db.Dialect); err != nil {
		return err
	}
	if err := savePosition(ctx, tx, r.db.Dialect, deliveredGroup, p); err != nil {
		return err
	}
	return tx.Commit()
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

// positions loads the stored and delivered positions. A database relayed by
// an earlier version has only the stored one, which then meant delivered.
func (r *Relay) positions(ctx context.Context) (stored, delivered position, err error) {
	stored, _, err = loadPosition(ctx, r.db, r.db.Dialect, storedGroup)
	if err != nil {
		return
	}
	delivered, ok, err := loadPosition(ctx, r.db, r.db.Dialect, deliveredGroup)
	if err != nil {
		return
	}
	if !ok {
		delivered = stored
	}
	if stored.before(delivered) {
		stored = delivered
	}
	return stored, delivered, nil
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
