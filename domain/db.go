package domain

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"    // PostgreSQL driver
	_ "modernc.org/sqlite" // embedded store, pure Go
)

// Dialect is the SQL flavour of a store. Module SQL is written once with
// $N placeholders, which both stores accept; DDL differs and lives in
// per-dialect migrations.
type Dialect int

// The two stores.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is a store plus the outbox that rides in its transactions.
type DB struct {
	*sql.DB
	Dialect Dialect
	// DSN is the connection string, kept for the PostgreSQL LISTEN connection.
	DSN string
	// Schema is the PostgreSQL schema in use (search_path), "" for SQLite.
	Schema string
	// Path is the SQLite file, "" for PostgreSQL.
	Path string
	// timeout bounds PostgreSQL connects (see OpenConfig.Timeout).
	timeout time.Duration
	// committed gets a token after every commit that wrote events, so the
	// relay in this process wakes without waiting for a poll.
	committed chan struct{}
	// group commits single-statement writes together (PostgreSQL only).
	group *groupCommit

	stmts     sync.Map // query → *sql.Stmt, see stmt
	stmtCount atomic.Int32

	projects     sync.Map // slug → Project, see ProjectBySlug
	projectCount atomic.Int32

	idBlocks sync.Map // table → *idBlock, see nextID
}

// maxStmts bounds the prepared-statement cache: queries are static strings
// in this codebase, but one built from input must not grow it forever.
const maxStmts = 512

// prepareWait bounds the wait for a connection to prepare a statement on.
const prepareWait = 100 * time.Millisecond

// stmt returns query prepared on the PostgreSQL pool, or nil when it is
// not (SQLite, whose prepare is an in-process call; a full cache; a failed
// or slow prepare): the caller then runs it unprepared, which also reports
// any error. database/sql prepares it on each connection at first use
// there and keeps it, so PostgreSQL parses and plans a transaction's
// statements once per connection instead of on every request (about 15%
// more REST writes/s on the outbox benchmark).
func (db *DB) stmt(ctx context.Context, query string) *sql.Stmt {
	if db.Dialect != Postgres {
		return nil
	}
	if v, ok := db.stmts.Load(query); ok {
		return v.(*sql.Stmt)
	}
	if db.stmtCount.Load() >= maxStmts {
		return nil
	}
	// Preparing takes a second pool connection while the caller's
	// transaction holds one; with the pool exhausted that would wait
	// forever, so give up quickly and run unprepared this time.
	pctx, cancel := context.WithTimeout(ctx, prepareWait)
	defer cancel()
	st, err := db.PrepareContext(pctx, query)
	if err != nil {
		return nil
	}
	if v, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	db.stmtCount.Add(1)
	return st
}

// Close closes the cached statements and the pool.
func (db *DB) Close() error {
	db.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	if db.group != nil {
		db.group.close()
	}
	return db.DB.Close()
}

// OpenConfig says which store to open.
type OpenConfig struct {
	// DatabaseURL selects PostgreSQL when set (postgres://...).
	DatabaseURL string
	// DataDir holds the SQLite file when DatabaseURL is empty.
	DataDir string
	// LocalWake says this process runs the relay for its own writes (serve
	// does): commits wake it in-process, so on PostgreSQL its sessions skip
	// the outbox trigger's NOTIFY. NOTIFY takes a database-wide lock while a
	// transaction commits, which serializes committing writers; the other
	// writers of the database (other processes) still NOTIFY.
	LocalWake bool
	// Timeout bounds a PostgreSQL connect; requests bound their own work by
	// their context, which also ends a read stuck on a cut network path
	// (see abortConnector). Zero means DefaultDBTimeout.
	Timeout time.Duration
}

// Open opens the configured store and checks that it answers.
func Open(ctx context.Context, cfg OpenConfig) (*DB, error) {
	if cfg.DatabaseURL != "" {
		return openPostgres(ctx, cfg.DatabaseURL, cfg.LocalWake, cfg.Timeout)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite: data dir: %w", err)
	}
	return OpenSQLite(ctx, filepath.Join(cfg.DataDir, "switchboard.db"))
}

// OpenSQLite opens (creating) the SQLite file at path. Transactions begin
// IMMEDIATE: the relay reads and acks in one transaction, and a deferred
// begin could not upgrade to a write when a writer committed in between.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// SQLite has one writer; more connections only queue on the lock.
	sdb.SetMaxOpenConns(4)
	db := &DB{DB: sdb, Dialect: SQLite, DSN: dsn, Path: path, committed: make(chan struct{}, 1)}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return db, nil
}

func openPostgres(ctx context.Context, dsn string, localWake bool, timeout time.Duration) (*DB, error) {
	if timeout <= 0 {
		timeout = DefaultDBTimeout
	}
	conn, err := newAbortConnector(poolDSN(dsn, localWake), timeout)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sdb := sql.OpenDB(conn)
	sdb.SetMaxOpenConns(48)
	sdb.SetMaxIdleConns(48)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{DB: sdb, Dialect: Postgres, DSN: dsn, timeout: timeout, committed: make(chan struct{}, 1)}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := sdb.QueryRowContext(pctx, `SELECT current_schema()`).Scan(&db.Schema); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if db.group, err = newGroupCommit(dsn, db.Schema, localWake, timeout); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return db, nil
}

// poolDSN adds the pool's session settings to a PostgreSQL DSN (URL or
// key=value form), unless the DSN sets them itself:
//   - binary_parameters=yes: lib/pq then sends a statement with its
//     arguments in one round trip instead of two (prepare, then execute);
//     about 18% more REST writes/s on the outbox benchmark.
//   - switchboard.local_wake=on (with localWake): see OpenConfig.LocalWake.
func poolDSN(dsn string, localWake bool) string {
	add := map[string]string{"binary_parameters": "yes"}
	if localWake {
		add[localWakeSetting] = "on"
	}
	if IsPostgresURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // sql.Open reports it
		}
		q := u.Query()
		for k, v := range add {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, k := range []string{"binary_parameters", localWakeSetting} {
		if v, ok := add[k]; ok && !strings.Contains(dsn, k+"=") {
			dsn += " " + k + "=" + v
		}
	}
	return dsn
}

// localWakeSetting is the session setting the outbox trigger reads.
const localWakeSetting = "switchboard.local_wake"

// IsPostgresURL reports whether s names a PostgreSQL database.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// ListenDialer opens PostgreSQL LISTEN connections with the pool's connect
// timeout and keepalive (the relay's wake-ups); nil on SQLite.
func (db *DB) ListenDialer() pq.Dialer {
	if db.Dialect != Postgres {
		return nil
	}
	return slotDialer{d: &net.Dialer{Timeout: db.timeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}}}
}

// Timeout is the database timeout the store was opened with (see
// OpenConfig.Timeout).
func (db *DB) Timeout() time.Duration {
	if db.timeout <= 0 {
		return DefaultDBTimeout
	}
	return db.timeout
}

// Committed gets a token after commits that wrote events through this
// handle (several commits may share one), so a relay in this process wakes
// at once instead of waiting for a poll.
func (db *DB) Committed() <-chan struct{} { return db.committed }

func (db *DB) signalCommitted() {
	select {
	case db.committed <- struct{}{}:
	default:
	}
}

// IsUniqueViolation reports whether err is a unique-constraint failure on
// either store.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "duplicate key value")
}

// IsNoRows reports sql.ErrNoRows anywhere in err's chain.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
