package pusher

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
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
	// /broadcasting/auth and /pusher/user-auth sign for. At least one is
	// required.
	Apps []App
	// Signer verifies bearer tokens on the auth endpoints.
	Signer *domain.Signer
	// DB is where the HTTP API writes published events (the outbox), so a
	// 200 means the event is durable. Without it the HTTP API is not served.
	DB *domain.DB
	// PongTimeout is how long after a server ping a silent connection is
	// closed with 4201. Zero means 30s.
	PongTimeout time.Duration
	// Origins are the browser origins that may open a WebSocket
	// (SWITCHBOARD_ALLOWED_ORIGINS); others get 403. Nil allows any.
	Origins *domain.Origins
	// WriteTimeout bounds one write batch. Zero means 10s.
	WriteTimeout time.Duration
	// MaxQueue is the per-connection send queue; a connection that falls
	// this far behind is closed with 4100 (reconnect after backoff). Zero
	// means 1024 frames.
	MaxQueue int
	// Now is the clock of HTTP API timestamp checks and cache expiry; nil
	// means time.Now.
	Now func() time.Time
	// SubscriptionCountThrottle is the window within which
	// subscription_count updates of channels with more than 100
	// subscribers are coalesced into one. Zero means 5s (Pusher's).
	SubscriptionCountThrottle time.Duration
	// Webhooks receives the apps' webhook events; nil turns them off.
	Webhooks WebhookSink
	// Leads reports whether this node decides the cluster-wide webhook
	// events (channel_occupied, channel_vacated, subscription_count) from
	// its view of every node's counts: the node that relays, so one
	// decides and a cluster sends each once. Nil means always (one node).
	Leads func() bool
}

// Adapter serves Pusher clients on a gateway node.
type Adapter struct {
	node     *gateway.Node
	cfg      Config
	apps     map[string]*App // by key
	byID     map[string]*App
	def      *App
	log      *slog.Logger
	upgrader websocket.Upgrader
	cache    *lastEvents

	conns *gateway.Registry[*conn] // by socket id, indexed by signed-in user key

	webhookHolds gateway.Holds // channel_vacated and member_removed waiting (webhooks.go)

	chMu  sync.Mutex
	chans map[string]map[string]*chanStat // app id → Pusher channel → local subscriptions
}

