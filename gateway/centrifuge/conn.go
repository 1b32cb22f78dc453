package centrifuge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/gateway"
)

// conn is one centrifuge-js connection. Its own goroutine reads, an Inbox
// handles the commands in order; the gateway.Writer writes (every frame,
// control frames included, goes through it because frames are written
// straight to the socket).
type conn struct {
	a  *Adapter
	id string          // client id, reported in connect and presence
	ws *websocket.Conn // until run hands it to gateway.Serve
	nc net.Conn
	w  *gateway.Writer

	mu     sync.Mutex
	ident  *identity // nil until connect succeeded
	failed bool      // a connect failed: no more commands (Centrifugo)
	closed bool
	subs   gateway.Named[*subscription] // by client channel name
	// One timer per connection drives both the phases (stale → ping →
	// pong → ping ...) and the token's expiry: it fires at the earlier of
	// phaseAt and the expiry's close deadline (armLocked). A second timer
	// would be ≈ 110 bytes more of every idle connection.
	timer     *time.Timer
	phase     int       // what the timer fires for at phaseAt
	phaseAt   time.Time // when the phase's action is due
	pongSeen  bool
	userTaken bool // holds a node.Users slot

	stopped atomic.Bool // a command closed the connection: handle no more
}

// Timer phases of a connection.
const (
	phaseStale = iota // waiting for connect
	phasePing         // next fire sends a ping
	phasePong         // next fire checks the pong
)

func newConn(a *Adapter, ws *websocket.Conn) *conn {
	c := &conn{a: a, id: uuid.NewString(), ws: ws, nc: ws.NetConn()}
	write, try := gateway.NetIO(c.nc, a.cfg.WriteTimeout)
	c.w = gateway.NewWriter(gateway.WriterConfig{
		Write:    write,
		TryWrite: try,
		MaxQueue: a.cfg.MaxQueue,
		OnSlow: func(cause gateway.CutCause, queued int) {
			a.node.ReportSlowConsumer(gateway.SlowCut{Proto: gateway.ProtoCentrifuge, Cause: cause,
				Conn: c.id, User: c.userID(), Queued: queued})
		},
		OnOverflow: func() { c.closeWith(DisconnectSlow) },
		OnError:    func(error) { gateway.Shutdown(c.nc) },
	})
	return c
}

func (c *conn) userID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ident == nil {
		return ""
	}
	return c.ident.user
}

// Describe tells the node's registry what to count and log of the
// connection (gateway.Described).
func (c *conn) Describe() gateway.ConnDesc {
	return gateway.ConnDesc{Proto: gateway.ProtoCentrifuge, Writer: c.w, User: c.userID(), Remote: c.nc.RemoteAddr().String(), Log: c.a.log}
}

var _ gateway.Described = (*conn)(nil)

// authFailed counts and logs (at debug) a credential this connection
// presented and the adapter refused; user is who it claimed to be, if
// known.
func (c *conn) authFailed(door gateway.Door, user, reason string) {
	c.a.node.ReportAuthFailure(gateway.AuthFailure{Proto: gateway.ProtoCentrifuge, Door: door,
		Conn: c.id, User: user, Remote: c.nc.RemoteAddr().String(), Reason: reason})
}

// run starts reading frames; ended is called once the connection has
// ended and been cleaned up.
func (c *conn) run(ended func()) {
	c.mu.Lock()
	c.phase, c.phaseAt = phaseStale, time.Now().Add(c.a.cfg.StaleDelay)
	c.timer = time.AfterFunc(c.a.cfg.StaleDelay, c.onTimer)
	c.mu.Unlock()
	// centrifuge-js maps 1009 to "message size limit exceeded" and does not
	// reconnect, as with Centrifugo. The close frame is queued by the read
	// side, not through closeWith, whose timer could drop the socket while
	// the rest of the message is still being drained.
	// The read side keeps gorilla's Conn only if a goroutine reads it: the
	// poller needs the socket alone, and the Conn's read buffer is about
	// 1 KB of every idle connection.
	ws := c.ws
	c.ws = nil
	gateway.Serve(ws, c.w, gateway.ReadConfig{
		Limit: c.a.cfg.MaxFrameSize, TooBig: "message size limit exceeded",
		Handle:  c.handleFrame,
		Stopped: c.stopped.Load,
		OnEnd: func(err error) {
			if errors.Is(err, gateway.ErrMessageTooBig) {
				c.a.log.Debug("message too big", "client", c.id)
			}
			c.cleanup()
			ended()
		},
	})
}

