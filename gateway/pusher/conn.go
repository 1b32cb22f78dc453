package pusher

import (
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/gorilla/websocket"

	"switchboard/gateway"
)

// conn is one Pusher connection. Its own goroutine reads, an Inbox runs
// the commands; the
// gateway.Writer writes (all writes, control frames included, go through it
// because frames are written straight to the socket).
type conn struct {
	a   *Adapter
	app *App
	id  string
	ws  *websocket.Conn // until run hands it to gateway.Serve
	nc  net.Conn
	w   *gateway.Writer

	lastSeen atomic.Int64 // unix nanos of the last frame received
	pinged   atomic.Bool
	// appSlot is set while the connection counts towards its app's
	// max_connections (see acquireAppSlot).
	appSlot atomic.Bool
	timer   *time.Timer

	mu   sync.Mutex
	subs gateway.Named[*subscription] // by Pusher channel name
	// authUsers: hub channel → user id, recorded by the auth endpoint.
	// userKeys are the gateway.UserConns keys this connection holds.
	// Slices, not maps: a connection has a handful of each, and a map's
	// smallest table is ≈ 250 bytes of every idle connection.
	authUsers []authGrant
	userKeys  []string
	// signedIn is the user id of a successful pusher:signin.
	signedIn string
	// sent is the per-connection client event rate limit.
	sent       *gateway.Window
	closed     bool
	authorized bool // see authTimer
	// authTimer closes the connection with 4009 when the app enables user
	// authentication and the connection has neither signed in nor
	// subscribed to a private/presence channel in time; authorized is set
	// once it has.
	authTimer *time.Timer
}

// subscription is the hub Subscriber for one channel of one connection.
type subscription struct {
	c      *conn
	name   string                // Pusher channel name
	hub    string                // hub channel
	key    unique.Handle[string] // frame cache key, interned (see gateway.Message.Frame)
	info   chanInfo
	member *gateway.Member // presence channels: who this connection is
	// replayed is the cache channel's last event sent on subscribe (see
	// lastEvents.replayAndSubscribe), and replayedOffset its stream offset;
	// the fan-out skips it, and anything older still on its way.
	replayed       *gateway.Message
	replayedOffset uint64
}

func (s *subscription) ConnID() string { return s.c.id }

// Protocol lets the debug console count an event's fan-out per protocol
// (gateway.ProtocolSubscriber).
func (s *subscription) Protocol() gateway.Protocol { return gateway.ProtoPusher }

// skip reports a message this subscription must not send: an adapter
// instruction (terminate; the interceptor handles it), an event on
// #server-to-user-{id} (the interceptor delivers those to the user's
// signed-in connections, subscribed or not: Adapter.toSignedIn) or the
// cache event it already got on subscribe.
func (s *subscription) skip(m *gateway.Message) bool {
	return s.info.user || (m.Tags != nil && m.Tags[tagControl] != "") || m == s.replayed ||
		(m.Offset != 0 && m.Offset <= s.replayedOffset)
}

func (s *subscription) Deliver(m *gateway.Message) {
	if s.skip(m) {
		return
	}
	s.c.w.Deliver(m, s.frame(m))
}

// frame is m's event frame for this channel name, encoded once for every
// subscriber that shares the name.
func (s *subscription) frame(m *gateway.Message) []byte {
	return m.Frame(s.key.Value(), func(m *gateway.Message) []byte { return eventFrame(s.name, m) })
}

// DeliverMany sends a backlog of the channel's messages in one write.
func (s *subscription) DeliverMany(ms []*gateway.Message) {
	var arr [gateway.MaxBrokerBatch][]byte
	frames := arr[:0]
	for _, m := range ms {
		if s.skip(m) {
			continue
		}
		frames = append(frames, s.frame(m))
	}
	s.c.w.DeliverMany(frames)
}

var _ gateway.MultiSubscriber = (*subscription)(nil)

