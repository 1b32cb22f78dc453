package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"switchboard/domain"
)

// Mode is how the relay learns of committed outbox rows.
type Mode string

const (
	// ModeAuto uses logical decoding where PostgreSQL offers it
	// (wal_level=logical and a role that may replicate), polling elsewhere.
	ModeAuto Mode = "auto"
	// ModePoll reads the outbox after its positions when a commit wakes the
	// relay (read.go). On PostgreSQL it sees only rows of transactions older
	// than every transaction running on the cluster: a long transaction
	// anywhere holds every later event back until it ends.
	ModePoll Mode = "poll"
	// ModeLogical streams the outbox's inserts from PostgreSQL's logical
	// decoding (pgoutput): each transaction arrives at its commit, in commit
	// order, whatever else runs on the cluster.
	ModeLogical Mode = "logical"
)

// Logical decoding without a slot that outlives the process.
//
// Each replication connection creates a TEMPORARY slot, which the server
// drops when the connection ends, so a stopped or crashed node never pins
// WAL on the server (a forgotten permanent slot fills the disk). The slot
// exports the snapshot of its starting point: outbox rows that snapshot sees
// are the backlog, read from the table; the stream carries every commit
// after it. Because the slot does not survive the connection, the table
// itself says what is left: the relay deletes a row once every hub has its
// event, and a row kept (history written) but not delivered before a crash
// is recognized by the sink's Recall and not kept twice.
//
// The poll positions stay where they were; rows up to the poll's delivered
// position are rows the poll delivered and left for pruning. The marker
// group below tells a later poll run that rows after its positions may have
// been kept already (poll.go, adoption).
const logicalGroup = "relay.logical"

// errNoLogical says logical decoding cannot run on this server; in
// ModeAuto the relay then polls.
var errNoLogical = errors.New("relay: logical decoding unavailable")

// chooseMode picks the mode for this run; ok is false when ctx ended first.
func (r *Relay) chooseMode(ctx context.Context) (mode Mode, why string, ok bool, err error) {
	if r.db.Dialect != domain.Postgres {
		return ModePoll, "SQLite: a committed row is readable at once", true, nil
	}
	if r.cfg.Mode == ModePoll {
		return ModePoll, "SWITCHBOARD_RELAY_MODE=poll", true, nil
	}
	var level, role string
	var canReplicate bool
	for attempt := 0; ; attempt++ {
		qctx, cancel := r.opContext(ctx)
		err := r.db.QueryRowContext(qctx, `SELECT current_setting('wal_level'), current_user,
COALESCE((SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), false)`).Scan(&level, &role, &canReplicate)
		cancel()
		if err == nil {
			r.cfg.Status.setFailing(nil)
			break
		}
		r.cfg.Status.setFailing(err)
		if attempt == 0 {
			r.cfg.Logger.Warn("relay: cannot start yet; retrying every second", "err", err)
		}
		if !sleep(ctx, time.Second) {
			return "", "", false, nil
		}
	}
	switch {
	case level != "logical":
		why = "wal_level is " + level + "; with wal_level=logical no other transaction can hold events back"
	case !canReplicate:
		why = "role " + role + " has no REPLICATION attribute"
	default:
		return ModeLogical, "wal_level=logical", true, nil
	}
	if r.cfg.Mode == ModeLogical {
		return "", "", false, fmt.Errorf("relay: SWITCHBOARD_RELAY_MODE=logical, but %s", why)
	}
	return ModePoll, why, true, nil
}