// handleFrame decodes and runs one frame's commands (on the Inbox's
// goroutine). After a command that closes the connection nothing more is
// handled; the read loop ends when the socket closes.
func (c *conn) handleFrame(data []byte) {
	if c.stopped.Load() {
		return
	}
	cmds, err := DecodeCommands(data, c.a.cfg.MaxFrameSize)
	if err != nil {
		c.a.log.Debug("bad frame", "client", c.id, "err", err)
		c.stopped.Store(true)
		c.closeWith(DisconnectBadRequest)
		return
	}
	for _, cmd := range cmds {
		if !c.handle(cmd) {
			c.stopped.Store(true)
			return
		}
	}
}

// handle runs one command; false means the connection is being closed.
func (c *conn) handle(cmd *protocol.Command) bool {
	if isPong(cmd) {
		c.mu.Lock()
		c.pongSeen = true
		c.mu.Unlock()
		return true
	}
	if cmd.Send != nil {
		// Fire-and-forget messages need a server-side handler; Switchboard
		// has none, so they are dropped rather than answered.
		return true
	}
	if cmd.Id == 0 {
		c.closeWith(DisconnectBadRequest)
		return false
	}
	c.mu.Lock()
	connected, failed := c.ident != nil, c.failed
	c.mu.Unlock()
	if failed {
		return true
	}
	if cmd.Connect != nil {
		if connected {
			c.closeWith(DisconnectBadRequest)
			return false
		}
		return c.connect(cmd.Id, cmd.Connect)
	}
	if !connected {
		c.closeWith(DisconnectBadRequest)
		return false
	}
	switch {
	case cmd.Subscribe != nil:
		return c.subscribe(cmd.Id, cmd.Subscribe)
	case cmd.Unsubscribe != nil:
		c.unsubscribe(cmd.Unsubscribe.Channel)
		c.reply(&protocol.Reply{Id: cmd.Id, Unsubscribe: &protocol.UnsubscribeResult{}})
	case cmd.Publish != nil:
		c.publish(cmd.Id, cmd.Publish)
	case cmd.Presence != nil:
		c.presence(cmd.Id, cmd.Presence.Channel)
	case cmd.PresenceStats != nil:
		c.presenceStats(cmd.Id, cmd.PresenceStats.Channel)
	case cmd.History != nil:
		c.historyCmd(cmd.Id, cmd.History)
	case cmd.Refresh != nil:
		return c.refresh(cmd.Id, cmd.Refresh)
	case cmd.SubRefresh != nil:
		return c.subRefresh(cmd.Id, cmd.SubRefresh)
	case cmd.Ping != nil:
		// Protocol v2 keeps liveness with `{}` frames; Centrifugo answers a
		// ping command with 108 too.
		c.reply(errorReply(cmd.Id, errNotAvailable))
	case cmd.Rpc != nil:
		c.reply(errorReply(cmd.Id, errMethodNotFound))
	default:
		c.reply(errorReply(cmd.Id, errBadRequest))
	}
	return true
}

func (c *conn) reply(r *protocol.Reply) {
	b, err := encodeReply(r)
	if err != nil {
		c.a.log.Error("encode reply", "client", c.id, "err", err)
		b, _ = encodeReply(errorReply(r.Id, errInternal))
	}
	c.w.Enqueue(gateway.TextFrame(b))
}

