package domain

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
)

// DefaultDBTimeout bounds a request's database work and a PostgreSQL
// connect (see OpenConfig.Timeout).
const DefaultDBTimeout = 5 * time.Second

// ErrDatabaseUnavailable is the client-facing error of a request that could
// not reach the database in time. The write may or may not have committed:
// clients retry with the same Idempotency-Key.
var ErrDatabaseUnavailable = &Error{Status: 503, Code: "database_unavailable",
	Message: "the database did not answer in time; a write may or may not have been applied: retry with the same Idempotency-Key"}

// IsUnavailable reports whether err means the database could not be reached
// or did not answer in time (as opposed to refusing the statement).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// The pool's errors come from lib/pq, the committers' from pgx.
	var c string
	var pe *pq.Error
	var xe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		c = string(pe.Code)
	case errors.As(err, &xe):
		c = xe.Code
	}
	if c != "" {
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now (starting up).
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03"
	}
	msg := err.Error()
	for _, s := range []string{"bad connection", "connection refused", "connection reset", "broken pipe",
		"i/o timeout", "database is closed", "the database system is starting up", "the database system is shutting down"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
