package domain

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/lib/pq"
)

// abortConnector opens lib/pq connections whose blocking reads and writes
// end when the calling context ends.
//
// Why: lib/pq answers a cancelled context by sending PostgreSQL a cancel
// request on a new connection and then keeps waiting for the reply on the
// old one. When the network path is cut without a reset (a partition),
// neither ever arrives: the query, its request and its pool connection hang
// until the kernel gives up, many minutes later. Here each call that takes
// a context arms it on the connection's socket: when the context ends, the
// socket's deadline is set in the past and the blocked read returns at
// once; lib/pq then marks the connection bad and the pool drops it. A call
// that merely waits (a row lock held by another transaction) is left alone
// for as long as its context allows.
type abortConnector struct {
	inner  *pq.Connector
	dialer *net.Dialer
}

func newAbortConnector(dsn string, connectTimeout time.Duration) (*abortConnector, error) {
	inner, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	c := &abortConnector{inner: inner, dialer: &net.Dialer{
		Timeout: connectTimeout,
		// A dead peer (a partition while idle) is noticed within seconds.
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3},
	}}
	inner.Dialer(slotDialer{d: c.dialer, oneShot: cancelWait})
	return c, nil
}

// connSlot receives the socket lib/pq dials inside one Connect call, and
// the disarm func of the Connect context on it (the startup exchange reads
// too).
type connSlot struct {
	nc     net.Conn
	disarm func() bool
}

type connSlotKey struct{}

// slotDialer hands the dialed socket to the Connect call that asked for it
// (lib/pq passes Connect's context to DialContext). A socket dialed outside
// a Connect call is lib/pq's cancel request: with oneShot set it gets a
// deadline, because lib/pq waits for it before returning the cancelled
// call, and on a cut path it would never be answered.
type slotDialer struct {
	d       *net.Dialer
	oneShot time.Duration
}

func (s slotDialer) Dial(network, address string) (net.Conn, error) {
	return s.d.Dial(network, address)
}

func (s slotDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	d := *s.d
	d.Timeout = timeout
	return d.Dial(network, address)
}

func (s slotDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nc, err := s.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if slot, ok := ctx.Value(connSlotKey{}).(*connSlot); ok && slot.nc == nil {
		slot.nc = nc
		slot.disarm = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	} else if s.oneShot > 0 {
		_ = nc.SetDeadline(time.Now().Add(s.oneShot))
	}
	return nc, nil
}

func (c *abortConnector) Connect(ctx context.Context) (driver.Conn, error) {
	slot := &connSlot{}
	ctx, cancel := context.WithTimeout(ctx, c.dialer.Timeout)
	defer cancel()
	dc, err := c.inner.Connect(context.WithValue(ctx, connSlotKey{}, slot))
	if slot.disarm != nil && !slot.disarm() && err == nil {
		// The context ended as the startup finished: the socket's deadline
		// is gone, so is the connection.
		dc.Close()
		return nil, driver.ErrBadConn
	}
	if err != nil {
		return nil, err
	}
	if slot.nc == nil {
		return dc, nil // not dialed through us (a unix socket?): no abort
	}
	return &abortConn{Conn: dc, nc: slot.nc}, nil
}

func (c *abortConnector) Driver() driver.Driver { return c.inner.Driver() }

// abortConn is a lib/pq connection whose context-taking calls abort its
// socket when their context ends.
type abortConn struct {
	driver.Conn
	nc net.Conn

	mu       sync.Mutex
	txCtx    context.Context // the open transaction's context, for Commit
	poisoned bool
}

// arm aborts the socket when ctx ends, until the returned func is called.
func (c *abortConn) arm(ctx context.Context) func() {
	if ctx.Done() == nil {
		return func() {}
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		c.mu.Lock()
		c.poisoned = true
		c.mu.Unlock()
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	})
	// When ctx ended just as the call finished, the abort may be running:
	// wait for it, so the connection is marked poisoned before the pool
	// can check it (ResetSession) and hand it to someone else with its
	// deadline in the past.
	return func() {
		if !stop() {
			<-done
		}
	}
}

