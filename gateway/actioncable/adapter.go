// Package actioncable serves unmodified @rails/actioncable clients: a
// frontend written for a Rails app points its consumer URL at Switchboard's
// /cable and keeps its channel classes, identifiers and received() handlers.
// An app backend broadcasts to them through AnyCable's HTTP broadcast
// endpoint (POST /_broadcast, broadcast.go). See README.md for the message
// flow.
package actioncable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// Config configures the adapter. Zero values mean the defaults named.
type Config struct {
	// Signer verifies the connection's JWT. Required.
	Signer *domain.Signer
	// Registry maps channel classes to streams. Nil means the builtin
	// classes (BuiltinClasses).
	Registry *Registry
	// Rooms resolves {"chat_room_uuid": ...} identifiers to room ids. Nil
	// means the node's room Membership when it also implements
	// domain.RoomResolver (the chat module's store does), looked up at
	// subscribe time so wiring order does not matter; without either, uuid
	// identifiers are rejected (ids still work).
	Rooms domain.RoomResolver
	// Path is where the WebSocket is served. Zero means "/cable", the
	// client's default mount path.
	Path string
	// TokenParam is the query parameter holding the JWT. Zero means "token".
	TokenParam string
	// CookieName is the cookie holding the JWT for browsers. Zero means
	// "Authorization".
	CookieName string
	// AllowedOrigins restricts which browser origins may connect (besides
	// this host). Empty means any origin, except that cookie identities
	// are only accepted from this host or listed origins.
	AllowedOrigins []string
	// Origins, when set, decide which browser origins may connect at all
	// (SWITCHBOARD_ALLOWED_ORIGINS, shared with the other front doors);
	// AllowedOrigins then only governs cookie identities.
	Origins *domain.Origins
	// PingInterval is Rails' heartbeat. Zero means 3s; the client thinks a
	// connection stale after 6s without any message.
	PingInterval time.Duration
	// IdleTimeout drops a connection from which nothing (not even a pong to
	// the gateway's WebSocket pings) arrived for this long: half-open TCP
	// connections are otherwise only noticed when a write finally fails.
	// Zero means 60s.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write batch. Zero means 10s.
	WriteTimeout time.Duration
	// MaxQueue is the per-connection send queue; a connection that falls
	// this far behind is disconnected with reconnect true. Zero means 1024.
	MaxQueue int
	// MaxSubscriptions is the most subscriptions per connection; more are
	// rejected. Zero means 100.
	MaxSubscriptions int
	// ClientEventRate is how many perform() client events per second one
	// connection may send; extra ones are dropped. Zero means 10.
	ClientEventRate int
	// SubscribeTimeout bounds the authorization lookups of one subscribe.
	// Zero means 5s.
	SubscribeTimeout time.Duration
	// DB is the store whose outbox carries the broadcast endpoint's
	// publications (POST /_broadcast). Nil serves no broadcast endpoint.
	DB *domain.DB
	// BroadcastKey guards the broadcast endpoint (Authorization: Bearer
	// <key>, AnyCable's header). Empty disables it: every call is 401.
	BroadcastKey string
	// MaxBroadcastData is the largest data of one broadcast, in bytes;
	// larger is 413. Zero means DefaultMaxBroadcastData (64 KB).
	MaxBroadcastData int
}

func (c *Config) setDefaults() {
	if c.Path == "" {
		c.Path = "/cable"
	}
	if c.TokenParam == "" {
		c.TokenParam = "token"
	}
	if c.CookieName == "" {
		c.CookieName = "Authorization"
	}
	if c.PingInterval == 0 {
		c.PingInterval = 3 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 100
	}
	if c.ClientEventRate == 0 {
		c.ClientEventRate = 10
	}
	if c.SubscribeTimeout == 0 {
		c.SubscribeTimeout = 5 * time.Second
	}
	if c.MaxBroadcastData == 0 {
		c.MaxBroadcastData = DefaultMaxBroadcastData
	}
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Signer == nil {
		errs = append(errs, errors.New("actioncable: a token signer is required"))
	}
	if c.PingInterval < 0 || c.IdleTimeout < 0 || c.WriteTimeout < 0 || c.SubscribeTimeout < 0 {
		errs = append(errs, errors.New("actioncable: durations must not be negative"))
	}
	if c.IdleTimeout > 0 && c.IdleTimeout < 2*c.PingInterval {
		errs = append(errs, errors.New("actioncable: idle timeout must be at least two ping intervals"))
	}
	if c.MaxSubscriptions < 0 || c.ClientEventRate < 0 || c.MaxQueue < 0 || c.MaxBroadcastData < 0 {
		errs = append(errs, errors.New("actioncable: limits must not be negative"))
	}
	return errors.Join(errs...)
}

// Adapter serves ActionCable clients on a gateway node. All its methods are
// safe for concurrent use.
type Adapter struct {
	node     *gateway.Node
	cfg      Config
	reg      *Registry
	log      *slog.Logger
	upgrader websocket.Upgrader

	conns *gateway.Registry[*conn] // by id, indexed by user (token subject)

	beatOnce sync.Once
	stopBeat chan struct{}
}

