package gateway

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Bus carries small messages between the nodes of a cluster, to every node
// but the sender (NATS core subject in cluster mode, see broker_nats.go).
// What must not be lost goes through the outbox and the broker instead;
// the bus carries what lives only as long as connections do.
type Bus interface {
	Publish(data []byte) error
	Subscribe(fn func(data []byte)) error
}

// Peers is a node's view of the other nodes of its cluster: the presence
// members and per-user connection counts each of them holds, kept from the
// changes they announce (in sequence; a gap or an unknown node asks that
// node for its whole state), and forgotten when a node has not been heard
// for TTL (it died). It also relays client-originated publications (Pusher
// client events, ActionCable perform) and commands about connections
// (Node.Command: disconnect a user, server-side subscriptions) to the
// other nodes.
//
// Why a view rather than a shared store: every question an adapter asks
// (is this user's connection the first on the channel, how many
// connections has the user) is answered from memory, as on a single node,
// and a dead node's entries vanish with its heartbeats, without cleanup.
type Peers struct {
	self string
	bus  Bus
	log  *slog.Logger
	ttl  time.Duration

	// snapshot returns this node's presence and user counts with the
	// sequence they include; set by EnableCluster.
	snapshot func() peerSnap
	// localHas reports whether user is on hub through this node.
	localHas func(hub, user string) bool

	mu     sync.Mutex
	seq    uint64 // this node's last announced change
	nodes  map[string]*peer
	asked  map[string]time.Time // last sync request per node
	stop   chan struct{}
	closer sync.Once

	// onPresence is told of every remote connection joining or leaving a
	// presence channel; userChanged says the user's cluster-wide presence
	// on hub changed with it (first connection in, last one out).
	onPresence func(hub, conn string, m Member, joined, userChanged bool)
	onPublish  func(m *Message)
	// onCommand runs another node's command (Node.Command) here.
	onCommand func(kind string, body json.RawMessage)
	// onOccupancy is told that key's cluster count moved (another node).
	onOccupancy func(key string, before, after int)
	// localOcc is this node's own count of key.
	localOcc func(key string) int
	// gone holds back the last departures for PresenceGrace.
	gone *departures
}

type peer struct {
	seen     time.Time
	seq      uint64
	synced   bool
	presence map[string]map[string]Member // hub channel → conn id → member
	users    map[string]int               // user id → connections
	occ      map[string]int               // occupancy key → subscriptions
}

// PeerTTL is how long a silent node's connections and presence survive it.
const PeerTTL = 5 * time.Second

// peerBeat is the heartbeat period.
const peerBeat = time.Second

type peerMsg struct {
	Node    string          `json:"n"`
	Kind    string          `json:"k"`
	Seq     uint64          `json:"s,omitempty"`
	To      string          `json:"to,omitempty"`
	Channel string          `json:"c,omitempty"`
	Conn    string          `json:"i,omitempty"`
	User    string          `json:"u,omitempty"`
	Delta   int             `json:"d,omitempty"`
	Member  *Member         `json:"m,omitempty"`
	Pub     *peerPub        `json:"p,omitempty"`
	Snap    *peerSnap       `json:"snap,omitempty"`
	Cmd     string          `json:"cmd,omitempty"`
	Body    json.RawMessage `json:"b,omitempty"`
}

type peerPub struct {
	Channel    string            `json:"c"`
	Event      string            `json:"e"`
	Data       json.RawMessage   `json:"d"`
	ExceptConn string            `json:"x,omitempty"`
	Tags       map[string]string `json:"t,omitempty"`
	From       *ClientInfo       `json:"f,omitempty"`
}

type peerSnap struct {
	Seq      uint64                       `json:"seq"`
	Presence map[string]map[string]Member `json:"presence,omitempty"`
	Users    map[string]int               `json:"users,omitempty"`
	Occ      map[string]int               `json:"occ,omitempty"`
}

func newPeers(self string, bus Bus, log *slog.Logger) *Peers {
	return &Peers{self: self, bus: bus, log: log, ttl: PeerTTL, nodes: map[string]*peer{},
		asked: map[string]time.Time{}, stop: make(chan struct{})}
}

