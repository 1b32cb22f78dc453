package gateway

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/domain"
)

// The tap: what the debug console (console/) watches of the node. The
// dispatch path, the client-event path and the connection lifecycle call
// it with one line each; while nobody watches, each call is one atomic
// load of a nil pointer and nothing is built, copied or encoded. While a
// Watcher is open, each thing that happens becomes a Line handed to every
// watcher's bounded channel without blocking: a watcher that does not keep
// up loses lines (counted in Dropped), never delays a delivery.
//
// Lines hold references, not copies: an event's Data is the slice every
// subscriber was sent, and the channel's subscriber snapshot (immutable
// once built, see channelSubs) is kept so the per-protocol fan-out is
// counted by the watcher, on its own goroutine (Line.Fanout), not on the
// dispatch path.

// LineKind is what a Line reports.
type LineKind uint8

// The kinds of line, each one a filter of the console's log.
const (
	// LineEvent is an outbox event delivered on one channel.
	LineEvent LineKind = iota
	// LineClient is a client-originated publication that does not go
	// through the outbox: a Pusher client-* event or an ActionCable
	// perform (Centrifugo publications go through the outbox and are
	// LineEvent lines whose Tags name the publisher).
	LineClient
	// LineConnect is a WebSocket connection registered (accepted).
	LineConnect
	// LineDisconnect is a registered connection that ended.
	LineDisconnect
	// LineSubscribe is a connection subscribed to a channel.
	LineSubscribe
	// LineUnsubscribe is a subscription that ended.
	LineUnsubscribe
	// LineAuthFailure is a credential refused on a WebSocket.
	LineAuthFailure
	numLineKinds
)

var lineKindNames = [numLineKinds]string{"event", "client", "connect", "disconnect", "subscribe", "unsubscribe", "auth_failure"}

// String is the kind's name in the console ("event", "auth_failure", ...).
func (k LineKind) String() string {
	if k < numLineKinds {
		return lineKindNames[k]
	}
	return "unknown"
}

// LineKinds lists every kind, for a console that offers them as filters.
func LineKinds() []LineKind {
	out := make([]LineKind, numLineKinds)
	for i := range out {
		out[i] = LineKind(i)
	}
	return out
}

// Line is one thing the node did, as a Watcher sees it. Fields that do not
// apply to the kind are zero. A Line and what it references are read-only.
type Line struct {
	Kind LineKind
	Time time.Time

	// Events and client events.
	Channel string          // hub channel
	Event   string          // event name
	ID      string          // envelope id (events)
	Data    json.RawMessage // what subscribers were sent (shared: do not modify)
	// TriggeredBy is the REST call that caused the event, if one did.
	TriggeredBy *domain.TriggeredBy
	// Project is the event's project scope ("" when it has none).
	Project string
	Tags    map[string]string
	// From is the publisher of a client event.
	From *ClientInfo
	// Relayed marks a client event another node relayed to this one.
	Relayed bool
	// Reached is how many subscriptions of this node it was handed to.
	Reached int

	// Connection lines: the connection and who it belongs to. Subscribe
	// lines carry Conn, Proto and Channel.
	Proto  Protocol
	Conn   string
	User   string
	Remote string
	// Disconnect: the close code and reason, and whether the client
	// closed.
	Code     int
	Reason   string // also an auth failure's reason
	ByClient bool
	// Door is where an auth failure happened.
	Door Door
	// Count is the channel's subscriptions on this node after a subscribe
	// or an unsubscribe.
	Count int

	subs   []Subscriber // the channel's subscribers when it was delivered
	except string
}

// ProtocolSubscriber is a Subscriber that says which protocol its
// connection speaks: the adapters' subscriptions are. The tap counts an
// event's fan-out per protocol with it (others count as "other").
type ProtocolSubscriber interface {
	Subscriber
	Protocol() Protocol
}