// New returns an adapter for node.
func New(node *gateway.Node, cfg Config) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		var err error
		if reg, err = NewRegistry(BuiltinClasses()...); err != nil {
			return nil, err
		}
	}
	a := &Adapter{
		node: node, cfg: cfg, reg: reg, log: node.Log.With("proto", "actioncable"),
		conns:    gateway.NewRegistry[*conn](),
		stopBeat: make(chan struct{}),
	}
	a.upgrader = websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 512,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{Subprotocol},
		CheckOrigin:     a.checkOrigin,
	}
	node.OnRevoke(a.revoke)
	node.AddDisconnector(a)
	return a, nil
}

// Routes registers the WebSocket endpoint on e and, with a Config.DB, the
// broadcast endpoint (BroadcastPath).
func (a *Adapter) Routes(e *echo.Echo) {
	e.GET(a.cfg.Path, a.serveWS)
	if a.cfg.DB != nil {
		e.POST(BroadcastPath, a.broadcast, a.broadcastKey)
	}
}

// Handler serves the WebSocket endpoint on a plain mux (tests, embedding).
func (a *Adapter) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

func (a *Adapter) serveWS(c echo.Context) error {
	if !offers(c.Request(), Subprotocol) {
		return domain.BadRequest("the WebSocket must offer the %s subprotocol", Subprotocol)
	}
	a.serveHTTP(c.Response(), c.Request())
	return nil
}

func (a *Adapter) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !offers(r, Subprotocol) {
		http.Error(w, "the WebSocket must offer the "+Subprotocol+" subprotocol", http.StatusBadRequest)
		return
	}
	ws, err := a.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered with an HTTP error
	}
	cn := newConn(a, ws)
	if a.conns.ShuttingDown() {
		cn.reject(ReasonServerRestart, true)
		return
	}
	claims, err := a.identify(r)
	if err != nil {
		cn.authFailed(gateway.DoorConnect, "connection unauthorized: "+err.Error())
		cn.reject(ReasonUnauthorized, false)
		return
	}
	cn.claims = claims
	if !a.node.Users.Acquire(claims.Subject, cn.id) {
		a.log.Info("connection over the per-user limit", "user", claims.Subject)
		cn.reject(ReasonTooManyConns, false)
		return
	}

	if !a.conns.Add(cn.id, cn) {
		a.node.Users.Release(claims.Subject, cn.id)
		cn.reject(ReasonServerRestart, true)
		return
	}
	a.conns.SetUser(cn.id, claims.Subject)
	a.beatOnce.Do(func() { go a.heartbeat() })
	// Read on a goroutine of our own and return: while the handler runs,
	// net/http keeps its per-request bufio reader and writer alive (about
	// 8 KB per idle connection). The request's context ends when the
	// handler returns, so the connection keeps only its values.
	ctx := context.WithoutCancel(r.Context())
	a.conns.Run(cn.id, func(ended func()) {
		cn.run(ctx, func() {
			a.node.Users.Release(claims.Subject, cn.id)
			ended()
		})
	})
}

func offers(r *http.Request, proto string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == proto {
			return true
		}
	}
	return false
}

// heartbeat sends Rails' ping to every connection from one goroutine: one
// frame per tick shared by all, instead of a timer per connection. Every few
// ticks it also sends a WebSocket ping, whose pong keeps IdleTimeout from
// dropping a quiet but healthy connection.
func (a *Adapter) heartbeat() {
	t := time.NewTicker(a.cfg.PingInterval)
	defer t.Stop()
	probeEvery := int(a.cfg.IdleTimeout / (3 * a.cfg.PingInterval))
	if probeEvery < 1 {
		probeEvery = 1
	}
	probe := gateway.PingFrame(nil)
	for tick := 1; ; tick++ {
		select {
		case <-a.stopBeat:
			return
		case now := <-t.C:
			ping := pingFrame(now)
			sendProbe := tick%probeEvery == 0
			for _, c := range a.snapshot() {
				c.w.Enqueue(ping)
				if sendProbe {
					c.w.Enqueue(probe)
				}
			}
		}
	}
}

func (a *Adapter) snapshot() []*conn { return a.conns.All() }

// Shutdown tells every client {"type":"disconnect","reason":"server_restart",
// "reconnect":true} so @rails/actioncable reconnects (to this node when it is
// back, or another), and waits for those frames to be written or ctx to end.
// New connections are refused the same way from now on.
func (a *Adapter) Shutdown(ctx context.Context) {
	if a.conns.Shutdown(ctx, func(c *conn) <-chan struct{} { return c.closeWith(ReasonServerRestart, true) }) {
		close(a.stopBeat)
	}
}

// ConnCount is the number of open, identified connections.
func (a *Adapter) ConnCount() int { return a.conns.Len() }

// rooms is the configured resolver, or the node's membership when it can
// resolve uuids too.
func (a *Adapter) rooms() domain.RoomResolver {
	if a.cfg.Rooms != nil {
		return a.cfg.Rooms
	}
	if r, ok := a.node.Auth.Membership.(domain.RoomResolver); ok {
		return r
	}
	return nil
}

// revoke drops userID's subscriptions to channel at once (e.g. the member
// was removed from a chat room).
func (a *Adapter) revoke(userID, channel string) {
	for _, c := range a.conns.ByUser(userID) {
		c.revoke(channel)
	}
}

func newConnID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