func (p *Peers) send(m peerMsg) {
	m.Node = p.self
	b, err := json.Marshal(m)
	if err != nil {
		p.log.Error("cluster: encode", "kind", m.Kind, "err", err)
		return
	}
	if err := p.bus.Publish(b); err != nil {
		p.log.Debug("cluster: publish", "kind", m.Kind, "err", err)
	}
}

// change announces one change of this node's state; the caller holds the
// lock of the state it changed, so changes go out in the order they happen.
func (p *Peers) change(m peerMsg) {
	p.mu.Lock()
	p.seq++
	m.Seq = p.seq
	p.mu.Unlock()
	p.send(m)
}

func (p *Peers) joined(hub, conn string, m Member) {
	p.change(peerMsg{Kind: "join", Channel: hub, Conn: conn, Member: &m})
}

func (p *Peers) left(hub, conn string) { p.change(peerMsg{Kind: "leave", Channel: hub, Conn: conn}) }

func (p *Peers) userDelta(user string, d int) { p.change(peerMsg{Kind: "user", User: user, Delta: d}) }

func (p *Peers) occupancyDelta(key string, d int) {
	p.change(peerMsg{Kind: "occ", Channel: key, Delta: d})
}

// publish relays a client-originated publication to the other nodes.
func (p *Peers) publish(m *Message) {
	p.send(peerMsg{Kind: "pub", Pub: &peerPub{Channel: m.Channel, Event: m.Event, Data: m.Data,
		ExceptConn: m.ExceptConn, Tags: m.Tags, From: m.From}})
}

// command relays a command (Node.Command) to the other nodes.
func (p *Peers) command(kind string, body json.RawMessage) {
	p.send(peerMsg{Kind: "cmd", Cmd: kind, Body: body})
}

// start subscribes to the bus, asks every node for its state and beats.
func (p *Peers) start() error {
	if err := p.bus.Subscribe(p.receive); err != nil {
		return err
	}
	p.send(peerMsg{Kind: "sync"})
	go p.beat()
	return nil
}

// close stops the heartbeats and tells the other nodes this one is gone.
func (p *Peers) close() {
	p.closer.Do(func() {
		close(p.stop)
		p.send(peerMsg{Kind: "bye"})
	})
}

func (p *Peers) beat() {
	t := time.NewTicker(peerBeat)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		seq := p.seq
		p.mu.Unlock()
		p.send(peerMsg{Kind: "hb", Seq: seq})
		p.expire(time.Now())
	}
}

// expire forgets nodes not heard for TTL, announcing the members that
// left with them.
func (p *Peers) expire(now time.Time) {
	p.mu.Lock()
	var dead []*peer
	for id, n := range p.nodes {
		if now.Sub(n.seen) > p.ttl {
			p.log.Warn("cluster: node silent; forgetting its connections and presence", "node", id, "silent", now.Sub(n.seen).Round(time.Millisecond))
			dead = append(dead, n)
			delete(p.nodes, id)
		}
	}
	p.mu.Unlock()
	p.dropped(dead)
}

// forget drops a node that said goodbye.
func (p *Peers) forget(id string) {
	p.mu.Lock()
	n := p.nodes[id]
	delete(p.nodes, id)
	p.mu.Unlock()
	if n != nil {
		p.dropped([]*peer{n})
	}
}

func (p *Peers) dropped(dead []*peer) {
	for _, n := range dead {
		p.occupancyMoved(n.occ, nil)
	}
	// No grace here: the node has been silent for PeerTTL already, and its
	// users' clients have reconnected elsewhere by then if they could.
	for _, n := range dead {
		for hub, conns := range n.presence {
			for conn, m := range conns {
				if p.onPresence != nil {
					p.onPresence(hub, conn, m, false, !p.presentAnywhere(hub, m.UserID))
				}
			}
		}
	}
}

// announceLeave tells the adapters that a remote connection left hub; the
// user's departure itself waits for the grace (departures).
func (p *Peers) announceLeave(hub, conn string, m Member) {
	if p.onPresence == nil {
		return
	}
	gone := !p.presentAnywhere(hub, m.UserID)
	if gone && p.gone != nil {
		p.gone.leave(hub, conn, m)
		gone = false
	}
	p.onPresence(hub, conn, m, false, gone)
}

