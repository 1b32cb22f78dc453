package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"switchboard/domain"
)

// ErrClaimed is returned by Claim when another process already relays the
// database.
var ErrClaimed = errors.New("another switchboard node already serves this database; " +
	"several nodes on one database need cluster mode (SWITCHBOARD_NATS_URL, not available in this version): " +
	"stop the other node, or give this one its own database (DATABASE_URL) or data directory (SWITCHBOARD_DATA_DIR)")

// Claim makes this process the only relay of db until release is called
// (or the process exits): a PostgreSQL session advisory lock per schema, a
// lock file beside the SQLite file.
//
// Why refuse a second node instead of letting it read the outbox too: each
// node fans out to its own connections only, so two relays splitting the
// rows would each deliver half the events; two relays each reading
// everything would number the durable history twice. Cluster mode will
// share one relay's stream between nodes.
func Claim(ctx context.Context, db *domain.DB) (release func(), err error) {
	if db.Dialect == domain.Postgres {
		return claimPostgres(ctx, db)
	}
	return claimFile(db.Path + ".lock")
}

func claimPostgres(ctx context.Context, db *domain.DB) (func(), error) {
	conn, key, err := claimConn(ctx, db)
	if err != nil {
		return nil, err
	}
	return func() { unlock(conn, key) }, nil
}

// claimConn takes the claim's advisory lock on a connection of its own,
// kept out of the pool while the lock lives (as long as this session).
func claimConn(ctx context.Context, db *domain.DB) (*sql.Conn, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("claim relay: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("switchboard.relay:" + db.Schema))
	key := int64(h.Sum64())
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("claim relay: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, 0, fmt.Errorf("%w (PostgreSQL schema %q)", ErrClaimed, db.Schema)
	}
	return conn, key, nil
}

func unlock(conn *sql.Conn, key int64) {
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = conn.ExecContext(rctx, `SELECT pg_advisory_unlock($1)`, key)
	conn.Close()
}
