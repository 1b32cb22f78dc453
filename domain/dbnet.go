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

	"github.com/lib/pq"
)

// DefaultDBTimeout bounds a request's database work; a connect or a read or
// write without progress gets half of it (see OpenConfig.Timeout).
const DefaultDBTimeout = 5 * time.Second

// stallDialer dials PostgreSQL with a connect timeout and TCP keepalive, and
// wraps each connection in a stallConn.
//
// Why: lib/pq answers a cancelled context by sending a cancel request on a
// new connection and then keeps waiting for the server's reply on the old
// one. When the network path is cut without a reset (a partition), neither
// ever arrives and the query, its request and its pool connection hang
// until the kernel gives up, minutes later. A deadline on the socket itself
// is the one thing that ends such a wait.
type stallDialer struct {
	timeout time.Duration
	// listen dials a LISTEN connection: it waits for notifications without
	// asking, so it gets keepalive and the connect timeout but no stall
	// deadline (pq.Listener pings it itself).
	listen bool
}

func (d stallDialer) dialer() *net.Dialer {
	return &net.Dialer{Timeout: d.timeout, KeepAlive: 15 * time.Second}
}

func (d stallDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d stallDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, d.timeout))
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d stallDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dialer().DialContext(ctx, network, address)
	if err != nil || d.listen {
		return c, err
	}
	return &stallConn{Conn: c, stall: d.timeout}, nil
}

var (
	_ pq.Dialer        = stallDialer{}
	_ pq.DialerContext = stallDialer{}
)

// stallConn fails a read or write that makes no progress for stall. The
// PostgreSQL protocol is request/response on a pool connection, so a read
// only waits after a write: each write arms the read deadline, and each read
// that returns data moves it on (a long result keeps streaming). An idle
// connection is never read, so its old deadline does no harm.
type stallConn struct {
	net.Conn
	stall time.Duration
}

func (c *stallConn) Write(b []byte) (int, error) {
	deadline := time.Now().Add(c.stall)
	_ = c.Conn.SetWriteDeadline(deadline)
	_ = c.Conn.SetReadDeadline(deadline)
	return c.Conn.Write(b)
}

func (c *stallConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.stall))
	}
	return n, err
}

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
	var pe *pq.Error
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now (starting up).
		c := string(pe.Code)
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