func (c *conn) connect(id uint32, req *protocol.ConnectRequest) bool {
	if req.Token == "" {
		c.closeWith(DisconnectBadRequest)
		return false
	}
	ident, err := verifyConnToken(c.a.cfg.Signer, req.Token)
	switch {
	case errors.Is(err, domain.ErrTokenExpired):
		// 109 makes the SDK call getToken and reconnect with a fresh token.
		c.mu.Lock()
		c.failed = true
		c.mu.Unlock()
		c.reply(errorReply(id, errTokenExpired))
		return true
	case err != nil:
		c.authFailed(gateway.DoorConnect, "", "invalid connection token: "+err.Error())
		c.closeWith(DisconnectInvalidToken)
		return false
	}
	if !c.a.node.Users.Acquire(ident.user, c.id) {
		c.closeWith(DisconnectConnectionLimit)
		return false
	}
	now := time.Now()
	c.mu.Lock()
	c.ident = ident
	c.userTaken = true
	c.a.conns.SetUser(c.id, ident.user)
	c.phase, c.phaseAt = phasePing, now.Add(c.a.cfg.PingInterval)
	c.armLocked(now)
	c.mu.Unlock()
	res := &protocol.ConnectResult{
		Client: c.id, Version: c.a.cfg.Version,
		Ping: uint32(c.a.cfg.PingInterval / time.Second), Pong: true,
	}
	if ttl := ident.ttl(now); ttl > 0 {
		res.Expires, res.Ttl = true, ttl
	}
	c.reply(&protocol.Reply{Id: id, Connect: res})
	return true
}

// expiredAt is when a connection whose token expired and was not
// refreshed is closed (3005: the client reconnects, gets 109, fetches a
// token); zero for a token without expiry. The caller holds mu.
func (c *conn) expiredAt() time.Time {
	if c.ident == nil || c.ident.expires.IsZero() {
		return time.Time{}
	}
	return c.ident.expires.Add(c.a.cfg.ExpiredCloseDelay)
}

// armLocked sets the timer to the earlier of phaseAt and expiredAt. The
// caller holds mu.
func (c *conn) armLocked(now time.Time) {
	next := c.phaseAt
	if exp := c.expiredAt(); !exp.IsZero() && exp.Before(next) {
		next = exp
	}
	c.timer.Reset(max(next.Sub(now), 0))
}

func (c *conn) refresh(id uint32, req *protocol.RefreshRequest) bool {
	ident, err := verifyConnToken(c.a.cfg.Signer, req.Token)
	switch {
	case errors.Is(err, domain.ErrTokenExpired):
		c.closeWith(DisconnectExpired)
		return false
	case err != nil || ident.user != c.userID():
		c.authFailed(gateway.DoorConnect, c.userID(), "invalid refresh token")
		c.closeWith(DisconnectInvalidToken)
		return false
	}
	now := time.Now()
	c.mu.Lock()
	// Keep the grants of the new token: a refresh may narrow or widen them.
	c.ident = ident
	c.armLocked(now)
	c.mu.Unlock()
	res := &protocol.RefreshResult{Client: c.id, Version: c.a.cfg.Version}
	if ttl := ident.ttl(now); ttl > 0 {
		res.Expires, res.Ttl = true, ttl
	}
	c.reply(&protocol.Reply{Id: id, Refresh: res})
	return true
}

