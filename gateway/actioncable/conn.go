package actioncable

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
	"unique"

	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/gateway"
)

// conn is one ActionCable connection. Its states:
//
//	upgraded ──identify fails──▶ disconnect(unauthorized, reconnect:false) ─▶ closed
//	    │ ok (and under the per-user limit)
//	    ▼
//	welcomed ──subscribe/unsubscribe/message──▶ welcomed
//	    │ client closes │ idle │ send queue full │ server shutdown
//	    ▼
//	closed (subscriptions left, user slot released)
//
// The echo handler goroutine reads and handles commands one at a time, so a
// subscribe the client repeats (every 500 ms until answered) is seen only
// after the first is answered, and is then a no-op. All writes, control
// frames included, go through the gateway.Writer, because frames are written
// straight to the socket.
type conn struct {
	a      *Adapter
	id     string
	ws     *websocket.Conn // until run hands it to gateway.Serve
	nc     net.Conn
	w      *gateway.Writer
	claims *domain.Claims // set once before run; read-only afterwards

	mu     sync.Mutex
	subs   gateway.Named[*subscription] // by identifier, as the client wrote it
	closed bool
	// Token bucket for perform() client events.
	tokens   float64
	lastFill time.Time
}

// subscription is the hub Subscriber for one identifier of one connection,
// on each of its streams (one hub subscription per stream).
type subscription struct {
	c          *conn
	identifier string
	stream     string   // primary stream (canonical channel): perform() goes there
	streams    []string // every stream, stream first
	class      *Class
	key        unique.Handle[string] // frame cache key: one encoding per identifier, interned
}

// streamsFrom returns whether s receives stream.
func (s *subscription) streamsFrom(stream string) bool { return slices.Contains(s.streams, stream) }

// join subscribes s to every stream on the hub; leave undoes it.
func (s *subscription) join(hub *gateway.Hub) {
	for _, st := range s.streams {
		hub.Subscribe(st, s)
	}
}

func (s *subscription) leave(hub *gateway.Hub) {
	for _, st := range s.streams {
		hub.Unsubscribe(st, s)
	}
}

func (s *subscription) ConnID() string { return s.c.id }

// Protocol lets the debug console count an event's fan-out per protocol
// (gateway.ProtocolSubscriber).
func (s *subscription) Protocol() gateway.Protocol { return gateway.ProtoActionCable }

func (s *subscription) Deliver(m *gateway.Message) {
	s.c.w.Deliver(m, m.Frame(s.key.Value(), func(m *gateway.Message) []byte { return broadcastFrame(s.identifier, m) }))
}

var _ gateway.Subscriber = (*subscription)(nil)

// maxMessageSize is the largest frame a client may send; a larger one
// closes the connection with 1009. Commands are small JSON objects (a
// subscribe, a perform with its data), so 64 KB leaves ample room.
const maxMessageSize = 64 << 10

func newConn(a *Adapter, ws *websocket.Conn) *conn {
	c := &conn{a: a, id: newConnID(), ws: ws, nc: ws.NetConn()}
	write, try := gateway.NetIO(c.nc, a.cfg.WriteTimeout)
	c.w = gateway.NewWriter(gateway.WriterConfig{
		Write:    write,
		TryWrite: try,
		MaxQueue: a.cfg.MaxQueue,
		OnSlow: func(cause gateway.CutCause, queued int) {
			a.node.ReportSlowConsumer(gateway.SlowCut{Proto: gateway.ProtoActionCable, Cause: cause,
				Conn: c.id, User: c.user(), Queued: queued})
		},
		OnOverflow: func() { c.closeWith(ReasonTooSlow, true) },
		OnError:    func(error) { gateway.Shutdown(c.nc) },
	})
	return c
}

// user is the identified user, for log lines ("" before identification).
// claims is set before the writer carries any frame, and the writer's lock
// orders that write before any callback that reads it.
func (c *conn) user() string {
	if c.claims == nil {
		return ""
	}
	return c.claims.Subject
}

// Describe tells the node's registry what to count and log of the
// connection (gateway.Described).
func (c *conn) Describe() gateway.ConnDesc {
	return gateway.ConnDesc{Proto: gateway.ProtoActionCable, Writer: c.w, User: c.user(), Remote: c.nc.RemoteAddr().String(), Log: c.a.log}
}

var _ gateway.Described = (*conn)(nil)

// authFailed counts and logs (at debug) a credential this connection
// presented and the adapter refused.
func (c *conn) authFailed(door gateway.Door, reason string) {
	c.a.node.ReportAuthFailure(gateway.AuthFailure{Proto: gateway.ProtoActionCable, Door: door,
		Conn: c.id, User: c.user(), Remote: c.nc.RemoteAddr().String(), Reason: reason})
}

