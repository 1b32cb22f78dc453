package pusher

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// Config configures the adapter.
type Config struct {
	// Apps are the Pusher apps served; the first is the default app that
	// /broadcasting/auth signs for. At least one is required.
	Apps []App
	// Signer verifies bearer tokens on the auth endpoint.
	Signer *domain.Signer
	// PongTimeout is how long after a server ping a silent connection is
	// closed with 4201. Zero means 30s.
	PongTimeout time.Duration
	// WriteTimeout bounds one write batch. Zero means 10s.
	WriteTimeout time.Duration
	// MaxQueue is the per-connection send queue; a connection that falls
	// this far behind is closed with 4100 (reconnect after backoff). Zero
	// means 1024 frames.
	MaxQueue int
}

// Adapter serves Pusher clients on a gateway node.
type Adapter struct {
	node     *gateway.Node
	cfg      Config
	apps     map[string]*App // by key
	byID     map[string]*App
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu    sync.RWMutex
	conns map[string]*conn // by socket id
	shut  bool
}

// New returns an adapter for node.
func New(node *gateway.Node, cfg Config) (*Adapter, error) {
	if len(cfg.Apps) == 0 {
		return nil, errors.New("pusher: at least one app is required")
	}
	if cfg.Signer == nil {
		return nil, errors.New("pusher: a token signer is required")
	}
	if cfg.PongTimeout == 0 {
		cfg.PongTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	a := &Adapter{
		node: node, cfg: cfg, log: node.Log.With("proto", "pusher"),
		apps: map[string]*App{}, byID: map[string]*App{}, conns: map[string]*conn{},
		upgrader: websocket.Upgrader{
			ReadBufferSize:  512,
			WriteBufferSize: 512,
			WriteBufferPool: &sync.Pool{},
			// Browsers on any origin may connect: channel access is guarded
			// by signed auth, not by origin.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	var errs []error
	for i := range cfg.Apps {
		app := cfg.Apps[i]
		app.setDefaults()
		if err := app.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := a.apps[app.Key]; dup {
			errs = append(errs, fmt.Errorf("pusher: duplicate app key %q", app.Key))
		}
		a.apps[app.Key] = &app
		a.byID[app.ID] = &app
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	node.OnRevoke(a.revoke)
	return a, nil
}

// DefaultApp is the app /broadcasting/auth signs for.
func (a *Adapter) DefaultApp() *App { return a.byID[a.cfg.Apps[0].ID] }

// Routes registers the WebSocket and auth endpoints on e.
func (a *Adapter) Routes(e *echo.Echo) {
	e.GET("/app/:key", a.serveWS)
	auth := domain.Authn(a.cfg.Signer, true)
	e.POST("/broadcasting/auth", a.channelAuth, auth)
	e.GET("/broadcasting/auth", a.channelAuth, auth)
}

// hubChannel maps a Pusher channel name onto the hub. Switchboard's own
// channels are private over Pusher ("private-" + canonical name) and share
// the hub channel with the other protocols; anything else is an app channel,
// scoped to its app.
func hubChannel(app *App, name string) string {
	if rest, ok := strings.CutPrefix(name, "private-"); ok && gateway.IsCanonical(rest) {
		return rest
	}
	return "pusher:" + app.ID + ":" + name
}

func (a *Adapter) serveWS(c echo.Context) error {
	ws, err := a.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader already answered with an HTTP error
	}
	app := a.apps[c.Param("key")]
	cn := newConn(a, app, ws)
	if app == nil {
		cn.closeWith(CodeAppNotFound, "App key "+c.Param("key")+" does not exist.")
		cn.readUntilClosed()
		return nil
	}
	a.mu.Lock()
	if a.shut {
		a.mu.Unlock()
		cn.closeWith(CodeGenericReconnect, "Server is shutting down")
		cn.readUntilClosed()
		return nil
	}
	a.conns[cn.id] = cn
	a.mu.Unlock()
	// Read on a goroutine of our own and return: while the handler runs,
	// net/http keeps its per-request 4 KB bufio reader and writers alive
	// (about 10 KB per idle connection, see BENCHMARKS.md). The connection
	// uses nothing of the request after the upgrade.
	go func() {
		defer func() {
			a.mu.Lock()
			delete(a.conns, cn.id)
			a.mu.Unlock()
		}()
		cn.run()
	}()
	return nil
}

// Shutdown closes every connection with 4200 so clients reconnect (to
// another node, or to this one when it is back), and waits for the close
// frames to be written or ctx to end.
func (a *Adapter) Shutdown(ctx context.Context) {
	a.mu.Lock()
	a.shut = true
	conns := make([]*conn, 0, len(a.conns))
	for _, c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, c := range conns {
		select {
		case <-c.closeWith(CodeGenericReconnect, "Server is restarting"):
		case <-ctx.Done():
			return
		}
	}
}

// ConnCount is the number of open connections.
func (a *Adapter) ConnCount() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.conns)
}

func (a *Adapter) connByID(socketID string) *conn {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.conns[socketID]
}

// revoke drops userID's subscriptions to a canonical channel at once.
func (a *Adapter) revoke(userID, channel string) {
	a.mu.RLock()
	var targets []*conn
	for _, c := range a.conns {
		if c.userFor(channel) == userID {
			targets = append(targets, c)
		}
	}
	a.mu.RUnlock()
	for _, c := range targets {
		c.revoke(channel)
	}
}

func newSocketID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d.%d", binary.BigEndian.Uint32(b[:4])%1_000_000_000+1, binary.BigEndian.Uint32(b[4:])%1_000_000_000+1)
}