// onTimer drives the connection's single timer: close a socket that never
// connected, send pings, close a client that does not answer them, and
// close a connection whose token expired.
func (c *conn) onTimer() {
	now := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if exp := c.expiredAt(); !exp.IsZero() && !now.Before(exp) {
		c.mu.Unlock()
		c.closeWith(DisconnectExpired)
		return
	}
	if now.Before(c.phaseAt) {
		// Fired for an expiry that a refresh has moved since.
		c.armLocked(now)
		c.mu.Unlock()
		return
	}
	switch c.phase {
	case phaseStale:
		c.mu.Unlock()
		c.closeWith(DisconnectStale)
		return
	case phasePing:
		c.pongSeen = false
		c.phase, c.phaseAt = phasePong, now.Add(c.a.cfg.PongTimeout)
		c.armLocked(now)
		c.mu.Unlock()
		c.w.Enqueue(gateway.TextFrame(pingFrame))
		return
	case phasePong:
		if !c.pongSeen {
			c.mu.Unlock()
			c.closeWith(DisconnectNoPong)
			return
		}
		c.phase, c.phaseAt = phasePing, now.Add(c.a.cfg.PingInterval-c.a.cfg.PongTimeout)
		c.armLocked(now)
	}
	c.mu.Unlock()
}

func (c *conn) subscribe(id uint32, req *protocol.SubscribeRequest) bool {
	ch, perr := c.a.res.resolve(req.Channel)
	if perr != nil {
		c.reply(errorReply(id, perr))
		return true
	}
	c.mu.Lock()
	ident := c.ident
	c.mu.Unlock()
	var grant *subGrant
	if req.Token != "" {
		g, err := verifySubToken(c.a.cfg.Signer, req.Token, ident.user, ch.name)
		switch {
		case errors.Is(err, domain.ErrTokenExpired):
			c.reply(errorReply(id, errTokenExpired))
			return true
		case errors.Is(err, errTokenMismatch):
			c.authFailed(gateway.DoorSubscribe, ident.user, "subscription token for another user or channel: "+ch.name)
			c.closeWith(DisconnectInvalidToken)
			return false
		case err != nil:
			c.authFailed(gateway.DoorSubscribe, ident.user, "invalid subscription token for "+ch.name)
			c.reply(errorReply(id, errPermissionDenied))
			return true
		}
		grant = g
	} else if perr := c.canSubscribe(ident, ch); perr != nil {
		if perr == errPermissionDenied {
			c.authFailed(gateway.DoorSubscribe, ident.user, "permission denied: "+ch.name)
		}
		c.reply(errorReply(id, perr))
		return true
	}

	res, sub, last, perr := c.join(ch, joinRequest{recover: req.Recover, since: gateway.StreamPosition{Offset: req.Offset, Epoch: req.Epoch},
		rejectUnrecovered: req.Flag&2 != 0, grant: grant})
	if perr != nil {
		c.reply(errorReply(id, perr))
		return true
	}
	c.reply(&protocol.Reply{Id: id, Subscribe: res})
	c.joined(sub, last, ident, grant)
	return true
}

// joinRequest is what a subscription asks of join.
type joinRequest struct {
	recover           bool                   // recover from since
	since             gateway.StreamPosition // the client's last position
	rejectUnrecovered bool                   // centrifuge-js flag 2: 112 rather than a gap
	grant             *subGrant              // the subscription token, if any
}

