package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"switchboard/domain"
)

// runPoll relays by reading the outbox after its positions (see read.go)
// whenever a commit wakes it, and at least every PollInterval.
func (r *Relay) runPoll(ctx context.Context) error {
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
			if err = r.adoption(ctx); err != nil {
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
			r.cfg.Status.setFailing(nil)
			break
		}
		r.cfg.Status.setFailing(err)
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

	r.markReady()
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
			r.cfg.Status.setFailing(err)
			if !sleep(ctx, time.Second) {
				return ctx.Err()
			}
			continue
		}
		if failing {
			r.cfg.Logger.Info("relay: resumed")
			r.cfg.Status.setFailing(nil)
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
		last := b.last
		if err := r.handOver(ctx, b.envs, func() { r.deliveredUpTo(last) }); err != nil {
			return err
		}
		*cursor = b.last
	}
	return ctx.Err()
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
	adopting := r.adoptUntil != nil && !r.adoptUntil.before(rows[0].pos)
	if adopting {
		if err := r.keepOrRecall(ctx, tx, b.envs); err != nil {
			return batch{}, err
		}
	} else if len(b.envs) > 0 {
		if err := r.sink.Keep(ctx, tx, b.envs); err != nil {
			return batch{}, fmt.Errorf("relay: keep: %w", err)
		}
	}
	if err := savePosition(ctx, tx, r.db.Dialect, storedGroup, b.last); err != nil {
		return batch{}, err
	}
	adopted := adopting && !b.last.before(*r.adoptUntil)
	if adopted {
		if err := forgetLogical(ctx, tx); err != nil {
			return batch{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return batch{}, fmt.Errorf("relay: commit: %w", err)
	}
	if adopted {
		r.adoptUntil = nil
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

func (r *Relay) deliveredUpTo(p position) {
	r.mu.Lock()
	if r.delivered.before(p) {
		r.delivered = p
	}
	r.mu.Unlock()
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

// positions loads the stored and delivered positions. A database relayed by
// an earlier version has only the stored one, which then meant delivered.
func (r *Relay) positions(ctx context.Context) (stored, delivered position, err error) {
	return positionsOf(ctx, r.db)
}

// positionsOf is Relay.positions for any reader of db's outbox (Backlog).
func positionsOf(ctx context.Context, db *domain.DB) (stored, delivered position, err error) {
	stored, _, err = loadPosition(ctx, db, db.Dialect, storedGroup)
	if err != nil {
		return
	}
	delivered, ok, err := loadPosition(ctx, db, db.Dialect, deliveredGroup)
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

// adoption prepares the first run after logical decoding (see logical.go):
// that mode deletes the rows it delivered and leaves the poll positions
// where they were, so rows after them may have been kept already. Up to the
// last row there now, the relay keeps only what the sink has not kept.
func (r *Relay) adoption(ctx context.Context) error {
	r.adoptUntil = nil
	if r.db.Dialect != domain.Postgres {
		return nil
	}
	_, marked, err := loadPosition(ctx, r.db, r.db.Dialect, logicalGroup)
	if err != nil || !marked {
		return err
	}
	last, any, err := lastRow(ctx, r.db)
	if err != nil {
		return err
	}
	if !any {
		return forgetLogical(ctx, r.db)
	}
	r.adoptUntil = &last
	r.cfg.Logger.Info("relay: taking over from logical decoding")
	return nil
}
