package domain

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tx is a store transaction that also collects the events to write to the
// outbox in the same transaction.
//
// On PostgreSQL the SQL transaction begins at the first statement, and rows
// inserted with InsertRow are held back until something else runs or the
// transaction commits. A write whose only statement is such an insert then
// reaches PostgreSQL as one statement that inserts the row and its events
// together: one round trip instead of four (BEGIN, insert, outbox insert,
// COMMIT), and no transaction left open while the process prepares its next
// statement, which would hold the relay back. Such statements from
// concurrent requests commit together (groupcommit.go).
type Tx struct {
	Dialect Dialect
	ctx     context.Context
	db      *DB
	// stx is the SQL transaction; nil on PostgreSQL until the first statement.
	stx *sql.Tx
	// err is a failure its caller could not see when it happened (BEGIN, a
	// held-back insert): the transaction can no longer commit, and InTx
	// returns err whatever fn returns.
	err error
	// held are inserts not yet sent, in order (PostgreSQL only).
	held    []statement
	pending []Envelope
	// projects were read in this transaction; they join the DB's cache
	// once it commits (a row this transaction wrote must not leak early).
	projects []Project
	// revoke waits for the next emitted envelope: access must end before
	// that event fans out, so revocations ride on an event, never alone.
	revoke []Revocation
}

// statement is SQL with its arguments: a held insert, the outbox insert,
// or the two fused.
type statement struct {
	query string
	args  []any
}

// InTx runs fn in one transaction. Rows fn writes and events it emits commit
// together or not at all; fn's error (or a panic) rolls everything back.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	tx := &Tx{Dialect: db.Dialect, ctx: ctx, db: db}
	if db.Dialect != Postgres {
		// SQLite begins at once: its IMMEDIATE transaction takes the write
		// lock, which orders this write against the others.
		if _, err := tx.sqlTx(ctx); err != nil {
			return err
		}
	}
	defer func() {
		if p := recover(); p != nil {
			tx.rollback()
			panic(p)
		}
		if err != nil {
			tx.rollback()
		}
	}()
	defer func() {
		// When the request's deadline passes mid-transaction, database/sql
		// rolls it back and every later call, Commit included, says only
		// "transaction has already been committed or rolled back": that is
		// the deadline (503, retry), not a bug (500). Nothing committed.
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}()
	err = fn(tx)
	if tx.err != nil {
		// The root cause; fn's error, if any, followed from it.
		return tx.err
	}
	if err != nil {
		return err
	}
	if len(tx.revoke) > 0 {
		return errors.New("domain: revocation without a following event")
	}
	if err = tx.commit(ctx); err != nil {
		return err
	}
	for _, p := range tx.projects {
		db.rememberProject(p)
	}
	if len(tx.pending) > 0 {
		db.signalCommitted()
	}
	return nil
}