// announceJoin tells the adapters that a remote connection joined hub;
// was says whether the user was on hub anywhere before.
func (p *Peers) announceJoin(hub, conn string, m Member, was bool) {
	if p.onPresence == nil {
		return
	}
	if !was && p.gone != nil && p.gone.rejoin(hub, m.UserID) {
		was = true // back within the grace: never left
	}
	p.onPresence(hub, conn, m, true, !was)
}

// presentAnywhere reports whether user is on hub on this node or another.
func (p *Peers) presentAnywhere(hub, user string) bool {
	if p.remoteHasUser(hub, user) {
		return true
	}
	return p.localHas != nil && p.localHas(hub, user)
}

func (p *Peers) receive(data []byte) {
	select {
	case <-p.stop:
		return // closed: this node is leaving
	default:
	}
	var m peerMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Node == "" || m.Node == p.self {
		return
	}
	now := time.Now()
	switch m.Kind {
	case "pub":
		p.touch(m.Node, now)
		if m.Pub != nil && p.onPublish != nil {
			p.onPublish(&Message{Channel: m.Pub.Channel, Event: m.Pub.Event, Data: m.Pub.Data,
				ExceptConn: m.Pub.ExceptConn, Tags: m.Pub.Tags, From: m.Pub.From})
		}
	case "cmd":
		p.touch(m.Node, now)
		if m.Cmd != "" && p.onCommand != nil {
			p.onCommand(m.Cmd, m.Body)
		}
	case "sync":
		if m.To == "" || m.To == p.self {
			snap := p.snapshot()
			p.send(peerMsg{Kind: "snap", Seq: snap.Seq, Snap: &snap})
		}
	case "hb":
		n := p.touch(m.Node, now)
		p.mu.Lock()
		stale := !n.synced || n.seq != m.Seq
		p.mu.Unlock()
		if stale {
			p.askSync(m.Node, now)
		}
	case "snap":
		if m.Snap != nil {
			p.applySnap(m.Node, *m.Snap, now)
		}
	case "join", "leave", "user", "occ":
		p.applyChange(m, now)
	case "bye":
		p.forget(m.Node)
	}
}

func (p *Peers) touch(id string, now time.Time) *peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.nodes[id]
	if n == nil {
		n = &peer{presence: map[string]map[string]Member{}, users: map[string]int{}, occ: map[string]int{}}
		p.nodes[id] = n
	}
	n.seen = now
	return n
}

func (p *Peers) askSync(id string, now time.Time) {
	p.mu.Lock()
	last := p.asked[id]
	ask := now.Sub(last) >= peerBeat/2
	if ask {
		p.asked[id] = now
	}
	p.mu.Unlock()
	if ask {
		p.send(peerMsg{Kind: "sync", To: id})
	}
}

func (p *Peers) applyChange(m peerMsg, now time.Time) {
	n := p.touch(m.Node, now)
	p.mu.Lock()
	if !n.synced || m.Seq != n.seq+1 {
		p.mu.Unlock()
		if m.Seq > n.seq {
			p.askSync(m.Node, now)
		}
		return
	}
	n.seq = m.Seq
	p.mu.Unlock()
	switch m.Kind {
	case "occ":
		before := p.occupancyTotal(m.Channel)
		p.mu.Lock()
		n.occ[m.Channel] += m.Delta
		if n.occ[m.Channel] <= 0 {
			delete(n.occ, m.Channel)
		}
		p.mu.Unlock()
		if p.onOccupancy != nil {
			p.onOccupancy(m.Channel, before, p.occupancyTotal(m.Channel))
		}
	case "user":
		p.mu.Lock()
		n.users[m.User] += m.Delta
		if n.users[m.User] <= 0 {
			delete(n.users, m.User)
		}
		p.mu.Unlock()
	case "join":
		if m.Member == nil {
			return
		}
		was := p.presentAnywhere(m.Channel, m.Member.UserID)
		p.mu.Lock()
		cs := n.presence[m.Channel]
		if cs == nil {
			cs = map[string]Member{}
			n.presence[m.Channel] = cs
		}
		cs[m.Conn] = *m.Member
		p.mu.Unlock()
		p.announceJoin(m.Channel, m.Conn, *m.Member, was)
	case "leave":
		p.mu.Lock()
		mem, ok := n.presence[m.Channel][m.Conn]
		if ok {
			delete(n.presence[m.Channel], m.Conn)
			if len(n.presence[m.Channel]) == 0 {
				delete(n.presence, m.Channel)
			}
		}
		p.mu.Unlock()
		if ok {
			p.announceLeave(m.Channel, m.Conn, mem)
		}
	}
}