// join subscribes the connection to ch (a subscribe command, or a
// server-side subscription) and returns the subscribe result to send, the
// subscription, still buffering what is published meanwhile, and the
// stream offset the result covers. The caller sends the result and then
// calls joined. On error nothing is left subscribed.
func (c *conn) join(ch channel, req joinRequest) (*protocol.SubscribeResult, *subscription, uint64, *protocol.Error) {
	// Interned names: every subscriber of a channel shares one copy (idle
	// memory per connection, BENCHMARKS.md "Session 10").
	ch.name, ch.hub = gateway.Intern(ch.name), gateway.Intern(ch.hub)
	s := &subscription{c: c, ch: ch, buffering: true}
	c.mu.Lock()
	if c.closed {
		// A server-side subscription racing the connection's end: cleanup
		// has taken the subscriptions it drops.
		c.mu.Unlock()
		return nil, nil, 0, errNotAvailable
	}
	if _, dup := c.subs.Get(ch.name); dup {
		c.mu.Unlock()
		return nil, nil, 0, errAlreadySubscribed
	}
	if c.subs.Len() >= c.a.cfg.MaxSubscriptions {
		c.mu.Unlock()
		return nil, nil, 0, errLimitExceeded
	}
	c.subs.Set(ch.name, s)
	c.mu.Unlock()
	c.a.node.Occupancy.Add(occupancyKey(ch), +1)

	// Join the hub before reading the stream position: everything published
	// from now on is buffered by s, everything before is in the history, so
	// nothing falls between the two (duplicates are dropped by offset).
	c.a.node.Hub.Subscribe(ch.hub, s)
	res := &protocol.SubscribeResult{}
	var last uint64
	if ch.opts.History().Enabled() {
		hctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
		defer cancel()
		res.Recoverable, res.Positioned = true, true
		if req.recover {
			res.WasRecovering = true
			pubs, top, ok, err := c.a.node.History.Recover(hctx, ch.hub, req.since)
			if err != nil {
				return nil, nil, 0, c.historyFailed(s, err)
			}
			res.Epoch = top.Epoch
			if ok {
				// Echo the position recovered from: the client advances it
				// with each recovered publication.
				res.Recovered, res.Offset = true, req.since.Offset
				for _, m := range pubs {
					res.Publications = append(res.Publications, publication(m))
				}
				last = top.Offset
				if n := len(pubs); n > 0 {
					last = pubs[n-1].Offset
				}
			} else {
				res.Offset, last = top.Offset, top.Offset
			}
		} else {
			top, err := c.a.node.History.Position(hctx, ch.hub)
			if err != nil {
				return nil, nil, 0, c.historyFailed(s, err)
			}
			res.Epoch, res.Offset, last = top.Epoch, top.Offset, top.Offset
		}
		// centrifuge-js with getState sets flag 2 (reject unrecovered): it
		// wants error 112 instead of a gap so it reloads the state itself.
		if res.WasRecovering && !res.Recovered && req.rejectUnrecovered {
			c.dropSub(s)
			return nil, nil, 0, errUnrecoverable
		}
	}
	if g := req.grant; g != nil && !g.expires.IsZero() {
		res.Expires, res.Ttl = true, (&identity{expires: g.expires}).ttl(time.Now())
		s.expireAt(g.expires, c.a.cfg.ExpiredCloseDelay)
	}
	return res, s, last, nil
}

// joined finishes join once its result is queued: the buffered
// publications above last go out, and the connection joins the channel's
// presence.
func (c *conn) joined(s *subscription, last uint64, ident *identity, grant *subGrant) {
	s.flush(last)
	ch := s.ch
	if ch.opts.Presence {
		info := ident.info
		if grant != nil && grant.info != nil {
			info = grant.info
		}
		// Under s.mu, which dropSub takes to see whether to leave: a
		// server-side subscription may race the connection's cleanup, and
		// must then either not join or be seen joined.
		s.mu.Lock()
		c.mu.Lock()
		cur, _ := c.subs.Get(ch.name)
		gone := c.closed || cur != s
		c.mu.Unlock()
		if gone {
			s.mu.Unlock()
			return
		}
		c.a.node.Presence.Join(ch.hub, c.id, gateway.Member{UserID: ident.user, Info: info})
		s.present = true
		s.mu.Unlock()
		if ch.opts.JoinLeave {
			c.a.pushJoinLeave(ch, &protocol.ClientInfo{User: ident.user, Client: c.id, ConnInfo: protocol.Raw(info)}, true)
		}
	}
}

// occupancyKey names a Centrifugo channel in the node's cluster-wide
// subscription counts (gateway.Occupancy), which the channels API reads.
func occupancyKey(ch channel) string { return occupancyPrefix + ch.name }

const occupancyPrefix = "centrifugo/"