// Fanout counts, per protocol name ("pusher", "centrifuge",
// "actioncable", and "other" for subscribers that do not say), the
// subscriptions of this node an event or client event was handed to. It
// walks the channel's subscribers, so call it on the watcher's goroutine.
func (l *Line) Fanout() map[string]int {
	var by [numProtocols]int
	other := 0
	for _, s := range l.subs {
		if l.except != "" && s.ConnID() == l.except {
			continue
		}
		if ps, ok := s.(ProtocolSubscriber); ok && ps.Protocol() < numProtocols {
			by[ps.Protocol()]++
		} else {
			other++
		}
	}
	out := make(map[string]int, numProtocols+1)
	for _, p := range Protocols() {
		out[p.String()] = by[p]
	}
	if other > 0 {
		out["other"] = other
	}
	return out
}

// Tap is where the node's lines go. The zero value is ready; every method
// is safe for concurrent use.
type Tap struct {
	// watchers is nil while nobody watches: the one load every hook makes.
	watchers atomic.Pointer[[]*Watcher]
	mu       sync.Mutex // serializes Watch and Close
	// built counts the lines built, for tests of "nothing while nobody
	// watches".
	built atomic.Uint64
}

// processTap is the tap of this process: like processStats, the
// connection lifecycle (Registry) and the hub know no node, and production
// runs one node per process.
var processTap Tap

// Tap returns the node's tap (see processTap: today the process's).
func (n *Node) Tap() *Tap { return &processTap }

// Watcher receives a tap's lines until closed.
type Watcher struct {
	t       *Tap
	ch      chan *Line
	dropped atomic.Uint64
}

// Watch starts a watcher whose channel holds up to buffer lines (at least
// 1); past that, lines are dropped and counted. Close it when done.
func (t *Tap) Watch(buffer int) *Watcher {
	w := &Watcher{t: t, ch: make(chan *Line, max(buffer, 1))}
	t.mu.Lock()
	defer t.mu.Unlock()
	var next []*Watcher
	if cur := t.watchers.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, w)
	t.watchers.Store(&next)
	return w
}

// Watching reports whether any watcher is open.
func (t *Tap) Watching() bool { return t.watchers.Load() != nil }

// Lines is the watcher's channel. It is never closed: stop reading after
// Close.
func (w *Watcher) Lines() <-chan *Line { return w.ch }

// Dropped is how many lines did not fit in the watcher's buffer.
func (w *Watcher) Dropped() uint64 { return w.dropped.Load() }

// Close stops the watcher; lines already queued stay readable. Closing
// the last watcher turns the tap off.
func (w *Watcher) Close() {
	t := w.t
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.watchers.Load()
	if cur == nil {
		return
	}
	var next []*Watcher
	for _, x := range *cur {
		if x != w {
			next = append(next, x)
		}
	}
	if len(next) == 0 {
		t.watchers.Store(nil)
		return
	}
	t.watchers.Store(&next)
}

// emit hands l to every watcher without blocking.
func (t *Tap) emit(l *Line) {
	ws := t.watchers.Load()
	if ws == nil {
		return
	}
	t.built.Add(1)
	for _, w := range *ws {
		select {
		case w.ch <- l:
		default:
			w.dropped.Add(1)
		}
	}
}

// The hooks. Each is small enough to be inlined at its call site: the
// load, and a call only while someone watches.

// delivered reports m, env's publication on one channel, handed to
// reached subscriptions (-1: every subscriber, Hub.PublishMany).
func (t *Tap) delivered(h *Hub, env *domain.Envelope, m *Message, reached int) {
	if t.watchers.Load() != nil {
		t.emitDelivered(h, env, m, reached)
	}
}

func (t *Tap) emitDelivered(h *Hub, env *domain.Envelope, m *Message, reached int) {
	subs := h.Subscribers(m.Channel)
	if reached < 0 {
		reached = len(subs)
	}
	t.emit(&Line{Kind: LineEvent, Time: time.Now(), Channel: m.Channel, Event: m.Event, ID: m.ID, Data: m.Data,
		TriggeredBy: env.TriggeredBy, Project: env.Scope.Project, Tags: m.Tags, Reached: reached,
		subs: subs, except: m.ExceptConn})
}

