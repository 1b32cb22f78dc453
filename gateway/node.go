package gateway

import (
	"log/slog"
	"sync"

	"switchboard/domain"
)

// Interceptor sees every message before fan-out (history, cache channels,
// stream offsets). It may set fields of m; it must not block.
type Interceptor func(m *Message)

// Node is one gateway process: the hub, the authorization rules and the
// path from the broker into the hub. Protocol adapters hold a *Node.
type Node struct {
	Hub  *Hub
	Auth *Authorizer
	Log  *slog.Logger
	// Presence is shared by every protocol's presence channels.
	Presence *Presence
	// Users enforces the per-user connection limit across protocols.
	Users *UserConns
	// Occupancy counts subscriptions per channel key in the cluster.
	Occupancy *Occupancy
	// History is the durable stream store (Centrifugo history, Pusher cache
	// channels); nil when the node keeps none. Set before serving.
	History *History

	// Peers is the view of the other nodes in cluster mode, nil otherwise.
	Peers *Peers

	mu           sync.RWMutex
	interceptors []Interceptor
	disconnects  []func(userID string, channel string)
	presenceFns  []func(hub, conn string, m Member, joined, userChanged bool)
	leftFns      []func(hub string, m Member)

	cmds  commands      // OnCommand handlers (commands.go)
	discs disconnectors // DisconnectUser's adapters (disconnect.go)
}

// OnMemberLeft registers fn to be told that a user's last connection in
// the cluster left a presence channel and did not come back within
// PresenceGrace (cluster mode, on every node; a single node reports
// departures inline, see Presence.Leave).
func (n *Node) OnMemberLeft(fn func(hub string, m Member)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leftFns = append(n.leftFns, fn)
}

// EnableCluster connects the node to the other nodes of its cluster through
// bus: presence, the per-user connection limit and client-originated
// publications (Broadcast) become cluster-wide. id names this node; call
// before serving.
func (n *Node) EnableCluster(id string, bus Bus) error {
	p := newPeers(id, bus, n.Log)
	p.localHas = n.Presence.hasLocal
	// A snapshot holds every change up to the sequence it carries: changes
	// are announced under the lock of the state they change.
	p.snapshot = func() peerSnap {
		n.Presence.mu.Lock()
		defer n.Presence.mu.Unlock()
		n.Users.mu.Lock()
		defer n.Users.mu.Unlock()
		n.Occupancy.mu.Lock()
		defer n.Occupancy.mu.Unlock()
		p.mu.Lock()
		seq := p.seq
		p.mu.Unlock()
		return peerSnap{Seq: seq, Presence: n.Presence.snapshot(), Users: n.Users.snapshot(), Occ: n.Occupancy.snapshot()}
	}
	p.localOcc = func(key string) int {
		n.Occupancy.mu.Lock()
		defer n.Occupancy.mu.Unlock()
		return n.Occupancy.local[key]
	}
	p.onOccupancy = n.Occupancy.remoteChanged
	p.onPublish = func(m *Message) { processTap.client(n.Hub, m, n.Publish(m), true) }
	p.onCommand = n.runCommand
	p.onPresence = func(hub, conn string, m Member, joined, userChanged bool) {
		n.mu.RLock()
		fns := n.presenceFns
		n.mu.RUnlock()
		for _, fn := range fns {
			fn(hub, conn, m, joined, userChanged)
		}
	}
	n.Presence.peers, n.Users.peers, n.Occupancy.peers, n.Peers = p, p, p, p
	gone := &departures{grace: PresenceGrace, present: p.presentAnywhere, fire: p.onPresence,
		left: func(hub string, m Member) {
			n.mu.RLock()
			fns := n.leftFns
			n.mu.RUnlock()
			for _, fn := range fns {
				fn(hub, m)
			}
		}}
	n.Presence.gone, p.gone = gone, gone
	return p.start()
}

// CloseCluster stops the heartbeats (the other nodes forget this one's
// connections after PeerTTL, or at once as they close).
func (n *Node) CloseCluster() {
	if n.Peers != nil {
		n.Peers.close()
	}
}

