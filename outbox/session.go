package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	"switchboard/domain"
)

// OneStatementKeeper is a Sink whose Keep writes at most one statement on
// PostgreSQL. The logical stream, which writes nothing else with a batch,
// then runs Keep on an autocommit session (asyncSession) instead of a
// transaction: one round trip per batch instead of four (BEGIN, SET LOCAL,
// the statement, COMMIT), which on a busy machine was half a batch's time.
type OneStatementKeeper interface {
	KeepsInOneStatement() bool
}

// asyncSession is one pinned PostgreSQL connection whose commits do not
// wait for the WAL flush (synchronous_commit off for the whole session; see
// asyncCommit for why the relay's own writes may). It is never given back
// to the pool: a connection with that setting must not run a request's
// transaction, whose commit has to be durable before its answer (nor its
// planner setting, see do).
type asyncSession struct {
	db   *domain.DB
	mu   sync.Mutex
	conn *sessionConn
}

// sessionConn is the session's connection. Its statements are prepared
// once per connection: the relay runs the same few over and over, and
// planning the history's keep statement was a third of its time
// (BENCHMARKS.md, Session 11).
type sessionConn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt
}

func (s *sessionConn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

// QueryContext, ExecContext and QueryRowContext make a sessionConn a
// domain.Querier.
func (s *sessionConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *sessionConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *sessionConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		// A Row carries its error only when made by database/sql: the
		// unprepared query fails the same way, or succeeds.
		return s.c.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// do runs fn on the session's connection, opening it when there is none,
// and closes it when fn fails (its state is then unknown). Calls are
// serialized: a connection runs one statement at a time.
func (s *asyncSession) do(ctx context.Context, fn func(domain.Querier) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("relay: session: %w", err)
		}
		// The session's statements all find rows by key in tables that
		// churn (the outbox, the history): their statistics lag behind
		// the dead rows, and a plan made while they looked small read
		// every row, dead ones included, for each batch (a sequential
		// scan of the history, 5.5 ms a trim). Index paths always exist
		// for these statements, so the session turns the sequential scan
		// off rather than trust the estimates.
		if _, err := c.ExecContext(ctx, `SET synchronous_commit TO off; SET enable_seqscan TO off`); err != nil {
			discard(c)
			return fmt.Errorf("relay: session: %w", err)
		}
		s.conn = &sessionConn{c: c, stmts: map[string]*sql.Stmt{}}
	}
	if err := fn(s.conn); err != nil {
		s.closeLocked()
		return err
	}
	return nil
}

// close closes the session's connection; the next do opens another.
func (s *asyncSession) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *asyncSession) closeLocked() {
	if s.conn == nil {
		return
	}
	for _, st := range s.conn.stmts {
		_ = st.Close()
	}
	discard(s.conn.c)
	s.conn = nil
}

// discard closes c's connection instead of returning it to the pool:
// database/sql drops a connection whose Raw callback reports it bad.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
