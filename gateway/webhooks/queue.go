// Package webhooks delivers Pusher-format webhooks (seed 001) through a
// durable queue: every request is a row in the database before it is sent,
// retried with exponential back-off and jitter until it succeeds or grows
// older than the retry window (then it is "failed", a dead letter), in
// order per URL, and kept in an event log trimmed on a schedule.
package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"switchboard/domain"
)

// Migrations create the queue, its attempts and the event log: one schema,
// with each store's auto-increment key.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "webhooks", Version: 1,
		Postgres: strings.ReplaceAll(schema, "{{id}}", "BIGSERIAL PRIMARY KEY"),
		SQLite:   strings.ReplaceAll(schema, "{{id}}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
	}}
}

const schema = `
CREATE TABLE IF NOT EXISTS switchboard_webhook_deliveries (
    id {{id}},
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT NOT NULL,
    events INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_status INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS switchboard_webhook_deliveries_queue ON switchboard_webhook_deliveries (url, status, id);
CREATE INDEX IF NOT EXISTS switchboard_webhook_deliveries_status ON switchboard_webhook_deliveries (status, id);
CREATE TABLE IF NOT EXISTS switchboard_webhook_attempts (
    id {{id}},
    delivery_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code INTEGER NOT NULL,
    error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS switchboard_webhook_attempts_delivery ON switchboard_webhook_attempts (delivery_id, id);
CREATE TABLE IF NOT EXISTS switchboard_webhook_events (
    id {{id}},
    delivery_id BIGINT NOT NULL,
    app_id TEXT NOT NULL,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS switchboard_webhook_events_created ON switchboard_webhook_events (created_at);
`

// Delivery statuses.
const (
	StatusPending = "pending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
)

// Delivery is one webhook request: its body and headers are fixed when it
// is queued, so every attempt sends the same bytes.
type Delivery struct {
	ID         int64             `json:"id"`
	AppID      string            `json:"app_id"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
	Events     int               `json:"events"`
	Status     string            `json:"status"`
	Attempts   int               `json:"attempts"`
	NextAt     time.Time         `json:"next_attempt_at"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	LastStatus int               `json:"last_status_code"`
	LastError  string            `json:"last_error"`
	History    []Attempt         `json:"attempt_history,omitempty"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error,omitempty"`
}

// Queue is the durable store of deliveries.
type Queue struct {
	db *domain.DB
}

// NewQueue returns the queue on db (migrated with Migrations).
func NewQueue(db *domain.DB) *Queue { return &Queue{db: db} }

func ms(t time.Time) int64 { return t.UnixMilli() }