// OnRemotePresence registers fn to be told of connections of other nodes
// joining or leaving presence channels (cluster mode), so adapters can
// announce them to their own subscribers.
func (n *Node) OnRemotePresence(fn func(hub, conn string, m Member, joined, userChanged bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.presenceFns = append(n.presenceFns, fn)
}

// Broadcast publishes a client-originated message (it does not go through
// the outbox) to this node's subscribers and, in cluster mode, to every
// other node's.
func (n *Node) Broadcast(m *Message) int {
	reached := n.Publish(m)
	processTap.client(n.Hub, m, reached, false)
	if n.Peers != nil {
		n.Peers.publish(m)
	}
	return reached
}

// NewNode returns a node with an empty hub.
func NewNode(auth *Authorizer, log *slog.Logger) *Node {
	if auth == nil {
		auth = &Authorizer{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Node{Hub: NewHub(), Auth: auth, Log: log, Presence: NewPresence(), Users: NewUserConns(0), Occupancy: NewOccupancy()}
}

// Intercept adds an interceptor; call before serving.
func (n *Node) Intercept(i Interceptor) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.interceptors = append(n.interceptors, i)
}

// Publish runs the interceptors and fans m out; it returns the number of
// subscribers reached.
func (n *Node) Publish(m *Message) int {
	n.intercept(m)
	return n.Hub.Publish(m)
}

func (n *Node) intercept(m *Message) {
	n.mu.RLock()
	is := n.interceptors
	n.mu.RUnlock()
	for _, i := range is {
		i(m)
	}
}

// Dispatch fans a committed event out to every channel of its scope.
// Revocations are applied first, so a member removed from a room does not
// receive the event that announces the removal on the room channel.
func (n *Node) Dispatch(env domain.Envelope) { n.dispatch(env, nil) }

// DispatchBatch dispatches events in order; it is the broker subscriber of
// the node. Several events at once mean the gateway is behind: they are
// queued on every connection first and written with one write per
// connection at the end (the same frames, in the same order, in far fewer
// syscalls), which is what lets a node catch up instead of falling further
// behind.
//
// The common backlog, events for one channel (a busy dashboard), goes
// further: each connection is visited once for all of them (see
// Hub.PublishMany) rather than once per event and again for the flush.
func (n *Node) DispatchBatch(envs []domain.Envelope) {
	if len(envs) == 1 {
		n.dispatch(envs[0], nil)
		return
	}
	b := &Batch{}
	if ch, ok := oneChannel(envs); ok {
		for _, r := range envs[0].Revoke {
			n.Revoke(r.Member, r.Channel)
		}
		ms := make([]*Message, len(envs))
		for i, env := range envs {
			ms[i] = message(env, ch, b)
			n.intercept(ms[i])
		}
		n.Hub.PublishMany(ms)
		processTap.deliveredMany(n.Hub, envs, ms)
	} else {
		for _, env := range envs {
			n.dispatch(env, b)
		}
	}
	n.Hub.Flush(b)
}

// oneChannel reports the channel when every event goes to that one channel
// only, excludes no connection, and none but the first revokes anything
// (revocations must land between the events around them).
func oneChannel(envs []domain.Envelope) (string, bool) {
	var ch string
	for i, env := range envs {
		if env.Except != "" || (i > 0 && len(env.Revoke) > 0) {
			return "", false
		}
		names := env.Scope.ChannelNames()
		if len(names) != 1 || (i > 0 && names[0] != ch) {
			return "", false
		}
		ch = names[0]
	}
	return ch, true
}

func (n *Node) dispatch(env domain.Envelope, b *Batch) {
	for _, r := range env.Revoke {
		n.Revoke(r.Member, r.Channel)
	}
	for _, ch := range env.Scope.ChannelNames() {
		m := message(env, ch, b)
		processTap.delivered(n.Hub, &env, m, n.Publish(m))
	}
}

// message is env's publication on ch, with the stream offset the relay's
// history gave it there (see Pipeline.Keep).
func message(env domain.Envelope, ch string, b *Batch) *Message {
	m := &Message{Channel: ch, Event: env.Name, Data: env.Data, ID: env.ID, ExceptConn: env.Except, Tags: env.Tags, batch: b}
	if len(env.Streams) > 0 {
		m.Offset, m.Epoch = env.StreamOffset(ch)
	}
	return m
}

// OnRevoke registers fn to be told that userID lost the right to read
// channel (e.g. removed from a chat room); adapters drop such subscriptions.
func (n *Node) OnRevoke(fn func(userID, channel string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.disconnects = append(n.disconnects, fn)
}

// Revoke tells every adapter that userID may no longer read channel.
func (n *Node) Revoke(userID, channel string) {
	n.mu.RLock()
	fns := n.disconnects
	n.mu.RUnlock()
	for _, fn := range fns {
		fn(userID, channel)
	}
}