// chanStat is the local state of one Pusher channel name.
type chanStat struct {
	subs      int
	lastCount time.Time // last subscription_count broadcast (throttling)
	// countDue is set while a throttled subscription_count is scheduled for
	// the end of the window (it sends the count of that moment).
	countDue bool
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SubscriptionCountThrottle == 0 {
		cfg.SubscriptionCountThrottle = 5 * time.Second
	}
	a := &Adapter{
		node: node, cfg: cfg, log: node.Log.With("proto", "pusher"),
		apps: map[string]*App{}, byID: map[string]*App{}, conns: gateway.NewRegistry[*conn](),
		chans: map[string]map[string]*chanStat{},
		cache: newLastEvents(cfg.Now),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  512,
			WriteBufferSize: 512,
			WriteBufferPool: &sync.Pool{},
			// Channel access is guarded by signed auth; the origin check
			// keeps pages of other sites from opening sockets at all.
			CheckOrigin: cfg.Origins.CheckOrigin,
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
		if _, dup := a.byID[app.ID]; dup {
			errs = append(errs, fmt.Errorf("pusher: duplicate app id %q", app.ID))
		}
		a.apps[app.Key] = &app
		a.byID[app.ID] = &app
		if a.def == nil {
			app.canonical = true
			a.def = &app
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	node.OnRemotePresence(a.remotePresence)
	node.Occupancy.OnChange(a.occupancyChanged)
	node.OnMemberLeft(a.memberLeftHook)
	node.OnRevoke(a.revoke)
	node.AddDisconnector(a)
	node.Intercept(a.intercept)
	if node.History != nil {
		node.History.Provide(a.cacheHistory)
	}
	return a, nil
}

// cacheHistory keeps the last event of every cache channel in the node's
// durable History for its app's cache TTL, so cache channels answer the
// same after a restart (see lastEvents.replayAndSubscribe).
func (a *Adapter) cacheHistory(hub string) gateway.HistoryOptions {
	appID, name, ok := splitHub(hub)
	if !ok || !classify(name).cache {
		return gateway.HistoryOptions{}
	}
	app := a.byID[appID]
	if app == nil {
		return gateway.HistoryOptions{}
	}
	return gateway.HistoryOptions{Size: 1, TTL: app.CacheTTL}
}

// storedCacheEvent is the last event of a cache channel in the durable
// History and when it expires, or nil.
func (a *Adapter) storedCacheEvent(hub string) (*gateway.Message, time.Time) {
	if a.node.History == nil {
		return nil, time.Time{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, expires, err := a.node.History.Last(ctx, hub)
	if err != nil {
		a.log.Warn("cache channel: stored event unreadable", "channel", hub, "err", err)
		return nil, time.Time{}
	}
	return m, expires
}

// DefaultApp is the app /broadcasting/auth signs for.
func (a *Adapter) DefaultApp() *App { return a.def }

// Routes registers the WebSocket, auth and HTTP API endpoints on e.
func (a *Adapter) Routes(e *echo.Echo) {
	e.GET("/app/:key", a.serveWS)
	auth := domain.Authn(a.cfg.Signer, true)
	// Channel authorization asks the Authorizer per channel, so a PubSub
	// room token may use it for its room; user sign-in may not.
	e.POST("/broadcasting/auth", a.channelAuth, domain.AuthnChannels(a.cfg.Signer))
	e.GET("/broadcasting/auth", a.channelAuth, domain.AuthnChannels(a.cfg.Signer))
	e.POST("/pusher/user-auth", a.userAuth, auth)
	e.POST("/broadcasting/user-auth", a.userAuth, auth)
	e.GET("/broadcasting/user-auth", a.userAuth, auth)
	a.apiRoutes(e)
}

func (a *Adapter) serveWS(c echo.Context) error {
	ws, err := a.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader already answered with an HTTP error
	}
	app := a.apps[c.Param("key")]
	cn := newConn(a, app, ws)
	if app == nil {
		cn.closeWith(CodeAppNotFound, "App key "+truncate(c.Param("key"), 64)+" does not exist.")
		cn.readUntilClosed()
		return nil
	}
	if !app.enabledOn() {
		cn.closeWith(CodeAppDisabled, "The app is not enabled.")
		cn.readUntilClosed()
		return nil
	}
	if !cn.acquireAppSlot() {
		cn.closeWith(CodeOverQuota, "Application is over connection quota: at most "+itoa(app.connLimit())+" connections")
		cn.readUntilClosed()
		return nil
	}
	if !a.conns.Add(cn.id, cn) {
		cn.releaseAppSlot()
		cn.closeWith(CodeGenericReconnect, "Server is shutting down")
		cn.readUntilClosed()
		return nil
	}
	// The connection uses nothing of the request after the upgrade.
	a.conns.Run(cn.id, cn.run)
	return nil
}

// Shutdown closes every connection with 4200 so clients reconnect (to
// another node, or to this one when it is back), and waits for the close
// frames to be written or ctx to end.
func (a *Adapter) Shutdown(ctx context.Context) {
	a.conns.Shutdown(ctx, func(c *conn) <-chan struct{} { return c.closeWith(CodeGenericReconnect, "Server is restarting") })
}

// ConnCount is the number of open connections.
func (a *Adapter) ConnCount() int { return a.conns.Len() }

func (a *Adapter) connByID(socketID string) *conn {
	c, _ := a.conns.Get(socketID)
	return c
}

// userKey names a user in the node's shared per-user connection counter.
// The default app's users are Switchboard's own (JWT sub), shared with the
// other protocols; other apps' user ids live in their own namespace.
func (a *Adapter) userKey(app *App, user string) string {
	if app == a.def {
		return user
	}
	return "pusher:" + app.ID + ":" + user
}

// revoke drops userID's subscriptions to a canonical channel at once.
func (a *Adapter) revoke(userID, channel string) {
	// A connection may hold several channels authorized for different
	// members, so the member of each channel decides, not the sign-in.
	for _, c := range a.conns.All() {
		if c.userFor(channel) == userID {
			c.revoke(channel)
		}
	}
}

// track counts this node's subscriptions per Pusher channel name (the HTTP
// API's channel lists and subscription counts) and returns the new count.
func (a *Adapter) track(app *App, name string, delta int) int {
	n := a.node.Occupancy.Add(occupancyKey(app, name), delta)
	a.chMu.Lock()
	defer a.chMu.Unlock()
	m := a.chans[app.ID]
	if m == nil {
		m = map[string]*chanStat{}
		a.chans[app.ID] = m
	}
	st := m[name]
	if st == nil {
		st = &chanStat{}
		m[name] = st
	}
	st.subs += delta
	if st.subs <= 0 {
		delete(m, name)
	}
	return n
}

// occupancyKey is the key of app's channel name in gateway.Occupancy.
func occupancyKey(app *App, name string) string { return "pusher/" + app.ID + "/" + name }

// subscriptions returns the subscription count of app's channel name on
// every node of the cluster.
func (a *Adapter) subscriptions(app *App, name string) int {
	return a.node.Occupancy.Count(occupancyKey(app, name))
}

// occupied lists app's occupied channel names with their counts, on every
// node of the cluster.
func (a *Adapter) occupied(app *App) map[string]int {
	prefix := occupancyKey(app, "")
	out := map[string]int{}
	for k, n := range a.node.Occupancy.Occupied(prefix) {
		out[strings.TrimPrefix(k, prefix)] = n
	}
	return out
}

// occupancyChanged sees every change of a Pusher channel's subscription
// count in the cluster (keys made by occupancyKey): another node's change
// tells this node's subscribers the new count; the webhooks (webhooks.go)
// hear every change.
func (a *Adapter) occupancyChanged(c gateway.OccupancyChange) {
	id, name, ok := strings.Cut(strings.TrimPrefix(c.Channel, "pusher/"), "/")
	app := a.byID[id]
	if !ok || app == nil || !strings.HasPrefix(c.Channel, "pusher/") {
		return
	}
	if ci := classify(name); c.Remote && !ci.presence && !ci.user {
		a.subscriptionCount(app, name, hubChannel(app, name))
	}
	a.occupancyHooks(app, name, c)
}

// subscriptionCountBusy is the subscriber count above which
// subscription_count broadcasts are throttled to one per throttle window
// (Config.SubscriptionCountThrottle, 5 s), as Pusher does.
const subscriptionCountBusy = 100

// subscriptionCount tells a channel's subscribers how many there are, for
// apps that enable it. On a busy channel (more than subscriptionCountBusy
// subscribers) changes within the throttle window of the last broadcast are
// coalesced, never dropped: one broadcast is scheduled for the window's end
// and sends the count of that moment, so every subscriber sees the final
// count within the window.
func (a *Adapter) subscriptionCount(app *App, name, hub string) {
	if !app.SubscriptionCount {
		return
	}
	// The count is read and sent under chMu, so concurrent changes reach
	// every subscriber in order: a stale count never overtakes a newer one.
	a.chMu.Lock()
	defer a.chMu.Unlock()
	n := a.subscriptions(app, name)
	st := a.chans[app.ID][name]
	if st == nil && n > subscriptionCountBusy {
		// Only other nodes' subscribers: throttle by an entry of its own.
		if a.chans[app.ID] == nil {
			a.chans[app.ID] = map[string]*chanStat{}
		}
		st = &chanStat{}
		a.chans[app.ID][name] = st
	}
	if st != nil {
		if st.countDue {
			// A broadcast is scheduled already; it will carry this change.
			return
		}
		now := a.cfg.Now()
		if wait := a.cfg.SubscriptionCountThrottle - now.Sub(st.lastCount); n > subscriptionCountBusy && wait > 0 {
			st.countDue = true
			time.AfterFunc(wait, func() { a.flushSubscriptionCount(app, name, hub, st) })
			return
		}
		st.lastCount = now
	}
	a.sendSubscriptionCount(name, hub, n)
}

// flushSubscriptionCount is the coalesced broadcast scheduled by
// subscriptionCount at the end of a throttle window.
func (a *Adapter) flushSubscriptionCount(app *App, name, hub string, st *chanStat) {
	a.chMu.Lock()
	defer a.chMu.Unlock()
	st.countDue = false
	st.lastCount = a.cfg.Now()
	if st.subs <= 0 && a.chans[app.ID][name] == st {
		// An entry of remote subscribers only: do not keep it forever.
		delete(a.chans[app.ID], name)
	}
	a.sendSubscriptionCount(name, hub, a.subscriptions(app, name))
}

// sendSubscriptionCount enqueues the count to this node's subscribers of
// name (enqueueing never blocks); the caller holds chMu.
func (a *Adapter) sendSubscriptionCount(name, hub string, n int) {
	if n == 0 {
		return
	}
	a.toPusherSubs(hub, name, nil, encode(outFrame{Event: evSubscriptionCount, Channel: name,
		Data: jsonString(map[string]int{"subscription_count": n})}))
}

// intercept sees every message before fan-out: it fills cache channels and
// runs adapter instructions that travelled through the outbox (terminate).
func (a *Adapter) intercept(m *gateway.Message) {
	if m.Tags != nil && m.Tags[tagControl] != "" {
		if m.Tags[tagControl] == controlTerminate {
			a.terminateLocal(m.Tags[tagApp], m.Tags[tagUser])
		}
		return
	}
	appID, name, ok := splitHub(m.Channel)
	if !ok || m.From != nil {
		return
	}
	ci := classify(name)
	if !ci.cache && !ci.user {
		return
	}
	app := a.byID[appID]
	if app == nil {
		return
	}
	if ci.user {
		a.toSignedIn(app, name, m)
		return
	}
	a.cache.store(m, app.CacheTTL)
}

// toSignedIn delivers an event on #server-to-user-{id} (sendToUser) to
// every connection of this node signed in as that user, whether or not it
// has subscribed to the channel yet: pusher-js subscribes only after
// signin_success, and an event sent right after would otherwise be lost
// (Pusher and soketi deliver to signed-in sockets). The subscriptions
// themselves skip these events (subscription.skip), so a subscribed socket
// gets each one once.
func (a *Adapter) toSignedIn(app *App, name string, m *gateway.Message) {
	user := strings.TrimPrefix(name, userChannelPrefix)
	key := "pusher:" + name
	for _, c := range a.conns.ByUser(a.userKey(app, user)) {
		if c.id == m.ExceptConn {
			continue
		}
		c.mu.Lock()
		mine := c.app == app && c.signedIn == user && !c.closed
		c.mu.Unlock()
		if mine {
			c.w.Deliver(m, m.Frame(key, func(m *gateway.Message) []byte { return eventFrame(name, m) }))
		}
	}
}

func newSocketID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d.%d", binary.BigEndian.Uint32(b[:4])%1_000_000_000+1, binary.BigEndian.Uint32(b[4:])%1_000_000_000+1)
}
