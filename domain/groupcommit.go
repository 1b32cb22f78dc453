package domain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// groupCommit runs the PostgreSQL writes that are one statement each (see
// Tx.commit) several at a time: what concurrent requests hand over while a
// group is in flight goes out together, pipelined on one connection and
// committed as one implicit transaction (one Sync). PostgreSQL then wakes
// one backend, writes one commit record and flushes the WAL once for the
// whole group, and the relay decodes one transaction instead of many; on
// this project's 2-core VM a round trip's wake-ups, not the inserts, were
// most of the database's CPU per write (BENCHMARKS.md, session 13).
//
// A lone request goes out at once, as a group of one: nothing waits for a
// group to fill. A group that PostgreSQL refuses (one constraint violation
// rolls all of it back) is run again one statement at a time, so each
// request gets its own answer and a bad write never fails a good one.
type groupCommit struct {
	reqs    chan *groupReq
	cfg     *pgx.ConnConfig
	timeout time.Duration
	stop    chan struct{} // closed by close: committers finish their group and leave
	gone    chan struct{} // closed once every committer has left
	wg      sync.WaitGroup
	stopped sync.Once
	// gate lets a test hold the committers between taking a group's first
	// request and filling the group, so that a known set of requests
	// queues up (export_test.go); never held otherwise.
	gate sync.RWMutex
}

// groupReq is one request's statement and where its answer goes.
type groupReq struct {
	ctx  context.Context
	s    statement
	done chan error // buffered: the committer never waits for the caller
}

// groupConns is how many groups may be in flight at once: while one waits
// for PostgreSQL the next one fills. maxGroup bounds a group (and so the
// rows PostgreSQL takes in one transaction). idleCheck: a connection unused
// for longer is pinged before it carries a group, so one the server or the
// network dropped while idle costs a reconnect, not the group's requests
// (database/sql's pool retries such a connection the same way).
const (
	groupConns = 2
	maxGroup   = 64
	idleCheck  = 10 * time.Second
)

// LibpqOnly are settings of a lib/pq DSN (poolDSN adds the first) that pgx
// would pass to the server as run-time parameters, which it refuses: the
// committers and the relay's replication connection drop them.
var LibpqOnly = []string{"binary_parameters", "disable_prepared_binary_result"}

// GroupCommitName is the application_name of the committers' connections
// to schema's database (unless the DSN names one): operators find them in
// pg_stat_activity by it.
func GroupCommitName(schema string) string { return "switchboard commit " + schema }

func newGroupCommit(dsn, schema string, localWake bool, timeout time.Duration) (*groupCommit, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("group commit: %w", err)
	}
	for _, k := range LibpqOnly {
		delete(cfg.RuntimeParams, k)
	}
	if localWake {
		cfg.RuntimeParams[localWakeSetting] = "on"
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = GroupCommitName(schema)
	}
	cfg.ConnectTimeout = timeout
	// A dead peer (a partition while idle) is noticed within seconds, as on
	// the pool's connections (see abortConnector).
	d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}}
	cfg.DialFunc = d.DialContext
	g := &groupCommit{reqs: make(chan *groupReq, maxGroup*groupConns), cfg: cfg, timeout: timeout,
		stop: make(chan struct{}), gone: make(chan struct{})}
	for range groupConns {
		g.wg.Add(1)
		go g.run()
	}
	go func() {
		g.wg.Wait()
		close(g.gone)
	}()
	return g, nil
}

// exec commits s on its own (as an autocommitted statement would be) and
// returns PostgreSQL's answer, or ctx's error if ctx ends first; the
// statement may then still commit, as it may when a plain round trip is
// cut short.
func (g *groupCommit) exec(ctx context.Context, s statement) error {
	r := &groupReq{ctx: ctx, s: s, done: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errGroupClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("group commit: %w", ctx.Err())
	case <-g.gone:
		// Every committer has left; one may have answered on its way out.
		select {
		case err := <-r.done:
			return err
		default:
			return errGroupClosed
		}
	}
}

// errGroupClosed says "database is closed", which IsUnavailable knows.
var errGroupClosed = errors.New("group commit: database is closed")

// close stops the committers once their groups in flight are answered.
func (g *groupCommit) close() {
	g.stopped.Do(func() { close(g.stop) })
	<-g.gone
}

func (g *groupCommit) run() {
	defer g.wg.Done()
	var (
		conn     *pgx.Conn
		lastUsed time.Time
	)
	defer func() {
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(ctx)
			cancel()
		}
	}()
	group := make([]*groupReq, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case r := <-g.reqs:
			group = append(group, r)
		case <-g.stop:
			return
		}
		g.gate.RLock()
		g.gate.RUnlock()
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-g.reqs:
				group = append(group, r)
			default:
				break fill
			}
		}
		// A caller that has given up has had its error: its statement is
		// not sent at all.
		live := group[:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.done <- err
				continue
			}
			live = append(live, r)
		}
		if len(live) == 0 {
			continue
		}
		if conn != nil && time.Since(lastUsed) > idleCheck {
			g.check(&conn)
		}
		lastUsed = time.Now()
		err := g.send(&conn, live)
		if err == nil || len(live) == 1 || IsUnavailable(err) {
			// IsUnavailable: the group may or may not have committed; running
			// it again could write it twice. Every caller hears "unavailable".
			for _, r := range live {
				r.done <- err
			}
			continue
		}
		for _, r := range live {
			r.done <- g.send(&conn, []*groupReq{r})
		}
	}
}

// check closes *conn if it no longer answers a ping, so send reconnects.
func (g *groupCommit) check(conn **pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	if err := (*conn).Ping(ctx); err != nil {
		_ = (*conn).Close(ctx)
		*conn = nil
	}
}

// send runs group as one pipelined implicit transaction on *conn,
// connecting first when there is no usable connection.
func (g *groupCommit) send(conn **pgx.Conn, group []*groupReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	if *conn == nil || (*conn).IsClosed() {
		c, err := pgx.ConnectConfig(ctx, g.cfg)
		if err != nil {
			return fmt.Errorf("group commit: connect: %w", err)
		}
		*conn = c
	}
	b := &pgx.Batch{}
	for _, r := range group {
		b.Queue(r.s.query, r.s.args...)
	}
	br := (*conn).SendBatch(ctx, b)
	var first error
	for range group {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return fmt.Errorf("commit: %w", first)
	}
	return nil
}
