package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"switchboard/domain"
)

// statusEvery is how often the stream reports its position to the server
// (which releases WAL behind it) and, when the server has been silent that
// long, asks for an answer.
const statusEvery = 2 * time.Second

// replicationConn opens a replication connection to db's database, with
// the pool's connect timeout and a short TCP keepalive.
func (r *Relay) replicationConn(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(replicationDSN(r.db.DSN))
	if err != nil {
		return nil, fmt.Errorf("relay: replication connection: %w", err)
	}
	cfg.ConnectTimeout = max(r.db.Timeout(), 5*time.Second)
	// Operators (and tests) find the relay in pg_stat_replication by name.
	cfg.RuntimeParams["application_name"] = ReplicationName(r.db.Schema)
	d := &net.Dialer{KeepAlive: 15 * time.Second}
	cfg.DialFunc = d.DialContext
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("relay: replication connection: %w", err)
	}
	return conn, nil
}

// ReplicationName is the application_name of the relay's replication
// connection for schema.
func ReplicationName(schema string) string {
	name := "switchboard relay " + schema
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// replicationDSN turns the pool's DSN (URL or key=value) into one for a
// logical replication connection to the same database.
func replicationDSN(dsn string) string {
	if domain.IsPostgresURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // ParseConfig reports it
		}
		q := u.Query()
		for _, k := range domain.LibpqOnly {
			q.Del(k)
		}
		q.Set("replication", "database")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " replication=database"
}

// readStream decodes the replication stream into the outbox rows of each
// committed transaction, sent to txns in commit order, until ctx ends or
// the connection fails.
func (r *Relay) readStream(ctx context.Context, conn *pgconn.PgConn, txns chan<- []row) error {
	var (
		relations = map[uint32]*pglogrepl.RelationMessage{}
		cur       []row // rows of the transaction being received
		inTxn     bool
		confirmed pglogrepl.LSN // everything up to here is received
		lastRecv  = time.Now()
		next      time.Time // next status report
	)
	silence := 3 * max(r.db.Timeout(), 5*time.Second)
	for {
		now := time.Now()
		if !now.Before(next) {
			quiet := now.Sub(lastRecv) > statusEvery
			if quiet && now.Sub(lastRecv) > silence {
				return fmt.Errorf("relay: replication stream silent for %s", now.Sub(lastRecv).Round(time.Second))
			}
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
				WALWritePosition: confirmed, ReplyRequested: quiet,
			}); err != nil {
				return fmt.Errorf("relay: replication status: %w", err)
			}
			next = now.Add(statusEvery)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("relay: replication stream: %w", err)
		}
		lastRecv = time.Now()
		var data []byte
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			data = m.Data
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("relay: replication stream: %w", pgconn.ErrorResponseToPgError(m))
		default:
			continue
		}
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return fmt.Errorf("relay: replication stream: %w", err)
			}
			if !inTxn && ka.ServerWALEnd > confirmed {
				confirmed = ka.ServerWALEnd
			}
			if ka.ReplyRequested {
				next = time.Time{}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(data[1:])
			if err != nil {
				return fmt.Errorf("relay: replication stream: %w", err)
			}
			lm, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				return fmt.Errorf("relay: decode replication message: %w", err)
			}
			switch lm := lm.(type) {
			case *pglogrepl.RelationMessage:
				relations[lm.RelationID] = lm
			case *pglogrepl.BeginMessage:
				cur, inTxn = nil, true
			case *pglogrepl.InsertMessage:
				rel, ok := relations[lm.RelationID]
				if !ok {
					return fmt.Errorf("relay: insert into unknown relation %d", lm.RelationID)
				}
				rw, err := decodeInsert(rel, lm.Tuple)
				if err != nil {
					return err
				}
				cur = append(cur, rw)
			case *pglogrepl.CommitMessage:
				if len(cur) > 0 {
					select {
					case txns <- cur:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				cur, inTxn = nil, false
				if lm.TransactionEndLSN > confirmed {
					confirmed = lm.TransactionEndLSN
				}
			}
		}
	}
}

// decodeInsert reads an outbox row from an insert's text-format tuple.
func decodeInsert(rel *pglogrepl.RelationMessage, tuple *pglogrepl.TupleData) (row, error) {
	var rw row
	if tuple == nil {
		return rw, fmt.Errorf("relay: insert into %s without a tuple", rel.RelationName)
	}
	var haveOffset, haveXid bool
	for i, col := range rel.Columns {
		if i >= len(tuple.Columns) {
			break
		}
		c := tuple.Columns[i]
		if c.DataType != pglogrepl.TupleDataTypeText {
			continue // NULL (or, never for an insert, unchanged TOAST)
		}
		var err error
		switch col.Name {
		case "offset":
			rw.pos.offset, err = strconv.ParseInt(string(c.Data), 10, 64)
			haveOffset = err == nil
		case "transaction_id":
			rw.pos.xid, err = strconv.ParseUint(string(c.Data), 10, 64)
			haveXid = err == nil
		case "payload":
			rw.raw = c.Data
		}
		if err != nil {
			return rw, fmt.Errorf("relay: outbox column %s %q: %w", col.Name, c.Data, err)
		}
	}
	if !haveOffset || !haveXid {
		return rw, fmt.Errorf("relay: outbox insert without offset or transaction_id (columns of %s.%s changed?)", rel.Namespace, rel.RelationName)
	}
	rw.ok = json.Unmarshal(rw.raw, &rw.env) == nil
	return rw, nil
}