// maxMessageSize is the largest frame a client may send; a larger one
// closes the connection with 1009. Client frames are commands and client
// events (at most MaxEventDataSize of data), so 128 KB is far above any
// legitimate one.
const maxMessageSize = 128 << 10

func newConn(a *Adapter, app *App, ws *websocket.Conn) *conn {
	c := &conn{a: a, app: app, id: newSocketID(), ws: ws, nc: ws.NetConn()}
	write, try := gateway.NetIO(c.nc, a.cfg.WriteTimeout)
	c.w = gateway.NewWriter(gateway.WriterConfig{
		Write:    write,
		TryWrite: try,
		MaxQueue: a.cfg.MaxQueue,
		OnSlow: func(cause gateway.CutCause, queued int) {
			a.node.ReportSlowConsumer(gateway.SlowCut{Proto: gateway.ProtoPusher, Cause: cause,
				Conn: c.id, User: c.user(), Queued: queued})
		},
		OnOverflow: func() { c.closeWith(CodeOverCapacity, "Connection too slow: send queue full") },
		OnError:    func(error) { gateway.Shutdown(c.nc) },
	})
	return c
}

func (c *conn) touch() {
	c.lastSeen.Store(time.Now().UnixNano())
	c.pinged.Store(false)
}

// run sends the handshake and starts reading; ended is called once the
// connection has ended and been cleaned up.
func (c *conn) run(ended func()) {
	c.touch()
	activity := int(c.app.ActivityTimeout / time.Second)
	if activity < 1 {
		activity = 1
	}
	c.w.Enqueue(encode(outFrame{Event: evConnectionEstablished,
		Data: jsonString(map[string]any{"socket_id": c.id, "activity_timeout": activity})}))
	c.timer = time.AfterFunc(c.app.ActivityTimeout, c.checkIdle)
	if c.app.EnableUserAuthentication {
		c.mu.Lock()
		c.authTimer = time.AfterFunc(c.app.UserAuthenticationTimeout, c.authTimeout)
		c.mu.Unlock()
	}
	// Pusher has no error code for a message too big, so no pusher:error;
	// on the WebSocket's 1009 pusher-js reconnects after a second, as after
	// any close below 4000 but 1002-1004.
	// The read side keeps gorilla's Conn only if a goroutine reads it: the
	// poller needs the socket alone, and the Conn's read buffer is about
	// 1 KB of every idle connection.
	ws := c.ws
	c.ws = nil
	gateway.Serve(ws, c.w, gateway.ReadConfig{
		Limit: maxMessageSize, TooBig: "Message too big",
		Handle:     c.handle,
		OnActivity: c.touch,
		OnEnd: func(err error) {
			if errors.Is(err, gateway.ErrMessageTooBig) {
				c.a.log.Debug("message too big", "socket_id", c.id)
			}
			c.cleanup()
			ended()
		},
	})
}

// checkIdle pings a connection that has been silent for the activity
// timeout, and closes it with 4201 when the ping got no answer. A timer per
// connection costs no goroutine while idle.
func (c *conn) checkIdle() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	idle := time.Since(time.Unix(0, c.lastSeen.Load()))
	switch {
	case c.pinged.Load() && idle >= c.app.ActivityTimeout+c.a.cfg.PongTimeout:
		c.closeWith(CodePongTimeout, "Pong reply not received in time")
		return
	case !c.pinged.Load() && idle >= c.app.ActivityTimeout:
		c.pinged.Store(true)
		c.w.Enqueue(encode(outFrame{Event: evPing, Data: "{}"}))
		c.timer.Reset(c.a.cfg.PongTimeout)
		return
	}
	c.timer.Reset(c.app.ActivityTimeout - idle%c.app.ActivityTimeout)
}

// authTimeout closes a connection of an app with user authentication that
// did not authorize itself in time (soketi's wording). A timer per
// connection costs no goroutine while it waits.
func (c *conn) authTimeout() {
	c.mu.Lock()
	skip := c.closed || c.authorized
	c.mu.Unlock()
	if !skip {
		c.authFailed(gateway.DoorConnect, "not authorized within the user authentication timeout")
		c.closeWith(CodeUnauthorized, "Connection not authorized within timeout.")
	}
}

