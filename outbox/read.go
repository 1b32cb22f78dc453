package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"switchboard/domain"
)

// The relay keeps two positions in watermill-sql's offsets table (one row
// per consumer group, the format watermill's own subscriber uses):
//
//   - storedGroup: every row up to here was given to Sink.Keep, in the same
//     transaction that moved this position (history rows and position
//     commit together);
//   - deliveredGroup: every row up to here was handed to every hub.
//
// storedGroup keeps the name of the single consumer group earlier versions
// used, so an upgraded database resumes where it was.
const (
	storedGroup    = "relay"
	deliveredGroup = "relay.delivered"
)

// batchSize bounds one read, and with it one SQLite write transaction.
const batchSize = 100

// position is a place in the outbox's commit order: (transaction id,
// offset) on PostgreSQL, where rows become visible in transaction order
// (xid8, see domain/outbox.go), and the offset alone on SQLite.
type position struct {
	xid    uint64 // PostgreSQL only
	offset int64
}

// before reports whether p comes before q.
func (p position) before(q position) bool {
	return p.xid < q.xid || (p.xid == q.xid && p.offset < q.offset)
}

// row is one outbox row.
type row struct {
	pos position
	env domain.Envelope
	ok  bool // env decoded
	raw []byte
}

// readAfter returns up to batchSize rows after p in commit order. On
// PostgreSQL only rows of transactions older than every running one are
// returned, so a transaction that commits later can never land before a
// row already read (watermill-sql's xid8 rule).
func readAfter(ctx context.Context, q querier, d domain.Dialect, p position) ([]row, error) {
	var rs *sql.Rows
	var err error
	if d == domain.Postgres {
		// A row comparison is an index condition on the primary key
		// (transaction_id, offset): the scan starts at p. The equivalent
		// "(= AND >) OR >" is only a filter, and an in-order index scan
		// then walks every relayed row still in the table on each read.
		// The ORDER BY names the table's columns: an output column of the
		// same name (the text of the xid) would sort as text.
		rs, err = q.QueryContext(ctx, `SELECT e."offset", e.transaction_id::text AS xid, e.payload FROM "watermill_events" e
WHERE (e.transaction_id, e."offset") > ($1::text::xid8, $2)
AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.transaction_id ASC, e."offset" ASC LIMIT `+strconv.Itoa(batchSize),
			strconv.FormatUint(p.xid, 10), p.offset)
	} else {
		rs, err = q.QueryContext(ctx, `SELECT "offset", '0', payload FROM "watermill_events"
WHERE "offset" > $1 ORDER BY "offset" ASC LIMIT `+strconv.Itoa(batchSize), p.offset)
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	out, err := scanRows(rs)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// scanRows reads rows of ("offset", transaction id as text, payload) and
// closes rs.
func scanRows(rs *sql.Rows) ([]row, error) {
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		var xid string
		if err := rs.Scan(&r.pos.offset, &xid, &r.raw); err != nil {
			return nil, err
		}
		var err error
		if r.pos.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
			return nil, fmt.Errorf("transaction id %q: %w", xid, err)
		}
		r.ok = json.Unmarshal(r.raw, &r.env) == nil
		out = append(out, r)
	}
	return out, rs.Err()
}

// querier is what readAfter and the position helpers need of a *sql.DB or
// *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// loadPosition reads group's position; ok is false when the group has none.
func loadPosition(ctx context.Context, q querier, d domain.Dialect, group string) (position, bool, error) {
	var p position
	var xid sql.NullString
	var off sql.NullInt64
	var err error
	if d == domain.Postgres {
		err = q.QueryRowContext(ctx, `SELECT offset_acked, last_processed_transaction_id::text FROM "watermill_offsets_events" WHERE consumer_group = $1`, group).Scan(&off, &xid)
	} else {
		err = q.QueryRowContext(ctx, `SELECT offset_acked, '0' FROM "watermill_offsets_events" WHERE consumer_group = $1`, group).Scan(&off, &xid)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return position{}, false, nil
	}
	if err != nil {
		return position{}, false, fmt.Errorf("relay position %s: %w", group, err)
	}
	p.offset = off.Int64
	if xid.Valid {
		if p.xid, err = strconv.ParseUint(xid.String, 10, 64); err != nil {
			return position{}, false, fmt.Errorf("relay position %s: transaction id %q: %w", group, xid.String, err)
		}
	}
	return p, true, nil
}

// savePosition stores group's position.
func savePosition(ctx context.Context, q querier, d domain.Dialect, group string, p position) error {
	var err error
	if d == domain.Postgres {
		_, err = q.ExecContext(ctx, `INSERT INTO "watermill_offsets_events" (consumer_group, offset_acked, last_processed_transaction_id)
VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
			group, p.offset, strconv.FormatUint(p.xid, 10))
	} else {
		_, err = q.ExecContext(ctx, `INSERT INTO "watermill_offsets_events" (consumer_group, offset_acked) VALUES ($1, $2)
ON CONFLICT (consumer_group) DO UPDATE SET offset_acked = excluded.offset_acked`, group, p.offset)
	}
	if err != nil {
		return fmt.Errorf("save relay position %s: %w", group, err)
	}
	return nil
}

// pendingAfter reports whether rows after p exist that readAfter cannot
// return yet: on PostgreSQL, rows of transactions newer than one still
// running somewhere in the cluster (their order is not final until it
// ends). Always false on SQLite, where a committed row is readable at once.
func pendingAfter(ctx context.Context, q querier, d domain.Dialect, p position) (bool, error) {
	if d != domain.Postgres {
		return false, nil
	}
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM "watermill_events" e
WHERE (e.transaction_id, e."offset") > ($1::text::xid8, $2))`, strconv.FormatUint(p.xid, 10), p.offset).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("relay: pending rows: %w", err)
	}
	return ok, nil
}

// lastRow returns the position of the last outbox row (PostgreSQL).
func lastRow(ctx context.Context, q querier) (position, bool, error) {
	var xid string
	var p position
	err := q.QueryRowContext(ctx, `SELECT transaction_id::text, "offset" FROM "watermill_events"
ORDER BY transaction_id DESC, "offset" DESC LIMIT 1`).Scan(&xid, &p.offset)
	if errors.Is(err, sql.ErrNoRows) {
		return position{}, false, nil
	}
	if err != nil {
		return position{}, false, fmt.Errorf("relay: last outbox row: %w", err)
	}
	if p.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
		return position{}, false, fmt.Errorf("relay: last outbox row: transaction id %q: %w", xid, err)
	}
	return p, true, nil
}

// forgetLogical removes the marker logical decoding leaves (logical.go).
func forgetLogical(ctx context.Context, q querier) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM "watermill_offsets_events" WHERE consumer_group = $1`, logicalGroup); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}