// Add queues one request and logs its events, in one transaction.
func (q *Queue) Add(ctx context.Context, appID, url string, headers map[string]string, body []byte, events []Event, now time.Time) (int64, error) {
	h, err := json.Marshal(headers)
	if err != nil {
		return 0, fmt.Errorf("webhooks: %w", err)
	}
	var id int64
	err = q.db.InTx(ctx, func(tx *domain.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO switchboard_webhook_deliveries
(app_id, url, headers, body, events, status, next_at, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) RETURNING id`,
			appID, url, string(h), string(body), len(events), StatusPending, ms(now), ms(now)).Scan(&id); err != nil {
			return err
		}
		for _, e := range events {
			payload, _ := json.Marshal(e)
			if _, err := tx.ExecContext(ctx, `INSERT INTO switchboard_webhook_events (delivery_id, app_id, name, channel, payload, created_at)
VALUES ($1,$2,$3,$4,$5,$6)`, id, appID, e.Name, e.Channel, string(payload), ms(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("webhooks: queue: %w", err)
	}
	return id, nil
}

const deliveryCols = `id, app_id, url, headers, body, events, status, attempts, next_at, created_at, updated_at, last_status, last_error`

func scanDelivery(s domain.Scanner) (Delivery, error) {
	var d Delivery
	var headers, body string
	var next, created, updated int64
	if err := s.Scan(&d.ID, &d.AppID, &d.URL, &headers, &body, &d.Events, &d.Status, &d.Attempts, &next, &created, &updated,
		&d.LastStatus, &d.LastError); err != nil {
		return d, err
	}
	_ = json.Unmarshal([]byte(headers), &d.Headers)
	d.Body = json.RawMessage(body)
	d.NextAt, d.CreatedAt, d.UpdatedAt = time.UnixMilli(next).UTC(), time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return d, nil
}

// Due returns, per URL, the oldest pending delivery when it is due: a
// delivery waiting for its retry holds back the later ones of its URL, so
// a receiver gets its events in order.
func (q *Queue) Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM switchboard_webhook_deliveries d
WHERE d.status = $1 AND d.next_at <= $2
AND d.id = (SELECT min(o.id) FROM switchboard_webhook_deliveries o WHERE o.url = d.url AND o.status = $1)
ORDER BY d.id LIMIT `+strconv.Itoa(limit), StatusPending, ms(now))
	if err != nil {
		return nil, fmt.Errorf("webhooks: due: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: due: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Record stores an attempt's outcome: sent, retried at next, or failed.
func (q *Queue) Record(ctx context.Context, id int64, a Attempt, status string, next time.Time) error {
	return q.db.InTx(ctx, func(tx *domain.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO switchboard_webhook_attempts (delivery_id, at, status_code, error) VALUES ($1,$2,$3,$4)`,
			id, ms(a.At), a.StatusCode, a.Error); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE switchboard_webhook_deliveries SET status = $1, attempts = attempts + 1, next_at = $2,
updated_at = $3, last_status = $4, last_error = $5 WHERE id = $6`, status, ms(next), ms(a.At), a.StatusCode, a.Error, id)
		return err
	})
}

// Get returns a delivery with its attempts.
func (q *Queue) Get(ctx context.Context, id int64) (Delivery, error) {
	d, err := scanDelivery(q.db.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM switchboard_webhook_deliveries WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, domain.NotFound("webhook delivery %d not found", id)
	}
	if err != nil {
		return d, fmt.Errorf("webhooks: %w", err)
	}
	rows, err := q.db.QueryContext(ctx, `SELECT at, status_code, error FROM switchboard_webhook_attempts WHERE delivery_id = $1 ORDER BY id`, id)
	if err != nil {
		return d, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	d.History = []Attempt{}
	for rows.Next() {
		var a Attempt
		var at int64
		if err := rows.Scan(&at, &a.StatusCode, &a.Error); err != nil {
			return d, fmt.Errorf("webhooks: %w", err)
		}
		a.At = time.UnixMilli(at).UTC()
		d.History = append(d.History, a)
	}
	return d, rows.Err()
}

// List returns deliveries with status ("" = all), oldest first, a page at
// a time.
func (q *Queue) List(ctx context.Context, status string, p domain.Page) (domain.List[Delivery], error) {
	var rows *sql.Rows
	var err error
	if status == "" {
		rows, err = q.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM switchboard_webhook_deliveries WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1)
	} else {
		rows, err = q.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM switchboard_webhook_deliveries WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3`, status, p.After, p.Limit+1)
	}
	if err != nil {
		return domain.List[Delivery]{}, fmt.Errorf("webhooks: list: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return domain.List[Delivery]{}, fmt.Errorf("webhooks: list: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return domain.List[Delivery]{}, fmt.Errorf("webhooks: list: %w", err)
	}
	return domain.NewList(out, p.Limit, func(d Delivery) int64 { return d.ID }), nil
}

// Retry puts a failed (or pending) delivery back to pending, due now, with
// a fresh retry window.
func (q *Queue) Retry(ctx context.Context, id int64, now time.Time) (Delivery, error) {
	d, err := q.Get(ctx, id)
	if err != nil {
		return d, err
	}
	if d.Status == StatusSent {
		return d, domain.Conflict("webhook delivery %d was sent already", id)
	}
	if _, err := q.db.ExecContext(ctx, `UPDATE switchboard_webhook_deliveries SET status = $1, next_at = $2, created_at = $2, updated_at = $2 WHERE id = $3`,
		StatusPending, ms(now), id); err != nil {
		return d, fmt.Errorf("webhooks: retry: %w", err)
	}
	return q.Get(ctx, id)
}

// trimBatch bounds one DELETE of a trim: a long one would hold SQLite's
// write lock (and PostgreSQL's WAL) for all of it, in front of deliveries
// and REST writes.
const trimBatch = 1000

// Trim deletes what is older than the cutoffs, trimBatch rows per
// statement; a zero cutoff skips that trim. It returns rows removed per
// table.
func (q *Queue) Trim(ctx context.Context, events, sent, failed time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	run := func(name, query string, args ...any) error {
		for {
			res, err := q.db.ExecContext(ctx, query, args...)
			if err != nil {
				return fmt.Errorf("webhooks: trim %s: %w", name, err)
			}
			n, _ := res.RowsAffected()
			out[name] += n
			if n < trimBatch {
				return nil
			}
		}
	}
	limit := strconv.Itoa(trimBatch)
	var errs []error
	if !events.IsZero() {
		errs = append(errs, run("events", `DELETE FROM switchboard_webhook_events WHERE id IN
(SELECT id FROM switchboard_webhook_events WHERE created_at < $1 LIMIT `+limit+`)`, ms(events)))
	}
	for _, t := range []struct {
		name, status string
		cut          time.Time
	}{{"sent", StatusSent, sent}, {"failed", StatusFailed, failed}} {
		if t.cut.IsZero() {
			continue
		}
		errs = append(errs, run(t.name+"_attempts", `DELETE FROM switchboard_webhook_attempts WHERE id IN
(SELECT a.id FROM switchboard_webhook_attempts a JOIN switchboard_webhook_deliveries d ON d.id = a.delivery_id
 WHERE d.status = $1 AND d.updated_at < $2 LIMIT `+limit+`)`, t.status, ms(t.cut)))
		errs = append(errs, run(t.name, `DELETE FROM switchboard_webhook_deliveries WHERE id IN
(SELECT id FROM switchboard_webhook_deliveries WHERE status = $1 AND updated_at < $2 LIMIT `+limit+`)`, t.status, ms(t.cut)))
	}
	return out, errors.Join(errs...)
}

func trimString(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) > n {
		return s[:n]
	}
	return s
}