func (p *Peers) applySnap(id string, s peerSnap, now time.Time) {
	n := p.touch(id, now)
	p.mu.Lock()
	if n.synced && s.Seq < n.seq {
		p.mu.Unlock()
		return // an older answer
	}
	old, oldOcc := n.presence, n.occ
	if s.Occ == nil {
		s.Occ = map[string]int{}
	}
	if s.Presence == nil {
		s.Presence = map[string]map[string]Member{}
	}
	if s.Users == nil {
		s.Users = map[string]int{}
	}
	n.presence, n.users, n.occ, n.seq, n.synced = s.Presence, s.Users, s.Occ, s.Seq, true
	p.mu.Unlock()
	p.occupancyMoved(oldOcc, s.Occ)
	if p.onPresence == nil {
		return
	}
	// Announce what the snapshot changed (a node seen for the first time,
	// or changes missed in a gap).
	for hub, conns := range s.Presence {
		for conn, m := range conns {
			if _, had := old[hub][conn]; !had {
				p.announceJoin(hub, conn, m, p.userElsewhere(hub, m.UserID, id, old))
			}
		}
	}
	for hub, conns := range old {
		for conn, m := range conns {
			if _, has := s.Presence[hub][conn]; !has {
				p.announceLeave(hub, conn, m)
			}
		}
	}
}

// userElsewhere reports whether user was on hub before a snapshot of node
// id replaced its old entries: on this node, on another node, or in old.
func (p *Peers) userElsewhere(hub, user, id string, old map[string]map[string]Member) bool {
	for _, m := range old[hub] {
		if m.UserID == user {
			return true
		}
	}
	if p.localHas != nil && p.localHas(hub, user) {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for nid, n := range p.nodes {
		if nid == id {
			continue
		}
		for _, m := range n.presence[hub] {
			if m.UserID == user {
				return true
			}
		}
	}
	return false
}

func (p *Peers) remoteHasUser(hub, user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.nodes {
		for _, m := range n.presence[hub] {
			if m.UserID == user {
				return true
			}
		}
	}
	return false
}

// remoteMembers returns the other nodes' connections on hub, keyed by
// "node/conn".
func (p *Peers) remoteMembers(hub string) map[string]Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Member{}
	for id, n := range p.nodes {
		for conn, m := range n.presence[hub] {
			out[id+"/"+conn] = m
		}
	}
	return out
}

// occupancyMoved tells the occupancy of keys whose remote counts went
// from old to now (a snapshot, or a node forgotten).
func (p *Peers) occupancyMoved(old, now map[string]int) {
	if p.onOccupancy == nil {
		return
	}
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	for k := range keys {
		after := p.occupancyTotal(k)
		p.onOccupancy(k, after-now[k]+old[k], after)
	}
}

// occupancyTotal is key's count in the cluster: this node's and others'.
func (p *Peers) occupancyTotal(key string) int {
	n := p.remoteOccupancy(key)
	if p.localOcc != nil {
		n += p.localOcc(key)
	}
	return n
}

func (p *Peers) remoteOccupancy(key string) int {
	return p.remoteSum(func(n *peer) int { return n.occ[key] })
}

// remoteSum adds up one count over the other nodes.
func (p *Peers) remoteSum(count func(*peer) int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for _, n := range p.nodes {
		total += count(n)
	}
	return total
}

func (p *Peers) remoteOccupied(prefix string) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for _, n := range p.nodes {
		for k, c := range n.occ {
			if strings.HasPrefix(k, prefix) {
				out[k] += c
			}
		}
	}
	return out
}

// remoteUserConns is the number of user's connections on other nodes.
func (p *Peers) remoteUserConns(user string) int {
	return p.remoteSum(func(n *peer) int { return n.users[user] })
}