// runLogical relays from logical decoding until ctx ends. It returns an
// error wrapping errNoLogical when the server refuses the first slot in
// ModeAuto, before anything was relayed.
func (r *Relay) runLogical(ctx context.Context) error {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.deleteLoop(stop) }()
	go func() { defer wg.Done(); r.pruneLoop(stop) }()
	defer func() {
		close(stop)
		wg.Wait()
		r.flushWAL()
		r.keeps.close()
		r.deletes.close()
	}()

	failing := false
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := r.stream(ctx, attempt == 0, func() {
			if failing {
				r.cfg.Logger.Info("relay: resumed")
				r.cfg.Status.setFailing(nil)
				failing = false
			}
		})
		if ctx.Err() != nil {
			break
		}
		if r.cfg.Mode != ModeLogical && refused(err) && !r.started() {
			return fmt.Errorf("%w: %v", errNoLogical, err)
		}
		if !failing {
			r.cfg.Logger.Warn("relay: logical decoding interrupted; reconnecting every second until it succeeds", "err", err)
		} else {
			r.cfg.Logger.Debug("relay: will retry", "err", err)
		}
		failing = true
		r.cfg.Status.setFailing(err)
		// What was handed over goes out, and its rows are deleted, before
		// the next backlog read, which would otherwise deliver it again.
		r.drain()
		r.flushDeletes()
		r.flushWAL()
		if !sleep(ctx, time.Second) {
			break
		}
	}
	r.drain()
	r.cfg.Logger.Debug("relay stopped")
	return nil
}

// refused reports whether err is the server saying no to logical decoding
// (wal level, privileges, slot or sender limits), not a passing failure.
func refused(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "53400", // configuration_limit_exceeded: all replication slots are in use
		"53300", // too_many_connections: max_wal_senders
		"55000", // object_not_in_prerequisite_state: wal_level
		"42501", // insufficient_privilege
		"28000": // invalid_authorization_specification: no pg_hba entry for replication
		return true
	}
	return false
}

func (r *Relay) started() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// stream runs one replication connection: backlog, then the stream (when
// it calls streaming), until ctx ends (nil) or the connection fails.
func (r *Relay) stream(ctx context.Context, first bool, streaming func()) error {
	pub := domain.OutboxPublication(r.db.Schema)
	if err := r.preparePublication(ctx, pub); err != nil {
		return err
	}
	conn, err := r.replicationConn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()

	// Creating a slot waits for the transactions running on the cluster to
	// end (PostgreSQL needs a consistent starting point); say so when it
	// takes long.
	slow := time.AfterFunc(5*time.Second, func() {
		r.cfg.Logger.Info("relay: waiting for running transactions to end before logical decoding starts")
	})
	slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, newSlotName(), "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary: true, SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication,
	})
	slow.Stop()
	if err != nil {
		return fmt.Errorf("relay: create replication slot: %w", err)
	}
	start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("relay: slot start %q: %w", slot.ConsistentPoint, err)
	}
	keys, err := r.backlog(ctx, slot.SnapshotName)
	if err != nil {
		return err
	}
	r.markReady()

	// Events waiting at the first start are held for RestartGrace (see
	// Config); the stream waits behind them, so order holds.
	if first && len(keys) > 0 && r.cfg.RestartGrace > 0 {
		r.cfg.Logger.Info("relay: events were waiting since the last run; delivering them after the restart grace",
			"grace", r.cfg.RestartGrace, "events", len(keys))
		if !sleep(ctx, r.cfg.RestartGrace) {
			return nil
		}
	}
	for i := 0; i < len(keys); i += batchSize {
		if err := r.relayBacklog(ctx, keys[i:min(i+batchSize, len(keys))]); err != nil {
			return err
		}
	}

	if err := pglogrepl.StartReplication(ctx, conn, slot.SlotName, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + pub + "'"},
	}); err != nil {
		return fmt.Errorf("relay: start replication: %w", err)
	}
	streaming()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	txns := make(chan []row, streamBatch)
	readErr := make(chan error, 1)
	go func() { readErr <- r.readStream(sctx, conn, txns) }()
	var carry []row // a transaction that did not fit the last batch
	for {
		rows := carry
		carry = nil
		if rows == nil {
			select {
			case <-ctx.Done():
				cancel()
				<-readErr
				return nil
			case err := <-readErr:
				return err
			case rows = <-txns:
			}
		}
		slots := channelSlots(rows)
	more: // transactions already decoded go in the same batch
		for len(rows) < streamBatch {
			select {
			case next := <-txns:
				n := channelSlots(next)
				if slots+n > streamChannels {
					carry = next
					break more
				}
				slots += n
				rows = append(rows, next...)
			default:
				break more
			}
		}
		if err := r.relayStreamed(ctx, rows); err != nil {
			cancel()
			<-readErr
			return err
		}
	}
}