// commit writes the outbox rows and commits. The last held insert and the
// outbox insert travel as one statement; when nothing else ran, that
// statement is the whole transaction.
func (tx *Tx) commit(ctx context.Context) error {
	var final statement
	if n := len(tx.held); n > 0 {
		final, tx.held = tx.held[n-1], tx.held[:n-1]
	}
	if len(tx.pending) > 0 {
		q, err := outboxInsert(tx.Dialect, tx.pending)
		if err != nil {
			return err
		}
		final = withOutbox(final, q)
	}
	_, claimed := ctx.Value(idemClaimKey{}).(idemClaim)
	if tx.stx == nil && len(tx.held) == 0 && (!claimed || final.query == "") {
		if final.query == "" {
			return nil // nothing read or written
		}
		// A single statement is atomic on its own: PostgreSQL commits it
		// (durably, as COMMIT would) before answering; the committers send
		// it with the others in flight, a group that commits or fails whole.
		if tx.db.group != nil {
			return tx.db.group.exec(ctx, final)
		}
		if _, err := tx.exec(ctx, nil, final); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	stx, err := tx.sqlTx(ctx)
	if err != nil {
		return err
	}
	if final.query != "" {
		if _, err := tx.exec(ctx, stx, final); err != nil {
			return err
		}
	}
	// An Idempotency-Key commits with the write (see claimKey).
	if err := claimKey(ctx, stx); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (tx *Tx) rollback() {
	if tx.stx != nil {
		_ = tx.stx.Rollback()
	}
}

// sqlTx returns the SQL transaction, beginning it if needed and sending the
// held inserts first: whatever runs next may depend on them.
func (tx *Tx) sqlTx(ctx context.Context) (*sql.Tx, error) {
	if tx.err != nil {
		return nil, tx.err
	}
	if tx.stx == nil {
		stx, err := tx.db.BeginTx(tx.ctx, nil)
		if err != nil {
			tx.err = fmt.Errorf("begin: %w", err)
			return nil, tx.err
		}
		tx.stx = stx
	}
	for len(tx.held) > 0 {
		h := tx.held[0]
		tx.held = tx.held[1:]
		if _, err := tx.exec(ctx, tx.stx, h); err != nil {
			tx.err = err
			return nil, err
		}
	}
	return tx.stx, nil
}

// exec runs a statement in stx, or on its own (autocommit) when stx is nil,
// as a cached prepared statement where one is available (see DB.stmt).
func (tx *Tx) exec(ctx context.Context, stx *sql.Tx, s statement) (sql.Result, error) {
	st := tx.db.stmt(ctx, s.query)
	switch {
	case stx == nil && st != nil:
		return st.ExecContext(ctx, s.args...)
	case stx == nil:
		return tx.db.ExecContext(ctx, s.query, s.args...)
	case st != nil:
		return stx.StmtContext(ctx, st).ExecContext(ctx, s.args...)
	default:
		return stx.ExecContext(ctx, s.query, s.args...)
	}
}

// InsertRow inserts one row that gets its id from the table's "id" column
// and returns that id, so the caller can put it in the events it emits.
// query is a plain INSERT ... VALUES whose $1 is the id; args fill $2 on.
//
// On PostgreSQL the id is drawn ahead of time from the column's sequence
// (in blocks, so ids may have gaps) and the insert is held back, to be sent
// with the next statement or, at commit, in the same statement as the
// outbox rows. A constraint it violates is then reported by InTx. On SQLite
// the insert runs at once.
func (tx *Tx) InsertRow(ctx context.Context, table, query string, args ...any) (int64, error) {
	if tx.err != nil {
		return 0, tx.err
	}
	if tx.Dialect != Postgres {
		var id int64
		err := tx.QueryRowContext(ctx, query+" RETURNING id", append([]any{nil}, args...)...).Scan(&id)
		return id, err
	}
	var q Querier = tx.db
	if tx.stx != nil {
		q = tx.stx // no second pool connection while this one is held
	}
	id, err := tx.db.nextID(ctx, q, table)
	if err != nil {
		return 0, err
	}
	tx.held = append(tx.held, statement{query: query, args: append([]any{id}, args...)})
	return id, nil
}

// QueryRowContext runs query in the transaction, as a cached prepared
// statement of its connection (see DB.stmt).
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	stx, err := tx.sqlTx(ctx)
	if err != nil {
		return failedRow(tx.db.DB)
	}
	if st := tx.db.stmt(ctx, query); st != nil {
		return stx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return stx.QueryRowContext(ctx, query, args...)
}

// QueryContext is QueryRowContext for several rows.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	stx, err := tx.sqlTx(ctx)
	if err != nil {
		return nil, err
	}
	if st := tx.db.stmt(ctx, query); st != nil {
		return stx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return stx.QueryContext(ctx, query, args...)
}

// ExecContext is QueryRowContext for statements without rows.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	stx, err := tx.sqlTx(ctx)
	if err != nil {
		return nil, err
	}
	return tx.exec(ctx, stx, statement{query, args})
}

// failedRow is a *sql.Row whose Scan fails without touching the database
// (database/sql has no constructor for one): a cancelled context stops it
// before it takes a connection. InTx reports the real cause, tx.err.
func failedRow(db *sql.DB) *sql.Row {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return db.QueryRowContext(ctx, `SELECT 1`)
}

// Emit queues events for scope; they are written to the outbox inside this
// transaction, just before it commits, and delivered only if it commits.
func (tx *Tx) Emit(scope Scope, events ...Event) error {
	for _, ev := range events {
		env, err := NewEnvelope(tx.ctx, scope, ev)
		if err != nil {
			return err
		}
		env.Revoke, tx.revoke = append(env.Revoke, tx.revoke...), nil
		tx.pending = append(tx.pending, env)
	}
	return nil
}

// EmitEnvelope queues an already built envelope.
func (tx *Tx) EmitEnvelope(envs ...Envelope) {
	if len(envs) > 0 && len(tx.revoke) > 0 {
		envs[0].Revoke, tx.revoke = append(envs[0].Revoke, tx.revoke...), nil
	}
	tx.pending = append(tx.pending, envs...)
}

// Revoke records that member may no longer read the canonical channel. The
// revocation travels on the next envelope this transaction emits, and the
// gateway drops member's live subscriptions before fanning that envelope
// out. A transaction that revokes must emit an event afterwards, or InTx
// fails: a silent revocation would leave subscriptions open.
func (tx *Tx) Revoke(member, channel string) {
	tx.revoke = append(tx.revoke, Revocation{Member: member, Channel: channel})
}

// withOutbox returns one statement that runs h (if any) and then the outbox
// insert q: a data-modifying WITH, h's placeholders first. PostgreSQL only;
// h inserts into another table, so the two parts cannot see each other.
func withOutbox(h statement, q statement) statement {
	if h.query == "" {
		return q
	}
	args := make([]any, 0, len(h.args)+len(q.args))
	args = append(append(args, h.args...), q.args...)
	return statement{
		query: "WITH held AS (" + h.query + ") " + shiftPlaceholders(q.query, len(h.args)),
		args:  args,
	}
}

// shiftPlaceholders renumbers $N to $N+by outside quoted text.
func shiftPlaceholders(q string, by int) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '$' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(q[i+1 : j])
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n + by))
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