// run welcomes the client and starts handling its commands; ended is
// called once the connection has ended and been cleaned up.
func (c *conn) run(ctx context.Context, ended func()) {
	c.w.Enqueue(welcomeFrame)
	// A token expires while its connection lives: end the connection then,
	// with reconnect true, so a consumer whose URL is a function
	// (createConsumer(() => `/cable?token=${fresh()}`)) comes back with a
	// fresh token; a stale URL token is refused as unauthorized on reconnect.
	var expiry *time.Timer
	if exp := c.claims.ExpiresAt; exp != nil {
		expiry = time.AfterFunc(time.Until(exp.Time), func() { c.closeWith(ReasonTokenExpired, true) })
	}
	// Rails (websocket-driver) closes a message too big with 1009 and sends
	// no disconnect message; the client reconnects as after any drop.
	// Anything from the client proves it alive (IdleTimeout).
	// The read side keeps gorilla's Conn only if a goroutine reads it: the
	// poller needs the socket alone, and the Conn's read buffer is about
	// 1 KB of every idle connection.
	ws := c.ws
	c.ws = nil
	gateway.Serve(ws, c.w, gateway.ReadConfig{
		Limit: maxMessageSize, TooBig: "Message too big",
		Handle:      func(data []byte) { c.handle(ctx, data) },
		IdleTimeout: c.a.cfg.IdleTimeout,
		OnEnd: func(err error) {
			if expiry != nil {
				expiry.Stop()
			}
			switch {
			case errors.Is(err, gateway.ErrMessageTooBig):
				c.a.log.Debug("message too big", "conn", c.id)
			case gateway.IsTimeout(err):
				c.a.log.Debug("idle connection dropped", "conn", c.id)
			}
			c.cleanup()
			ended()
		},
	})
}

// handle runs one command. Malformed commands are logged and ignored, as
// Rails does: there is no error frame in the protocol.
func (c *conn) handle(ctx context.Context, raw []byte) {
	var cmd command
	if err := json.Unmarshal(raw, &cmd); err != nil {
		c.a.log.Debug("unreadable command", "conn", c.id, "err", err)
		return
	}
	switch cmd.Command {
	case cmdSubscribe:
		c.subscribe(ctx, cmd.Identifier)
	case cmdUnsubscribe:
		c.unsubscribe(cmd.Identifier)
	case cmdMessage:
		c.perform(cmd.Identifier, cmd.Data)
	default:
		c.a.log.Debug("unknown command", "conn", c.id, "command", truncate(cmd.Command, 32))
	}
}

