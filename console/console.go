// Package console is Switchboard's debug console, like Pusher's Debug
// Console: the page at /console (HTML, JavaScript and CSS embedded in the
// binary, no CDN, no build step) and the JSON and event-stream API it reads
// under /console/api/. Behind an admin login (an admin JWT, or a Pusher app
// secret exchanged for a short-lived console session), it shows
//
//   - the live log: every event as it is delivered (channel, event, size,
//     fan-out per protocol, x-triggered-by, the payload), client events,
//     connects, disconnects with their close code, subscriptions and auth
//     failures, read from the node's tap (gateway/tap.go) while a console
//     is open, and from the other nodes' taps in cluster mode;
//   - an overview: connections by protocol, channels and their
//     subscribers, presence members, the relay's lag and the outbox
//     backlog, the webhook queue with a retry button, every node;
//   - a form that sends a test event through the outbox.
//
// The tap costs one atomic load per event while no console is open; while
// one is, a console that cannot keep up loses lines, never delays an event.
// docs/console.md describes the page and its API. Only cmd/switchboard
// imports this package.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

// App is a Pusher app whose secret may log in to the console.
type App struct {
	ID     string
	Secret string
}

// Relay is what the console shows of the outbox relay (*outbox.Status).
type Relay interface {
	Running() bool
	Failing() string
	Lag(now time.Time) time.Duration
	Events() uint64
}

// Webhooks is the webhook queue, as the admin API reads it
// (*webhooks.Queue).
type Webhooks interface {
	List(ctx context.Context, status string, p domain.Page) (domain.List[webhooks.Delivery], error)
	Retry(ctx context.Context, id int64, now time.Time) (webhooks.Delivery, error)
}

// Config configures a Console. Node, Signer and SessionSecret are
// required; what else is nil is left out of the page.
type Config struct {
	// Node is the gateway node the console watches and describes.
	Node *gateway.Node
	// Signer verifies admin JWTs (SWITCHBOARD_JWT_SECRET).
	Signer *domain.Signer
	// SessionSecret signs the console's own session tokens. Every node of
	// a cluster must use the same one (cmd/switchboard derives it from the
	// JWT secret); they are refused everywhere but the console.
	SessionSecret string
	// SessionTTL is a session's lifetime. Zero means 1 h; it never
	// outlives the admin JWT it was exchanged for, nor Signer.MaxTTL.
	SessionTTL time.Duration
	// Apps are the Pusher apps whose secret opens a session.
	Apps []App
	// Publish writes a test event to the outbox in a transaction of its
	// own and returns after the commit. Nil: no test events (404).
	Publish func(ctx context.Context, env domain.Envelope) error
	// Relay is the relay's status; nil leaves it out.
	Relay Relay
	// Relaying reports whether this node relays the outbox (one node of a
	// cluster does). Nil means always.
	Relaying func() bool
	// Backlog counts the outbox rows not yet delivered (outbox.Backlog).
	Backlog func(ctx context.Context) (int64, error)
	// Webhooks is the webhook queue, WakeWebhooks wakes its sender after a
	// retry.
	Webhooks     Webhooks
	WakeWebhooks func()
	// DBGuard wraps the routes that use the database (test events,
	// webhooks): the server's database guard (domain.Guard). The page and
	// its stream stay up while the database is down.
	DBGuard echo.MiddlewareFunc
	// NodeID names this node in cluster mode; "" on a single node.
	NodeID string
	// Bus carries the console's cluster traffic (NATSBroker.ConsoleBus);
	// nil on a single node.
	Bus gateway.Bus
	// RingSize is how many recent lines the server keeps for a page that
	// (re)connects. Zero means 500.
	RingSize int
	// StreamBuffer is how many lines wait for one page; past that the
	// page loses lines (it is told how many). Zero means 1024.
	StreamBuffer int
	// Logger receives the console's own problems. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = time.Hour
	}
	if c.RingSize == 0 {
		c.RingSize = 500
	}
	if c.StreamBuffer == 0 {
		c.StreamBuffer = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Relaying == nil {
		c.Relaying = func() bool { return true }
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Node == nil {
		errs = append(errs, errors.New("console: Node is required"))
	}
	if c.Signer == nil {
		errs = append(errs, errors.New("console: Signer is required"))
	}
	if c.SessionSecret == "" {
		errs = append(errs, errors.New("console: SessionSecret is required"))
	}
	if c.SessionTTL < 0 || c.RingSize < 0 || c.StreamBuffer < 0 {
		errs = append(errs, errors.New("console: SessionTTL, RingSize and StreamBuffer must not be negative"))
	}
	if c.Bus != nil && c.NodeID == "" {
		errs = append(errs, errors.New("console: a Bus needs a NodeID"))
	}
	for _, a := range c.Apps {
		if a.Secret == "" {
			errs = append(errs, errors.New("console: app "+a.ID+" has an empty secret"))
		}
	}
	return errors.Join(errs...)
}

// Console serves the debug console. Close it when the server stops: open
// streams end (an HTTP server's Shutdown waits for them otherwise).
type Console struct {
	cfg      Config
	sessions *domain.Signer
	feed     *feed
	cluster  *cluster // nil on a single node

	closing   chan struct{}
	closeOnce sync.Once
}

// New returns a console; with a Bus it joins the cluster's consoles at
// once (it sends nothing until a page is open).
func New(cfg Config) (*Console, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sessions, err := domain.NewSigner(cfg.SessionSecret, domain.WithMaxTTL(cfg.SessionTTL))
	if err != nil {
		return nil, fmt.Errorf("console: session signer: %w", err)
	}
	c := &Console{cfg: cfg, sessions: sessions, closing: make(chan struct{})}
	c.feed = newFeed(cfg.Node.Tap(), cfg.NodeID, cfg.RingSize, cfg.StreamBuffer, cfg.Now)
	if cfg.Bus != nil {
		c.cluster = newCluster(c, cfg.Bus)
		if err := c.cluster.start(); err != nil {
			return nil, fmt.Errorf("console: cluster bus: %w", err)
		}
	}
	return c, nil
}

// Close ends every open stream and leaves the cluster. Safe to call more
// than once.
func (c *Console) Close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		if c.cluster != nil {
			c.cluster.stop()
		}
		c.feed.shutdown()
	})
}