// client reports a client-originated publication handed to reached
// subscriptions of this node; relayed when another node sent it here.
func (t *Tap) client(h *Hub, m *Message, reached int, relayed bool) {
	if t.watchers.Load() != nil {
		t.emitClient(h, m, reached, relayed)
	}
}

func (t *Tap) emitClient(h *Hub, m *Message, reached int, relayed bool) {
	t.emit(&Line{Kind: LineClient, Time: time.Now(), Channel: m.Channel, Event: m.Event, Data: m.Data, Tags: m.Tags,
		From: m.From, Relayed: relayed, Reached: reached, subs: h.Subscribers(m.Channel), except: m.ExceptConn})
}

// connected and disconnected report a registered connection's start and
// end (Registry.Add, Registry.Remove).
func (t *Tap) connected(id string, d ConnDesc) {
	if t.watchers.Load() != nil {
		t.emitConnected(id, d)
	}
}

func (t *Tap) emitConnected(id string, d ConnDesc) {
	t.emit(&Line{Kind: LineConnect, Time: time.Now(), Proto: d.Proto, Conn: id, User: d.User, Remote: d.Remote})
}

func (t *Tap) disconnected(id string, d ConnDesc) {
	if t.watchers.Load() != nil {
		t.emitDisconnected(id, d)
	}
}

func (t *Tap) emitDisconnected(id string, d ConnDesc) {
	end, ok := End{}, false
	if d.Writer != nil {
		end, ok = d.Writer.End()
	}
	if !ok {
		end = End{Code: CloseAbnormal, Reason: "unknown"}
	}
	t.emit(&Line{Kind: LineDisconnect, Time: time.Now(), Proto: d.Proto, Conn: id, User: d.User, Remote: d.Remote,
		Code: end.Code, Reason: end.Reason, ByClient: end.ByClient})
}

// subscribed reports s joining (on) or leaving channel, which then has
// count subscriptions on this node (Hub.Subscribe, Hub.Unsubscribe).
func (t *Tap) subscribed(channel string, s Subscriber, count int, on bool) {
	if t.watchers.Load() != nil {
		t.emitSubscribed(channel, s, count, on)
	}
}

func (t *Tap) emitSubscribed(channel string, s Subscriber, count int, on bool) {
	l := &Line{Kind: LineSubscribe, Time: time.Now(), Channel: channel, Conn: s.ConnID(), Count: count, Proto: numProtocols}
	if !on {
		l.Kind = LineUnsubscribe
	}
	if ps, ok := s.(ProtocolSubscriber); ok {
		l.Proto = ps.Protocol()
	}
	t.emit(l)
}

// authFailed reports a refused credential (Node.ReportAuthFailure).
func (t *Tap) authFailed(f AuthFailure) {
	if t.watchers.Load() != nil {
		t.emitAuthFailed(f)
	}
}

func (t *Tap) emitAuthFailed(f AuthFailure) {
	t.emit(&Line{Kind: LineAuthFailure, Time: time.Now(), Proto: f.Proto, Door: f.Door, Conn: f.Conn, User: f.User,
		Remote: f.Remote, Reason: f.Reason})
}

// deliveredMany reports a backlog on one channel that Hub.PublishMany
// handed to every subscriber: envs[i] became ms[i].
func (t *Tap) deliveredMany(h *Hub, envs []domain.Envelope, ms []*Message) {
	if t.watchers.Load() != nil {
		t.emitMany(h, envs, ms)
	}
}

func (t *Tap) emitMany(h *Hub, envs []domain.Envelope, ms []*Message) {
	for i, m := range ms {
		t.emitDelivered(h, &envs[i], m, -1)
	}
}