func (c *conn) subscribe(ctx context.Context, identifier string) {
	c.mu.Lock()
	_, dup := c.subs.Get(identifier)
	n := c.subs.Len()
	closed := c.closed
	c.mu.Unlock()
	if dup || closed {
		// Confirmed once already: the client's guarantor repeats subscribes
		// until the answer arrives, and Rails ignores repeats too.
		return
	}
	if n >= c.a.cfg.MaxSubscriptions {
		c.a.log.Info("subscription limit reached", "conn", c.id, "user", c.claims.Subject)
		c.w.Enqueue(rejectFrame(identifier))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.a.cfg.SubscribeTimeout)
	defer cancel()
	b, err := c.a.authorize(ctx, c.claims, identifier)
	if err != nil {
		if !rejectable(err) {
			// A store outage is not the client's fault: stay silent and
			// the client's guarantor asks again in 500 ms.
			c.a.log.Warn("subscribe failed", "conn", c.id, "err", err)
			return
		}
		if e, ok := domain.AsError(err); ok && (e.Status == 401 || e.Status == 403) {
			c.authFailed(gateway.DoorSubscribe, err.Error())
		} else {
			c.a.log.Debug("subscription rejected", "conn", c.id, "user", c.claims.Subject, "err", err)
		}
		c.w.Enqueue(rejectFrame(identifier))
		return
	}
	s := &subscription{c: c, identifier: identifier, stream: b.Stream, streams: b.Streams, class: b.Class, key: unique.Make("actioncable:" + identifier)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if _, dup := c.subs.Get(identifier); dup {
		c.mu.Unlock()
		return
	}
	c.subs.Set(identifier, s)
	// Queue the confirmation, then join the hub, with the writer held: the
	// confirmation precedes any event, and leaves only once the
	// subscription is in place. Both under c.mu, so a concurrent revoke
	// sees the subscription either not yet recorded or already in the hub,
	// never half done.
	release := c.w.Hold()
	c.w.Enqueue(confirmFrame(identifier))
	s.join(c.a.node.Hub)
	release()
	c.mu.Unlock()
}

// authorize resolves identifier through the registry and applies the
// gateway's read rules to every stream, exactly as for Pusher and
// Centrifugo: one stream the member may not read rejects the subscription.
func (a *Adapter) authorize(ctx context.Context, claims *domain.Claims, identifier string) (Binding, error) {
	b, err := a.reg.Resolve(ctx, identifier, claims.Subject, a.rooms())
	if err != nil {
		return Binding{}, err
	}
	for _, st := range b.Streams {
		if err := a.node.Auth.CanRead(ctx, claims, st); err != nil {
			return Binding{}, err
		}
	}
	return b, nil
}

// rejectable tells client mistakes (answered with reject_subscription) from
// server failures (left unanswered so the client retries).
func rejectable(err error) bool {
	if errors.Is(err, ErrUnknownChannel) || errors.Is(err, ErrBadIdentifier) {
		return true
	}
	if e, ok := domain.AsError(err); ok {
		return e.Status < 500
	}
	return false
}

func (c *conn) unsubscribe(identifier string) {
	c.mu.Lock()
	s, _ := c.subs.Delete(identifier)
	c.mu.Unlock()
	if s != nil {
		s.leave(c.a.node.Hub)
	}
}

// perform forwards subscription.perform(action, data) as the client event
// "client-<action>" on the subscription's stream, when the class allows the
// action. Other connections receive it like any broadcast (Pusher clients as
// "client-<action>" too); the sender does not.
func (c *conn) perform(identifier, data string) {
	c.mu.Lock()
	s, _ := c.subs.Get(identifier)
	c.mu.Unlock()
	if s == nil {
		c.a.log.Debug("message for an unknown subscription", "conn", c.id)
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &obj); err != nil || obj == nil {
		c.a.log.Debug("message data is not a JSON object", "conn", c.id)
		return
	}
	var action string
	if raw, ok := obj["action"]; ok {
		_ = json.Unmarshal(raw, &action)
	}
	if action == "" || !s.class.Allows(action) {
		c.a.log.Debug("action not allowed", "conn", c.id, "channel", s.class.Name, "action", truncate(action, 32))
		return
	}
	if !c.allowEvent(time.Now()) {
		c.a.log.Debug("client event rate exceeded", "conn", c.id)
		return
	}
	delete(obj, "action")
	payload, err := json.Marshal(obj)
	if err != nil {
		return
	}
	c.a.node.CountClientEvent(gateway.ProtoActionCable)
	c.a.node.Broadcast(&gateway.Message{
		Channel:    s.stream,
		Event:      "client-" + action,
		Data:       payload,
		From:       &gateway.ClientInfo{ConnID: c.id, UserID: c.claims.Subject},
		ExceptConn: c.id,
	})
}

// allowEvent is a token bucket of ClientEventRate per second (burst the
// same), so one tab cannot flood a room with typing notices.
func (c *conn) allowEvent(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	rate := float64(c.a.cfg.ClientEventRate)
	if c.lastFill.IsZero() {
		c.tokens = rate
	} else {
		c.tokens = min(rate, c.tokens+now.Sub(c.lastFill).Seconds()*rate)
	}
	c.lastFill = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// revoke drops this connection's subscriptions that stream from stream
// (all their streams) and tells the client with reject_subscription, which
// @rails/actioncable handles after a confirmation too: the subscription is
// forgotten and rejected() runs.
func (c *conn) revoke(stream string) {
	c.mu.Lock()
	var drop []*subscription
	for _, s := range c.subs.All() {
		if s.streamsFrom(stream) {
			drop = append(drop, s)
		}
	}
	for _, s := range drop {
		c.subs.Delete(s.identifier)
	}
	c.mu.Unlock()
	for _, s := range drop {
		s.leave(c.a.node.Hub)
		c.w.Enqueue(rejectFrame(s.identifier))
	}
}

// closeWith sends the disconnect message and a close frame, then drops the
// socket. Both frames go out as one write so they still leave after a queue
// overflow, when the writer accepts nothing but its final frame.
func (c *conn) closeWith(reason string, reconnect bool) <-chan struct{} {
	d := disconnectFrame(reason, reconnect)
	cl := gateway.CloseFrame(websocket.CloseNormalClosure, "")
	final := make([]byte, 0, len(d)+len(cl))
	final = append(append(final, d...), cl...)
	return gateway.DropUnanswered(c.w.CloseWithReason(final, reason), c.nc)
}

// reject ends a connection that never got welcomed, completing the close
// handshake before dropping the socket.
func (c *conn) reject(reason string, reconnect bool) {
	c.closeWith(reason, reconnect)
	gateway.ReadUntilClosed(c.ws, c.w)
}

func (c *conn) cleanup() {
	c.mu.Lock()
	c.closed = true
	subs := c.subs.Take()
	c.mu.Unlock()
	for _, s := range subs {
		s.leave(c.a.node.Hub)
	}
	// Let the last frames (our disconnect and close frame, or the answer
	// to the client's close) reach the client before the socket goes.
	gateway.Hangup(c.nc, c.w, c.a.cfg.WriteTimeout)
}