// markAuthorized records a successful signin or private/presence
// subscription: the user-authentication timeout no longer applies.
func (c *conn) markAuthorized() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authorized = true
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
}

// appConnsKey names the cluster-wide connection count of an app in
// gateway.Occupancy (see App.MaxConnections).
func appConnsKey(app *App) string { return "pusher-conns/" + app.ID }

// acquireAppSlot counts the connection towards its app's max_connections,
// cluster-wide; false means the app is full (nothing is held then).
func (c *conn) acquireAppSlot() bool {
	limit := c.app.connLimit()
	if limit == 0 {
		return true
	}
	if n := c.a.node.Occupancy.Add(appConnsKey(c.app), +1); n > limit {
		c.a.node.Occupancy.Add(appConnsKey(c.app), -1)
		return false
	}
	c.appSlot.Store(true)
	return true
}

// releaseAppSlot gives back the slot of acquireAppSlot, once.
func (c *conn) releaseAppSlot() {
	if c.appSlot.CompareAndSwap(true, false) {
		c.a.node.Occupancy.Add(appConnsKey(c.app), -1)
	}
}

func (c *conn) handle(raw []byte) {
	f, err := decodeFrame(raw)
	if errors.Is(err, errLongEvent) && strings.HasPrefix(f.Event, clientEventPrefix) {
		// The app's max_event_name_length decides (clientEvent).
		err = nil
	}
	if err != nil {
		c.w.Enqueue(errorFrame(CodeGenericReconnect, "Invalid message format"))
		return
	}
	switch f.Event {
	case evPing:
		c.w.Enqueue(encode(outFrame{Event: evPong, Data: "{}"}))
	case evPong:
		// touch() already recorded it
	case evSubscribe:
		var d subscribeData
		if err := decodeData(f.Data, &d); err != nil {
			c.w.Enqueue(errorFrame(CodeUnauthorized, "Invalid subscribe data"))
			return
		}
		c.subscribe(d)
	case evUnsubscribe:
		var d subscribeData
		if err := decodeData(f.Data, &d); err == nil {
			c.unsubscribe(d.Channel)
		}
	case evSignin:
		var d signinData
		if err := decodeData(f.Data, &d); err != nil {
			c.w.Enqueue(errorFrame(CodeUnauthorized, "Invalid signin data"))
			return
		}
		c.signin(d)
	default:
		if strings.HasPrefix(f.Event, clientEventPrefix) && len(f.Event) > len(clientEventPrefix) {
			c.clientEvent(f)
			return
		}
		c.w.Enqueue(errorFrame(CodeClientEvent, "Unsupported event "+truncate(f.Event, 64)))
	}
}

// decodeData accepts data as an object or as a JSON string holding one:
// clients send both.
func decodeData(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("no data")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, v)
}

// authGrant is a hub channel the auth endpoint signed for user.
type authGrant struct{ hub, user string }

// authorize records that the auth endpoint signed hub channel for user.
func (c *conn) authorize(hub, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.grantLocked(hub); i >= 0 {
		c.authUsers[i].user = user
		return
	}
	// Interned: the auth request's channel name is not kept per connection.
	c.authUsers = append(c.authUsers, authGrant{hub: gateway.Intern(hub), user: user})
}

// grantLocked is the index of hub's grant in authUsers, or -1.
func (c *conn) grantLocked(hub string) int {
	return slices.IndexFunc(c.authUsers, func(g authGrant) bool { return g.hub == hub })
}

func (c *conn) userFor(hub string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.grantLocked(hub); i >= 0 {
		return c.authUsers[i].user
	}
	return ""
}

// holdsUserKey reports whether this connection counts towards the
// gateway.UserConns key. The caller holds mu.
func (c *conn) holdsUserKey(key string) bool { return slices.Contains(c.userKeys, key) }