// canSubscribe applies the channel rules: canonical channels follow the
// gateway.Authorizer (the same rules as over Pusher); namespace channels
// follow the configuration and the token's `channels` claim.
func (c *conn) canSubscribe(ident *identity, ch channel) *protocol.Error {
	if ch.canonical {
		if grantsChannel(ident.channels, ch.name) {
			return nil
		}
		err := c.a.node.Auth.CanRead(context.Background(), ident.claims(), ch.hub)
		if err == nil {
			return nil
		}
		if _, ok := domain.AsError(err); ok {
			return errPermissionDenied
		}
		c.a.log.Error("channel authorization", "channel", ch.name, "err", err)
		return errInternal
	}
	if ident.pubsub == nil && ch.allowedByConfig(ident.user, ident.channels) {
		return nil
	}
	return errPermissionDenied
}

func (c *conn) unsubscribe(name string) {
	c.mu.Lock()
	s, _ := c.subs.Get(name)
	c.mu.Unlock()
	if s != nil {
		c.dropSub(s)
	}
}

// dropSub removes s from the connection, the hub and presence.
func (c *conn) dropSub(s *subscription) {
	c.mu.Lock()
	cur, _ := c.subs.Get(s.ch.name)
	mine := cur == s
	if mine {
		c.subs.Delete(s.ch.name)
	}
	c.mu.Unlock()
	if mine {
		c.a.node.Occupancy.Add(occupancyKey(s.ch), -1)
	}
	c.a.node.Hub.Unsubscribe(s.ch.hub, s)
	s.mu.Lock()
	present := s.present
	s.present = false
	if s.expTimer != nil {
		s.expTimer.Stop()
	}
	s.mu.Unlock()
	if present {
		m, _, ok := c.a.node.Presence.Leave(s.ch.hub, c.id)
		if ok && s.ch.opts.JoinLeave {
			c.a.pushJoinLeave(s.ch, &protocol.ClientInfo{User: m.UserID, Client: c.id, ConnInfo: protocol.Raw(m.Info)}, false)
		}
	}
}

func (c *conn) subscribed(name string) *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, _ := c.subs.Get(name)
	return s
}

func (c *conn) presence(id uint32, name string) {
	ch, perr := c.a.res.resolve(name)
	switch {
	case perr != nil:
		c.reply(errorReply(id, perr))
	case !ch.opts.Presence:
		c.reply(errorReply(id, errNotAvailable))
	case c.subscribed(ch.name) == nil:
		c.reply(errorReply(id, errPermissionDenied))
	default:
		c.reply(&protocol.Reply{Id: id, Presence: &protocol.PresenceResult{Presence: presenceMap(c.a.node.Presence, ch.hub)}})
	}
}

func presenceMap(p *gateway.Presence, hub string) map[string]*protocol.ClientInfo {
	out := map[string]*protocol.ClientInfo{}
	for cid, m := range p.Clients(hub) {
		out[cid] = &protocol.ClientInfo{User: m.UserID, Client: cid, ConnInfo: protocol.Raw(m.Info)}
	}
	return out
}

func (c *conn) presenceStats(id uint32, name string) {
	ch, perr := c.a.res.resolve(name)
	switch {
	case perr != nil:
		c.reply(errorReply(id, perr))
	case !ch.opts.Presence:
		c.reply(errorReply(id, errNotAvailable))
	case c.subscribed(ch.name) == nil:
		c.reply(errorReply(id, errPermissionDenied))
	default:
		clients, users := c.a.node.Presence.Count(ch.hub)
		c.reply(&protocol.Reply{Id: id, PresenceStats: &protocol.PresenceStatsResult{NumClients: uint32(clients), NumUsers: uint32(users)}})
	}
}

