package domain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
}}

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
			_, err = db.ExecContext(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4)`,
				scope, key, hash, time.Now().UTC())
			if IsUniqueViolation(err) {
				var prevHash, ctype string
				var status int
				var prevBody []byte
				if err := db.QueryRowContext(ctx, `SELECT request_hash, status, content_type, body FROM idempotency_keys WHERE scope = $1 AND key = $2`,
					scope, key).Scan(&prevHash, &status, &ctype, &prevBody); err != nil {
					return err
				}
				if prevHash != hash {
					return &Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: HeaderIdempotencyKey,
						Message: "this Idempotency-Key was used with a different request body"}
				}
				if status == 0 {
					return &Error{Status: http.StatusConflict, Code: "idempotency_key_in_use", Message: "a request with this Idempotency-Key is in progress"}
				}
				c.Response().Header().Set("Idempotent-Replayed", "true")
				return c.Blob(status, ctype, prevBody)
			}
			if err != nil {
				return err
			}

			rec := &recorder{ResponseWriter: c.Response().Writer}
			c.Response().Writer = rec
			herr := next(c)
			status := c.Response().Status
			if herr != nil || status < 200 || status >= 300 {
				_, _ = db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key)
				return herr
			}
			_, err = db.ExecContext(context.WithoutCancel(ctx), `UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 WHERE scope = $4 AND key = $5`,
				status, c.Response().Header().Get(echo.HeaderContentType), rec.buf.Bytes(), scope, key)
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