// streamBatch bounds the rows of one streamed batch. The relay keeps a
// batch in one transaction of several round trips, and batches go one at a
// time; with the poll's 100 rows, 32 writers on a busy 2-core machine
// outran it (batches full, 25-40 ms each, lag growing to seconds), so
// transactions already decoded go together up to this many rows.
const streamBatch = 1000

// streamChannels bounds the channels a streamed batch names, summed over its
// events: the history keeps a batch in one INSERT of 7 parameters per
// event and channel, and PostgreSQL takes at most 65,535 parameters.
const streamChannels = 8000

// channelSlots is an upper bound of the channels rows' events name.
func channelSlots(rows []row) int {
	n := 0
	for i := range rows {
		s := &rows[i].env.Scope
		n += 2 + len(s.Members) + len(s.Channels)
	}
	return n
}

// backlog marks the outbox as relayed by logical decoding and returns the
// keys of the rows the slot's snapshot sees that are not delivered: after
// the poll's delivered position, and not waiting for deletion here.
func (r *Relay) backlog(ctx context.Context, snapshot string) ([]position, error) {
	if !snapshotName.MatchString(snapshot) {
		return nil, fmt.Errorf("relay: unexpected snapshot name %q", snapshot)
	}
	_, delivered, err := r.positions(ctx)
	if err != nil {
		return nil, err
	}
	if err := savePosition(ctx, r.db, r.db.Dialect, logicalGroup, position{}); err != nil {
		return nil, err
	}
	skip := r.queuedDeletes()
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tx, err := r.db.BeginTx(qctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("relay: backlog: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(qctx, `SET TRANSACTION SNAPSHOT '`+snapshot+`'`); err != nil {
		return nil, fmt.Errorf("relay: backlog: %w", err)
	}
	rs, err := tx.QueryContext(qctx, `SELECT e.transaction_id::text, e."offset" FROM "watermill_events" e
WHERE (e.transaction_id, e."offset") > ($1::text::xid8, $2) ORDER BY e.transaction_id, e."offset"`,
		strconv.FormatUint(delivered.xid, 10), delivered.offset)
	if err != nil {
		return nil, fmt.Errorf("relay: backlog: %w", err)
	}
	defer rs.Close()
	var keys []position
	for rs.Next() {
		var xid string
		var p position
		if err := rs.Scan(&xid, &p.offset); err != nil {
			return nil, fmt.Errorf("relay: backlog: %w", err)
		}
		if p.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
			return nil, fmt.Errorf("relay: backlog: transaction id %q: %w", xid, err)
		}
		if !skip[p] {
			keys = append(keys, p)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("relay: backlog: %w", err)
	}
	return keys, tx.Commit()
}

var snapshotName = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)

// relayBacklog keeps (or recalls) and hands over the backlog rows of keys.
func (r *Relay) relayBacklog(ctx context.Context, keys []position) error {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	xids, offs := keyArrays(keys)
	rs, err := r.db.QueryContext(ctx, `SELECT e."offset", e.transaction_id::text, e.payload FROM "watermill_events" e
JOIN unnest($1::text[]::xid8[], $2::bigint[]) AS k(xid, off) ON e.transaction_id = k.xid AND e."offset" = k.off
ORDER BY e.transaction_id, e."offset"`,
		pq.Array(xids), pq.Array(offs))
	if err != nil {
		return fmt.Errorf("relay: backlog: %w", err)
	}
	rows, err := scanRows(rs)
	if err != nil {
		return fmt.Errorf("relay: backlog: %w", err)
	}
	return r.keepAndHandOver(ctx, rows, true)
}

// relayStreamed keeps and hands over rows of committed transactions.
func (r *Relay) relayStreamed(ctx context.Context, rows []row) error {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	return r.keepAndHandOver(ctx, rows, false)
}