func (c *abortConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	defer c.arm(ctx)()
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &abortStmt{Stmt: st, c: c}, nil
}

func (c *abortConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	disarm := c.arm(ctx)
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	disarm()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.txCtx = ctx
	c.mu.Unlock()
	return &abortTx{Tx: tx, c: c}, nil
}

func (c *abortConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	defer c.arm(ctx)()
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *abortConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	disarm := c.arm(ctx)
	rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil {
		disarm()
		return nil, err
	}
	// Rows stream from the socket until closed: keep the context armed.
	return &abortRows{Rows: rows, disarm: disarm}, nil
}

func (c *abortConn) Ping(ctx context.Context) error {
	defer c.arm(ctx)()
	return c.Conn.(driver.Pinger).Ping(ctx)
}

func (c *abortConn) ResetSession(ctx context.Context) error {
	c.mu.Lock()
	poisoned := c.poisoned
	c.mu.Unlock()
	if poisoned {
		return driver.ErrBadConn
	}
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *abortConn) IsValid() bool {
	c.mu.Lock()
	poisoned := c.poisoned
	c.mu.Unlock()
	if v, ok := c.Conn.(driver.Validator); ok {
		return !poisoned && v.IsValid()
	}
	return !poisoned
}

func (c *abortConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// abortTx bounds Commit by the transaction's context and Rollback by a
// short wait of its own (database/sql rolls back after the context ended).
type abortTx struct {
	driver.Tx
	c *abortConn
}

// rollbackWait bounds a rollback, and cancelWait a cancel request, on a
// path that stopped answering.
const (
	rollbackWait = time.Second
	cancelWait   = time.Second
)

func (t *abortTx) Commit() error {
	t.c.mu.Lock()
	ctx := t.c.txCtx
	t.c.txCtx = nil
	t.c.mu.Unlock()
	if ctx != nil {
		defer t.c.arm(ctx)()
	}
	return t.Tx.Commit()
}

func (t *abortTx) Rollback() error {
	t.c.mu.Lock()
	t.c.txCtx = nil
	poisoned := t.c.poisoned
	t.c.mu.Unlock()
	if poisoned {
		return driver.ErrBadConn
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackWait)
	defer cancel()
	defer t.c.arm(ctx)()
	return t.Tx.Rollback()
}

type abortStmt struct {
	driver.Stmt
	c *abortConn
}

func (s *abortStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	defer s.c.arm(ctx)()
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *abortStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	disarm := s.c.arm(ctx)
	rows, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		disarm()
		return nil, err
	}
	return &abortRows{Rows: rows, disarm: disarm}, nil
}

func (s *abortStmt) CheckNamedValue(nv *driver.NamedValue) error {
	return s.c.CheckNamedValue(nv)
}

type abortRows struct {
	driver.Rows
	disarm func()
	once   sync.Once
}

func (r *abortRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.disarm)
	return err
}

func (r *abortRows) HasNextResultSet() bool {
	n, ok := r.Rows.(driver.RowsNextResultSet)
	return ok && n.HasNextResultSet()
}

func (r *abortRows) NextResultSet() error {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return errors.New("no next result set")
}

var (
	_ driver.Connector          = (*abortConnector)(nil)
	_ driver.ConnPrepareContext = (*abortConn)(nil)
	_ driver.ConnBeginTx        = (*abortConn)(nil)
	_ driver.ExecerContext      = (*abortConn)(nil)
	_ driver.QueryerContext     = (*abortConn)(nil)
	_ driver.Pinger             = (*abortConn)(nil)
	_ driver.SessionResetter    = (*abortConn)(nil)
	_ driver.Validator          = (*abortConn)(nil)
	_ driver.NamedValueChecker  = (*abortConn)(nil)
	_ driver.StmtExecContext    = (*abortStmt)(nil)
	_ driver.StmtQueryContext   = (*abortStmt)(nil)
	_ driver.RowsNextResultSet  = (*abortRows)(nil)
)