func (c *conn) historyCmd(id uint32, req *protocol.HistoryRequest) {
	ch, perr := c.a.res.resolve(req.Channel)
	switch {
	case perr != nil:
		c.reply(errorReply(id, perr))
		return
	case !ch.opts.History().Enabled():
		c.reply(errorReply(id, errNotAvailable))
		return
	case c.subscribed(ch.name) == nil:
		c.reply(errorReply(id, errPermissionDenied))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	res, perr := readHistory(ctx, c.a.node.History, ch, req.Limit, req.Since, req.Reverse)
	if perr != nil {
		c.reply(errorReply(id, perr))
		return
	}
	c.reply(&protocol.Reply{Id: id, History: res})
}

// historyTimeout bounds a history read (a database query).
const historyTimeout = 5 * time.Second

// historyFailed undoes a subscription whose history read failed; the
// subscribe is answered with an internal error (the client retries).
func (c *conn) historyFailed(s *subscription, err error) *protocol.Error {
	c.a.log.Error("subscribe: history", "channel", s.ch.name, "err", err)
	c.dropSub(s)
	return errInternal
}

// readHistory answers a history request (client or server API).
func readHistory(ctx context.Context, h *gateway.History, ch channel, limit int32, since *protocol.StreamPosition, reverse bool) (*protocol.HistoryResult, *protocol.Error) {
	q := gateway.Query{Limit: int(limit), Reverse: reverse}
	if since != nil {
		if reverse && since.Offset == 0 {
			return nil, errBadRequest
		}
		q.Since = &gateway.StreamPosition{Offset: since.Offset, Epoch: since.Epoch}
	}
	pubs, top, err := h.Read(ctx, ch.hub, q)
	if errors.Is(err, gateway.ErrUnrecoverablePosition) {
		return nil, errUnrecoverable
	}
	if err != nil {
		return nil, errInternal
	}
	res := &protocol.HistoryResult{Epoch: top.Epoch, Offset: top.Offset, Publications: []*protocol.Publication{}}
	for _, m := range pubs {
		res.Publications = append(res.Publications, publication(m))
	}
	return res, nil
}

func (c *conn) publish(id uint32, req *protocol.PublishRequest) {
	ch, perr := c.a.res.resolve(req.Channel)
	if perr != nil {
		c.reply(errorReply(id, perr))
		return
	}
	c.mu.Lock()
	ident := c.ident
	c.mu.Unlock()
	switch {
	case c.subscribed(ch.name) == nil:
		c.reply(errorReply(id, errPermissionDenied))
		return
	case ch.canonical:
		// Canonical channels carry domain events; only a PubSub room
		// lets its participants talk (gateway.Authorizer.CanPublish),
		// within the room limits.
		if perr := c.roomPublish(ident, ch, req.Data); perr != nil {
			c.reply(errorReply(id, perr))
			return
		}
	case !ch.opts.AllowPublish:
		// Namespaces let their subscribers publish when allow_publish
		// is set.
		c.reply(errorReply(id, errPermissionDenied))
		return
	}
	if !validJSON(req.Data) {
		c.reply(errorReply(id, errBadRequest))
		return
	}
	from := &gateway.ClientInfo{ConnID: c.id, UserID: ident.user, Info: ident.info}
	if err := c.a.publishOutbox(context.Background(), []channel{ch}, json.RawMessage(req.Data), from); err != nil {
		c.a.log.Error("client publish", "client", c.id, "channel", ch.name, "err", err)
		c.reply(errorReply(id, errInternal))
		return
	}
	c.a.node.CountClientEvent(gateway.ProtoCentrifuge)
	c.reply(&protocol.Reply{Id: id, Publish: &protocol.PublishResult{}})
}

// roomPublish checks a publish into a PubSub room: the publisher's own
// room, data of at most RoomMaxPayload bytes shaped {"type": name,
// "data": ...}, and at most RoomPublishRate per second per participant on
// this node (all its connections together).
func (c *conn) roomPublish(ident *identity, ch channel, data []byte) *protocol.Error {
	if err := c.a.node.Auth.CanPublish(ident.claims(), ch.hub); err != nil {
		return &protocol.Error{Code: errPermissionDenied.Code, Message: "permission denied: " + err.Error()}
	}
	if max := c.a.cfg.RoomMaxPayload; len(data) > max {
		return &protocol.Error{Code: errLimitExceeded.Code, Message: fmt.Sprintf("limit exceeded: payload is %d bytes, at most %d", len(data), max)}
	}
	var ev struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.Type == "" || len(ev.Type) > 200 {
		return &protocol.Error{Code: errBadRequest.Code, Message: `bad request: room publications are {"type": event name (1 to 200 characters), "data": ...}`}
	}
	r := ident.pubsub
	if !c.a.roomRate.Allow(r.Organization+"/"+r.Event+"/"+r.Session+"/"+ident.user, time.Now()) {
		return &protocol.Error{Code: 111, Message: fmt.Sprintf("too many requests: at most %d publishes per second per participant", c.a.cfg.RoomPublishRate)}
	}
	return nil
}

func (c *conn) subRefresh(id uint32, req *protocol.SubRefreshRequest) bool {
	s := c.subscribed(req.Channel)
	if s == nil {
		c.reply(errorReply(id, errPermissionDenied))
		return true
	}
	g, err := verifySubToken(c.a.cfg.Signer, req.Token, c.userID(), req.Channel)
	switch {
	case errors.Is(err, domain.ErrTokenExpired):
		c.closeWith(DisconnectSubExpired)
		return false
	case err != nil:
		c.authFailed(gateway.DoorSubscribe, c.userID(), "invalid subscription refresh token for "+req.Channel)
		c.closeWith(DisconnectInvalidToken)
		return false
	}
	res := &protocol.SubRefreshResult{}
	if !g.expires.IsZero() {
		res.Expires, res.Ttl = true, (&identity{expires: g.expires}).ttl(time.Now())
	}
	s.expireAt(g.expires, c.a.cfg.ExpiredCloseDelay)
	c.reply(&protocol.Reply{Id: id, SubRefresh: res})
	return true
}

// revoke drops the subscriptions to hub channel and tells the client with
// an unsubscribe push (code 2000: it stays unsubscribed).
func (c *conn) revoke(hub string) {
	c.mu.Lock()
	var drop []*subscription
	for _, s := range c.subs.All() {
		if s.ch.hub == hub {
			drop = append(drop, s)
		}
	}
	c.mu.Unlock()
	for _, s := range drop {
		c.dropSub(s)
		c.pushUnsubscribe(s.ch.name, unsubscribeServer, "permission revoked")
	}
}

func (c *conn) pushUnsubscribe(channel string, code uint32, reason string) {
	c.reply(&protocol.Reply{Push: &protocol.Push{Channel: channel, Unsubscribe: &protocol.Unsubscribe{Code: code, Reason: reason}}})
}

// closeWith writes a close frame with d, then drops the socket. Centrifugo
// sends no close frame for 3000; every code we use has one.
func (c *conn) closeWith(d Disconnect) <-chan struct{} {
	return gateway.DropUnanswered(c.w.CloseWith(gateway.CloseFrame(d.Code, d.Reason)), c.nc)
}

// readUntilClosed completes the close handshake of a connection closed
// before its read loop started (closeWith), then drops the socket.
func (c *conn) readUntilClosed() { gateway.ReadUntilClosed(c.ws, c.w) }

func (c *conn) cleanup() {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	subs := c.subs.Values()
	user, taken := "", c.userTaken
	if c.ident != nil {
		user = c.ident.user
	}
	c.mu.Unlock()
	for _, s := range subs {
		c.dropSub(s)
	}
	if taken {
		c.a.node.Users.Release(user, c.id)
	}
	// Let a queued close frame (closeWith, or the answer to the client's
	// close) reach the client before the socket goes: without it the
	// client sees 1006 instead of the code.
	gateway.Hangup(c.nc, c.w, c.a.cfg.WriteTimeout)
}