// keepAndHandOver keeps rows' events in one transaction (recalling those
// already kept when recall is set), hands them over, and queues the rows
// for deletion once every hub has them.
func (r *Relay) keepAndHandOver(ctx context.Context, rows []row, recall bool) error {
	if len(rows) == 0 {
		return nil
	}
	b := r.newBatch(rows)
	if len(b.envs) > 0 {
		if err := r.keepEnvs(ctx, b.envs, recall); err != nil {
			return err
		}
	}
	keys := make([]position, len(rows))
	for i, rw := range rows {
		keys[i] = rw.pos
	}
	return r.handOver(ctx, b.envs, func() { r.queueDeletes(keys) })
}

// keepEnvs keeps envs: in one transaction, or, for streamed events on
// PostgreSQL with a sink that writes one statement, in that one statement
// on the relay's autocommit session (session.go).
func (r *Relay) keepEnvs(ctx context.Context, envs []domain.Envelope, recall bool) error {
	if k, ok := r.sink.(OneStatementKeeper); ok && k.KeepsInOneStatement() && !recall && r.db.Dialect == domain.Postgres {
		return r.keeps.do(ctx, func(c domain.Querier) error {
			if err := r.sink.Keep(ctx, c, envs); err != nil {
				return fmt.Errorf("relay: keep: %w", err)
			}
			return nil
		})
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("relay: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := asyncCommit(ctx, tx, r.db.Dialect); err != nil {
		return err
	}
	if recall {
		err = r.keepOrRecall(ctx, tx, envs)
	} else if err = r.sink.Keep(ctx, tx, envs); err != nil {
		err = fmt.Errorf("relay: keep: %w", err)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("relay: commit: %w", err)
	}
	return nil
}

func keyArrays(keys []position) ([]string, []int64) {
	xids := make([]string, len(keys))
	offs := make([]int64, len(keys))
	for i, k := range keys {
		xids[i] = strconv.FormatUint(k.xid, 10)
		offs[i] = k.offset
	}
	return xids, offs
}

// preparePublication creates the publication of the outbox's inserts, or
// adds the outbox to it (a table re-created under the same name).
func (r *Relay) preparePublication(ctx context.Context, pub string) error {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	var exists, member bool
	err := r.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = 'watermill_events')`,
		pub, r.db.Schema).Scan(&exists, &member)
	if err != nil {
		return fmt.Errorf("relay: publication: %w", err)
	}
	table := pq.QuoteIdentifier(r.db.Schema) + `."watermill_events"`
	switch {
	case !exists:
		_, err = r.db.ExecContext(ctx, `CREATE PUBLICATION `+pq.QuoteIdentifier(pub)+` FOR TABLE `+table+` WITH (publish = 'insert')`)
	case !member:
		_, err = r.db.ExecContext(ctx, `ALTER PUBLICATION `+pq.QuoteIdentifier(pub)+` ADD TABLE `+table)
	}
	if err != nil && !isDuplicate(err) {
		return fmt.Errorf("relay: publication: %w", err)
	}
	return nil
}

func isDuplicate(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "42710"
}

func newSlotName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "switchboard_" + hex.EncodeToString(b[:])
}

// queueDeletes adds delivered rows to the deletion queue.
func (r *Relay) queueDeletes(keys []position) {
	r.mu.Lock()
	r.toDelete = append(r.toDelete, keys...)
	r.mu.Unlock()
}

func (r *Relay) queuedDeletes() map[position]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[position]bool, len(r.toDelete))
	for _, k := range r.toDelete {
		m[k] = true
	}
	return m
}

// deleteLoop deletes delivered rows whenever deliveries complete, one
// statement at a time (rows delivered meanwhile go together next).
func (r *Relay) deleteLoop(stop <-chan struct{}) {
	for {
		select {
		case <-r.changed:
			r.flushDeletes()
		case <-stop:
			// Rows a deletion has not found yet get their retries now:
			// left queued, the next start would deliver them again.
			for range deleteRetries + 1 {
				r.flushDeletes()
				r.mu.Lock()
				empty := len(r.toDelete) == 0
				r.mu.Unlock()
				if empty {
					return
				}
				time.Sleep(deleteRetryDelay)
			}
			return
		}
	}
}

// flushDeletes deletes the queued rows; on failure they stay queued (a
// restart delivers them again: at least once).
//
// A row can be delivered before a DELETE can see it: logical decoding
// hands over a transaction once its commit record is flushed, which may be
// a moment before the writing backend has made the commit visible to
// others. A DELETE in that moment finds nothing, and the row would stay
// and go out again after a restart. So a row the DELETE did not find is
// queued again and retried shortly, up to deleteRetries times (a row that
// is really gone, pruned or deleted by an earlier run, ends there).
func (r *Relay) flushDeletes() {
	r.mu.Lock()
	keys := r.toDelete
	r.toDelete = nil
	r.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(r.db.Timeout(), 5*time.Second))
	defer cancel()
	deleted, err := r.deleteRows(ctx, keys)
	if err != nil {
		r.cfg.Logger.Warn("relay: delivered rows not deleted yet", "rows", len(keys), "err", err)
		r.mu.Lock()
		r.toDelete = append(keys, r.toDelete...)
		r.mu.Unlock()
		return
	}
	var again []position
	r.mu.Lock()
	for _, k := range keys {
		if deleted[k] {
			delete(r.deleteTries, k)
			continue
		}
		if r.deleteTries == nil {
			r.deleteTries = map[position]int{}
		}
		if r.deleteTries[k]++; r.deleteTries[k] > deleteRetries {
			delete(r.deleteTries, k)
			continue
		}
		again = append(again, k)
	}
	r.toDelete = append(again, r.toDelete...)
	r.mu.Unlock()
	if len(again) > 0 {
		time.AfterFunc(deleteRetryDelay, func() {
			select {
			case r.changed <- struct{}{}:
			default:
			}
		})
	}
}

// deleteRetries and deleteRetryDelay bound the retries of a deletion that
// found nothing (see flushDeletes): the gap they wait out is a few
// microseconds to milliseconds.
const (
	deleteRetries    = 20
	deleteRetryDelay = 20 * time.Millisecond
)

// flushWAL makes the deletions committed without waiting for the WAL flush
// (deleteRows) durable before a new slot is created, here or by the next
// process: the slot's exported snapshot is built from flushed WAL, so an
// unflushed deletion would still show its row to the next backlog, and an
// event confirmed delivered would go out again. One ordinary (synchronous)
// commit flushes the WAL up to it, earlier commits included; the marker
// it writes is the one backlog writes anyway.
func (r *Relay) flushWAL() {
	ctx, cancel := context.WithTimeout(context.Background(), max(r.db.Timeout(), 5*time.Second))
	defer cancel()
	if err := savePosition(ctx, r.db, r.db.Dialect, logicalGroup, position{}); err != nil {
		r.cfg.Logger.Warn("relay: deletions not flushed; a restart may deliver some events again", "err", err)
	}
}

// deleteRows deletes the rows of keys, in one statement on the relay's
// autocommit session, which does not wait for the WAL flush (see
// asyncCommit: a lost deletion only delivers again), and returns the keys
// it found.
func (r *Relay) deleteRows(ctx context.Context, keys []position) (map[position]bool, error) {
	// The keys are joined as pairs, one primary-key probe each:
	// "transaction_id = ANY(..) AND offset = ANY(..)" probed the index
	// for every combination, n² a batch (11,500 pages for 76 rows).
	xids, offs := keyArrays(keys)
	deleted := make(map[position]bool, len(keys))
	err := r.deletes.do(ctx, func(c domain.Querier) error {
		rs, err := c.QueryContext(ctx, `DELETE FROM "watermill_events" w USING unnest($1::text[]::xid8[], $2::bigint[]) AS k(xid, off)
WHERE w.transaction_id = k.xid AND w."offset" = k.off
RETURNING w.transaction_id::text, w."offset"`, pq.Array(xids), pq.Array(offs))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var xid string
			var p position
			if err := rs.Scan(&xid, &p.offset); err != nil {
				return err
			}
			if p.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
				return fmt.Errorf("transaction id %q: %w", xid, err)
			}
			deleted[p] = true
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("relay: delete delivered: %w", err)
	}
	return deleted, nil
}
