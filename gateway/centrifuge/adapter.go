// Package centrifuge speaks Centrifugo's client protocol v2 (JSON over
// WebSocket) to unmodified centrifuge-js 5.x clients on top of the gateway
// hub, plus Centrifugo's server API (publish, broadcast, subscribe,
// unsubscribe, disconnect, refresh, presence, presence_stats, history,
// history_remove, channels, info, batch) and the seed's connection-token
// endpoint.
package centrifuge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// Config configures the adapter. Zero values mean the documented defaults.
type Config struct {
	// Signer verifies bearer, connection and subscription tokens and signs
	// connection tokens. Required.
	Signer *domain.Signer
	// DB is the store whose outbox carries server-API and client
	// publications, so they are durable before the reply and delivered in
	// commit order like domain events. Required.
	DB *domain.DB
	// Channels are the namespaces and the options of canonical channels.
	// A zero value (no namespaces) means DefaultChannels().
	Channels Channels
	// TokenTTL is the lifetime of tokens from /api/v1/realtime/token.
	// Zero means 1h.
	TokenTTL time.Duration
	// APIKey guards /api/publish and the other server API methods. Empty
	// disables the server API (every call is 401).
	APIKey string
	// PingInterval is how often the server sends `{}`; the client must
	// answer within PongTimeout or be closed with 3012. Zero means 25s
	// and 8s (Centrifugo's defaults).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// StaleDelay closes a socket that sent no connect with 3502. Zero
	// means 10s.
	StaleDelay time.Duration
	// ExpiredCloseDelay is how long an expired connection may stay without
	// refresh before it is closed with 3005. Zero means 25s.
	ExpiredCloseDelay time.Duration
	// WriteTimeout bounds one write batch. Zero means 10s.
	WriteTimeout time.Duration
	// MaxQueue is the per-connection send queue in frames; a connection
	// that falls this far behind is closed with 3008 slow (reconnect).
	// Zero means 1024.
	MaxQueue int
	// MaxSubscriptions per connection; over it subscribe gets error 106.
	// Zero means 100 (the seed's limit).
	MaxSubscriptions int
	// MaxFrameSize is the largest frame a client may send; a larger one
	// closes the connection with 1009. Zero means 64 KB.
	MaxFrameSize int
	// Version is reported in connect results.
	Version string
	// Origins are the browser origins that may open a WebSocket
	// (SWITCHBOARD_ALLOWED_ORIGINS); others get 403. Nil allows any.
	Origins *domain.Origins
	// RoomPublishRate is how many publishes per second a PubSub room
	// participant may make (all its connections on this node together);
	// over it the publish gets error 111. Zero means 10.
	RoomPublishRate int
	// RoomMaxPayload is the largest publication data, in bytes, a
	// participant may publish into its room (error 106 over it). Zero
	// means 10 KB.
	RoomMaxPayload int
	// PublishWait is how long a server API publish waits for the relay to
	// number its publication (the offset and epoch of its reply); past it
	// the reply has none, and the publication is delivered all the same.
	// Zero means 3s.
	PublishWait time.Duration
}

// Room publish defaults (the browser SDK's in-room PubSub.publish).
const (
	DefaultRoomPublishRate = 10
	DefaultRoomMaxPayload  = 10 * 1024
)