// acquireUser attributes this connection to user for the per-user
// connection limit. It reports false (and tells the client with 4004) when
// the user is over the limit.
func (c *conn) acquireUser(user string) bool {
	key := c.a.userKey(c.app, user)
	c.mu.Lock()
	if c.holdsUserKey(key) {
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	if !c.a.node.Users.AcquireMax(key, c.id, c.app.MaxConnectionsPerUser) {
		c.w.Enqueue(errorFrame(CodeOverQuota, "Application is over connection quota: user "+truncate(user, 128)+
			" already has "+itoa(c.app.MaxConnectionsPerUser)+" connections"))
		return false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.a.node.Users.Release(key, c.id)
		return false
	}
	if !c.holdsUserKey(key) {
		c.userKeys = append(c.userKeys, key)
	}
	c.mu.Unlock()
	return true
}

// revoke drops every subscription of this connection to hub channel and
// tells the client with a subscription error on that channel.
func (c *conn) revoke(hub string) {
	c.mu.Lock()
	var drop []*subscription
	for _, s := range c.subs.All() {
		if s.hub == hub {
			drop = append(drop, s)
		}
	}
	if i := c.grantLocked(hub); i >= 0 {
		c.authUsers = slices.Delete(c.authUsers, i, i+1)
	}
	c.mu.Unlock()
	for _, s := range drop {
		c.unsubscribe(s.name)
		c.w.Enqueue(subscriptionErrorFrame(s.name, "AuthError", "Access to "+s.name+" was revoked", 403))
	}
}

// closeWith sends pusher:error and a close frame with code, then closes.
// The read loop, still running, sees the client's answer and ends the
// connection; the socket is dropped here only for a client that does not
// answer within gateway.CloseGrace (or at once if the writer failed:
// OnError closed it).
func (c *conn) closeWith(code int, msg string) <-chan struct{} {
	c.w.Enqueue(errorFrame(code, msg))
	return gateway.DropUnanswered(c.w.CloseWith(gateway.CloseFrame(code, msg)), c.nc)
}

// readUntilClosed completes the close handshake of a connection closed
// before its read loop started (closeWith), then drops the socket.
func (c *conn) readUntilClosed() { gateway.ReadUntilClosed(c.ws, c.w) }

// Describe tells the node's registry what to count and log of the
// connection (gateway.Described).
func (c *conn) Describe() gateway.ConnDesc {
	return gateway.ConnDesc{Proto: gateway.ProtoPusher, Writer: c.w, User: c.user(), Remote: c.nc.RemoteAddr().String(), Log: c.a.log}
}

var _ gateway.Described = (*conn)(nil)

// authFailed counts and logs (at debug) a credential this connection
// presented and the adapter refused.
func (c *conn) authFailed(door gateway.Door, reason string) {
	c.a.node.ReportAuthFailure(gateway.AuthFailure{Proto: gateway.ProtoPusher, Door: door,
		Conn: c.id, User: c.user(), Remote: c.nc.RemoteAddr().String(), Reason: reason})
}

// user is who the connection belongs to, for log lines: the signed-in user,
// else the user the auth endpoint signed a channel for, else "".
func (c *conn) user() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signedIn != "" {
		return c.signedIn
	}
	for _, g := range c.authUsers {
		if g.user != "" {
			return g.user
		}
	}
	return ""
}

func (c *conn) cleanup() {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Lock()
	c.closed = true
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	names := c.subs.Names()
	c.mu.Unlock()
	// Unsubscribe one by one so presence members leave (member_removed)
	// and subscription counts drop, as for an explicit unsubscribe.
	for _, name := range names {
		c.unsubscribe(name)
	}
	c.mu.Lock()
	keys := c.userKeys
	c.userKeys = nil
	c.mu.Unlock()
	for _, k := range keys {
		c.a.node.Users.Release(k, c.id)
	}
	c.releaseAppSlot()
	// Let the last frames (our close frame, or the answer to the client's
	// close) reach the client before the socket goes.
	gateway.Hangup(c.nc, c.w, c.a.cfg.WriteTimeout)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
