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
// transaction, whose commit has to be durable before its answer.
type asyncSession struct {
	db   *domain.DB
	mu   sync.Mutex
	conn *sql.Conn
}

// do runs fn on the session's connection, opening it when there is none,
// and closes it when fn fails (its state is then unknown). Calls are
// serialized: a connection runs one statement at a time.
func (s *asyncSession) do(ctx context.Context, fn func(*sql.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("relay: session: %w", err)
		}
		if _, err := c.ExecContext(ctx, `SET synchronous_commit TO off`); err != nil {
			discard(c)
			return fmt.Errorf("relay: session: %w", err)
		}
		s.conn = c
	}
	if err := fn(s.conn); err != nil {
		discard(s.conn)
		s.conn = nil
		return err
	}
	return nil
}

// close closes the session's connection; the next do opens another.
func (s *asyncSession) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		discard(s.conn)
		s.conn = nil
	}
}

// discard closes c's connection instead of returning it to the pool:
// database/sql drops a connection whose Raw callback reports it bad.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