func (c *Config) setDefaults() {
	if len(c.Channels.Namespaces) == 0 && !c.Channels.Canonical.History().Enabled() && !c.Channels.Canonical.Presence {
		c.Channels = DefaultChannels()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TokenTTL, time.Hour)
	def(&c.PingInterval, 25*time.Second)
	def(&c.PongTimeout, 8*time.Second)
	def(&c.StaleDelay, 10*time.Second)
	def(&c.ExpiredCloseDelay, 25*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.PublishWait, 3*time.Second)
	if c.MaxQueue == 0 {
		c.MaxQueue = 1024
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 100
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.Version == "" {
		c.Version = "switchboard"
	}
	if c.RoomPublishRate == 0 {
		c.RoomPublishRate = DefaultRoomPublishRate
	}
	if c.RoomMaxPayload == 0 {
		c.RoomMaxPayload = DefaultRoomMaxPayload
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Signer == nil {
		errs = append(errs, errors.New("centrifuge: a token signer is required"))
	}
	if c.DB == nil {
		errs = append(errs, errors.New("centrifuge: a database (outbox) is required"))
	}
	if c.RoomPublishRate < 0 || c.RoomMaxPayload < 0 {
		errs = append(errs, errors.New("centrifuge: room publish rate and payload limit must be positive"))
	}
	if c.TokenTTL < 0 || c.PingInterval < 0 || c.PongTimeout < 0 || c.StaleDelay < 0 || c.ExpiredCloseDelay < 0 || c.WriteTimeout < 0 || c.PublishWait < 0 {
		errs = append(errs, errors.New("centrifuge: durations must not be negative"))
	}
	if c.PongTimeout >= c.PingInterval && c.PingInterval > 0 {
		errs = append(errs, errors.New("centrifuge: pong timeout must be shorter than the ping interval"))
	}
	if c.MaxQueue < 0 || c.MaxSubscriptions < 0 || c.MaxFrameSize < 0 {
		errs = append(errs, errors.New("centrifuge: limits must not be negative"))
	}
	if err := c.Channels.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Adapter serves centrifuge-js clients on a gateway node.
type Adapter struct {
	node     *gateway.Node
	cfg      Config
	res      *resolver
	log      *slog.Logger
	upgrader websocket.Upgrader

	conns *gateway.Registry[*conn] // by client id, indexed by user

	roomRate *gateway.RateLimiter // PubSub room publishes, per participant

	positions positions // server API publishes waiting for their offsets
	uid       string    // this node's id in the info API
	started   time.Time
}

// New returns an adapter for node. Its namespaces' history options go to
// the node's durable History (created on cfg.DB when the node has none), so
// the relay numbers and keeps every publication of a history-enabled
// channel — domain events included — before it is delivered.
func New(node *gateway.Node, cfg Config) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{
		node: node, cfg: cfg, res: newResolver(cfg.Channels), log: node.Log.With("proto", "centrifuge"),
		conns: gateway.NewRegistry[*conn](), roomRate: gateway.NewRateLimiter(cfg.RoomPublishRate),
		uid: uuid.NewString(), started: time.Now(),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  512,
			WriteBufferSize: 512,
			WriteBufferPool: &sync.Pool{},
			// centrifuge-js opens JSON connections without a subprotocol;
			// answering "centrifuge-json" when asked keeps strict clients happy.
			Subprotocols: []string{"centrifuge-json"},
			// Any origin may connect: channels are guarded by tokens.
			CheckOrigin: cfg.Origins.CheckOrigin,
		},
	}
	if node.History == nil {
		if cfg.DB == nil {
			return nil, errors.New("centrifuge: history needs a database (Config.DB) or a node History")
		}
		node.History = gateway.NewHistory(cfg.DB, gateway.HistoryConfig{})
	}
	node.History.Provide(a.res.historyOptions)
	node.OnRevoke(a.revoke)
	node.OnRemotePresence(a.remotePresence)
	node.Intercept(a.positions.intercept)
	node.AddDisconnector(a)
	a.registerCommands()
	return a, nil
}

// History is the node's stream store the adapter reads.
func (a *Adapter) History() *gateway.History { return a.node.History }

// Routes registers the WebSocket endpoint, the connection-token endpoint
// and the server API on e.
func (a *Adapter) Routes(e *echo.Echo) {
	e.GET("/connection/websocket", a.serveWS)
	e.POST("/api/v1/realtime/token", a.issueToken, domain.Authn(a.cfg.Signer, true), domain.Op("v1.realtime.token.store"))
	a.apiRoutes(e)
}

func (a *Adapter) serveWS(c echo.Context) error {
	r := c.Request()
	if wantsProtobuf(r) {
		return domain.BadRequest("only the JSON protocol is served; connect without centrifuge-protobuf")
	}
	ws, err := a.upgrader.Upgrade(c.Response(), r, nil)
	if err != nil {
		return nil // the upgrader already answered with an HTTP error
	}
	cn := newConn(a, ws)
	if !a.conns.Add(cn.id, cn) {
		cn.closeWith(DisconnectShutdown)
		cn.readUntilClosed()
		return nil
	}
	a.conns.Run(cn.id, cn.run)
	return nil
}

func wantsProtobuf(r *http.Request) bool {
	q := r.URL.Query()
	if q.Get("format") == "protobuf" || q.Get("cf_protocol") == "protobuf" {
		return true
	}
	protos := websocket.Subprotocols(r)
	for _, p := range protos {
		if p == "centrifuge-json" {
			return false
		}
	}
	for _, p := range protos {
		if strings.EqualFold(p, "centrifuge-protobuf") {
			return true
		}
	}
	return false
}

// Shutdown closes every connection with 3001 so clients reconnect, and
// waits for the close frames to be written or ctx to end.
func (a *Adapter) Shutdown(ctx context.Context) {
	a.conns.Shutdown(ctx, func(c *conn) <-chan struct{} { return c.closeWith(DisconnectShutdown) })
}

// ConnCount is the number of open connections.
func (a *Adapter) ConnCount() int { return a.conns.Len() }

// revoke drops userID's subscriptions to a hub channel at once (a member
// removed from a chat room), with an unsubscribe push.
func (a *Adapter) revoke(userID, hub string) {
	for _, c := range a.conns.ByUser(userID) {
		c.revoke(hub)
	}
}
