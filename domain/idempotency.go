package domain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// HeaderIdempotencyKey makes a POST safe to retry: the same key and body
// within IdempotencyTTL returns the first response and writes nothing new.
const HeaderIdempotencyKey = "Idempotency-Key"

// IdempotencyTTL is how long a key is remembered.
const IdempotencyTTL = 24 * time.Hour

var idempotencyMigrations = []Migration{{
	Module: "idempotency", Version: 1,
	Postgres: `CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status INTEGER NOT NULL DEFAULT 0,
  content_type TEXT NOT NULL DEFAULT '',
  body BYTEA,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (scope, key)
);`,
	SQLite: `CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status INTEGER NOT NULL DEFAULT 0,
  content_type TEXT NOT NULL DEFAULT '',
  body BLOB,
  created_at TIMESTAMP NOT NULL,
  PRIMARY KEY (scope, key)
);`,
}, {
	// attempt: which try of a key may commit its write (see claimKey).
	Module: "idempotency", Version: 2,
	Postgres: `ALTER TABLE idempotency_keys ADD COLUMN attempt TEXT NOT NULL DEFAULT ''`,
	SQLite:   `ALTER TABLE idempotency_keys ADD COLUMN attempt TEXT NOT NULL DEFAULT ''`,
}}

// Status values of an idempotency key besides the HTTP status of a stored
// answer.
const (
	keyReserved  = 0  // a try is under way, or died before its write committed
	keyCommitted = -1 // the write committed; its answer was not stored (lost)
)

// idemAbandon is how old a reserved key must be before a retry takes it
// over: its try died before committing (see claimKey for why a takeover
// can never write twice).
const idemAbandon = DefaultDBTimeout

// idemClaim is the key a request's writes commit under.
type idemClaim struct{ scope, key, attempt string }

type idemClaimKey struct{}

// claimKey marks the key committed inside the write's own transaction
// (Tx.commit), so a write and its key's state commit together: after a
// lost answer (a 503 that did commit), a retry finds the key committed
// and writes nothing. Only the try whose attempt id the key holds may
// commit: a retry that took over a reserved key gives it a new attempt id,
// and then the old try, should it still reach the database, fails.
func claimKey(ctx context.Context, tx *sql.Tx) error {
	c, ok := ctx.Value(idemClaimKey{}).(idemClaim)
	if !ok {
		return nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = $1
WHERE scope = $2 AND key = $3 AND attempt = $4 AND status IN ($5, $1)`, keyCommitted, c.scope, c.key, c.attempt, keyReserved)
	if err != nil {
		return fmt.Errorf("idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return &Error{Status: http.StatusConflict, Code: "idempotency_key_in_use", Message: "another request with this Idempotency-Key took it over"}
	}
	return nil
}

func newAttempt() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Idempotent is the middleware behind HeaderIdempotencyKey for POST routes.
// The key is reserved in its own transaction before the handler runs, so two
// concurrent retries cannot both write; a failed (non-2xx) attempt releases
// it so the client may retry. A key whose first attempt died mid-way stays
// reserved and answers 409 until it expires: a duplicate is worse.
func Idempotent(db *DB) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			key := req.Header.Get(HeaderIdempotencyKey)
			if key == "" || req.Method != http.MethodPost {
				return next(c)
			}
			if len(key) > 255 {
				return Invalid(HeaderIdempotencyKey, "must be at most 255 characters")
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return BadRequest("read body: %v", err)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			sum := sha256.Sum256(body)
			hash := hex.EncodeToString(sum[:])
			subject := ""
			if cl := ClaimsFrom(req.Context()); cl != nil {
				subject = cl.Subject
			}
			scope := subject + " " + req.Method + " " + req.URL.Path
			ctx := req.Context()

			_, err = db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < $3`,
				scope, key, time.Now().UTC().Add(-IdempotencyTTL))
			if err != nil {
				return err
			}
			attempt := newAttempt()
			_, err = db.ExecContext(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, created_at, attempt) VALUES ($1, $2, $3, $4, $5)`,
				scope, key, hash, time.Now().UTC(), attempt)
			if IsUniqueViolation(err) {
				var prevHash, ctype string
				var status int
				var prevBody []byte
				var created time.Time
				if err := db.QueryRowContext(ctx, `SELECT request_hash, status, content_type, body, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2`,
					scope, key).Scan(&prevHash, &status, &ctype, &prevBody, &created); err != nil {
					return err
				}
				if prevHash != hash {
					return &Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: HeaderIdempotencyKey,
						Message: "this Idempotency-Key was used with a different request body"}
				}
				switch {
				case status == keyCommitted:
					return &Error{Status: http.StatusConflict, Code: "idempotency_key_committed",
						Message: "the first request with this Idempotency-Key was committed but its answer was lost; read the resource instead of writing it again"}
				case status == keyReserved && time.Since(created) < idemAbandon:
					return &Error{Status: http.StatusConflict, Code: "idempotency_key_in_use", Message: "a request with this Idempotency-Key is in progress"}
				case status == keyReserved:
					// Its try died before committing (or will fail if it still
					// reaches the database): take the key over.
					res, err := db.ExecContext(ctx, `UPDATE idempotency_keys SET attempt = $1, created_at = $2
WHERE scope = $3 AND key = $4 AND status = $5 AND created_at = $6`, attempt, time.Now().UTC(), scope, key, keyReserved, created)
					if err != nil {
						return err
					}
					if n, _ := res.RowsAffected(); n != 1 {
						return &Error{Status: http.StatusConflict, Code: "idempotency_key_in_use", Message: "a request with this Idempotency-Key is in progress"}
					}
				default:
					c.Response().Header().Set("Idempotent-Replayed", "true")
					return c.Blob(status, ctype, prevBody)
				}
			} else if err != nil {
				return err
			}

			c.SetRequest(req.WithContext(context.WithValue(ctx, idemClaimKey{}, idemClaim{scope: scope, key: key, attempt: attempt})))
			rec := &recorder{ResponseWriter: c.Response().Writer}
			c.Response().Writer = rec
			herr := next(c)
			status := c.Response().Status
			bg := context.WithoutCancel(ctx)
			if herr != nil || status < 200 || status >= 300 {
				// Release the key so the client may retry, unless the
				// database did not answer: then the write may have
				// committed (and marked the key), and a reserved key is
				// taken over by a retry after idemAbandon. A key its write
				// marked committed is never released.
				if !IsUnavailable(herr) && !errors.Is(herr, ErrDatabaseUnavailable) {
					dctx, cancel := context.WithTimeout(bg, DefaultDBTimeout)
					_, _ = db.ExecContext(dctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND attempt = $3 AND status = $4`,
						scope, key, attempt, keyReserved)
					cancel()
				}
				return herr
			}
			uctx, cancel := context.WithTimeout(bg, DefaultDBTimeout)
			defer cancel()
			_, err = db.ExecContext(uctx, `UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 WHERE scope = $4 AND key = $5 AND attempt = $6`,
				status, c.Response().Header().Get(echo.HeaderContentType), rec.buf.Bytes(), scope, key, attempt)
			return err
		}
	}
}

type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}
