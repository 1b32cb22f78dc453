package gateway

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Protocol names one of the gateway's wire protocols, for counters kept per
// protocol.
type Protocol uint8

// The protocols, in the order counters are kept.
const (
	ProtoPusher Protocol = iota
	ProtoCentrifuge
	ProtoActionCable
	numProtocols
)

var protocolNames = [numProtocols]string{"pusher", "centrifuge", "actioncable"}

// String is the protocol's name as the adapters' log lines spell it
// ("proto" attribute).
func (p Protocol) String() string {
	if p < numProtocols {
		return protocolNames[p]
	}
	return "unknown"
}

// Protocols lists every protocol, for an exporter that walks the counters.
func Protocols() []Protocol { return []Protocol{ProtoPusher, ProtoCentrifuge, ProtoActionCable} }

// Stats are the gateway's event counters, for a metrics exporter to read.
// They hold plain numbers of this process only (cluster-wide sums are the
// exporter's job) and are updated only when the counted thing happens,
// never per message: a counter must not add a shared cache line to the
// fan-out. The zero value is ready; all methods are safe for concurrent
// use.
//
// What is counted per message (deliveries, bytes sent) is not here: each
// connection's Writer counts its own under the lock it already holds, and
// Traffic sums the live connections' counters with those of the closed
// ones when it is read (at scrape time, not on the fan-out).
type Stats struct {
	slowCuts     [numProtocols][numCutCauses]atomic.Uint64
	connects     [numProtocols]atomic.Uint64
	disconnects  [numProtocols]atomic.Uint64
	clientEvents [numProtocols]atomic.Uint64
	authFailures [numProtocols][numDoors]atomic.Uint64

	mu   sync.Mutex
	live [numProtocols]map[*Writer]struct{} // registered connections' writers
	// gone is the traffic of connections that ended, folded in at the
	// disconnect so the totals never go down.
	gone [numProtocols]Traffic
}

// SlowConsumerCuts is how many connections of protocol p were cut because
// they could not keep up: their send queue overflowed or a write timed out.
func (s *Stats) SlowConsumerCuts(p Protocol) uint64 {
	if p >= numProtocols {
		return 0
	}
	var n uint64
	for i := range s.slowCuts[p] {
		n += s.slowCuts[p][i].Load()
	}
	return n
}

// SlowConsumerCutsBy is SlowConsumerCuts for one cause.
func (s *Stats) SlowConsumerCutsBy(p Protocol, c CutCause) uint64 {
	if p >= numProtocols || c >= numCutCauses {
		return 0
	}
	return s.slowCuts[p][c].Load()
}

// Connects and Disconnects are how many connections of protocol p were
// registered (upgraded and accepted) and how many of those ended.
func (s *Stats) Connects(p Protocol) uint64 {
	if p >= numProtocols {
		return 0
	}
	return s.connects[p].Load()
}

// Disconnects: see Connects.
func (s *Stats) Disconnects(p Protocol) uint64 {
	if p >= numProtocols {
		return 0
	}
	return s.disconnects[p].Load()
}

// ClientEvents is how many client-originated publications of protocol p
// were accepted (Pusher client-* events, Centrifugo publishes, ActionCable
// perform).
func (s *Stats) ClientEvents(p Protocol) uint64 {
	if p >= numProtocols {
		return 0
	}
	return s.clientEvents[p].Load()
}

// AuthFailures is how many times protocol p refused a credential at door d.
func (s *Stats) AuthFailures(p Protocol, d Door) uint64 {
	if p >= numProtocols || d >= numDoors {
		return 0
	}
	return s.authFailures[p][d].Load()
}

// Traffic is what a protocol's connections were sent.
type Traffic struct {
	// Deliveries are publications queued to a connection: one per event
	// per subscribed connection (control frames and replies excluded).
	Deliveries uint64
	// Bytes are the bytes the sockets took, every frame included.
	Bytes uint64
}

// Connections is the number of live registered connections of protocol p.
func (s *Stats) Connections(p Protocol) int {
	if p >= numProtocols {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live[p])
}

// Traffic sums what protocol p's connections, live and ended, were sent.
// It visits every live connection's writer (a lock each), so it is for a
// scrape every few seconds, not for a hot path.
func (s *Stats) Traffic(p Protocol) Traffic {
	if p >= numProtocols {
		return Traffic{}
	}
	s.mu.Lock()
	t := s.gone[p]
	ws := make([]*Writer, 0, len(s.live[p]))
	for w := range s.live[p] {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	// t copied gone under the lock that listed the live writers: a
	// connection ending meanwhile is counted once, through its writer here
	// (what closed adds to gone later is not in t).
	for _, w := range ws {
		c := w.Counts()
		t.Deliveries += c.Deliveries
		t.Bytes += c.Bytes
	}
	return t
}

// opened counts a registered connection of protocol p writing through w.
func (s *Stats) opened(p Protocol, w *Writer) {
	if p >= numProtocols {
		return
	}
	s.connects[p].Add(1)
	if w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[p] == nil {
		s.live[p] = map[*Writer]struct{}{}
	}
	s.live[p][w] = struct{}{}
}

// closed counts the end of a connection opened with w and keeps its
// traffic.
func (s *Stats) closed(p Protocol, w *Writer) {
	if p >= numProtocols {
		return
	}
	s.disconnects[p].Add(1)
	if w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[p][w]; !ok {
		return
	}
	delete(s.live[p], w)
	c := w.Counts()
	s.gone[p].Deliveries += c.Deliveries
	s.gone[p].Bytes += c.Bytes
}

// processStats are the counters of this process. A node has no field of its
// own for them yet, so every node of a process shares these; production runs
// one node per process (one node per database), so they are the node's.
// Tests that run several nodes at once see their sum and assert deltas.
var processStats Stats

// Stats returns the node's counters (see processStats: today the process's).
func (n *Node) Stats() *Stats { return &processStats }

// CutCause is why a slow consumer was cut.
type CutCause uint8

// Causes of a slow consumer cut.
const (
	// CutQueueFull: the connection's send queue overflowed (its protocol's
	// reconnect close code follows).
	CutQueueFull CutCause = iota
	// CutWriteTimeout: one write waited longer than the write timeout (the
	// socket is dropped without a close frame; nothing can be written).
	CutWriteTimeout
	numCutCauses
)

// CutCauses lists every cause, for an exporter that walks the counters.
func CutCauses() []CutCause { return []CutCause{CutQueueFull, CutWriteTimeout} }

func (c CutCause) String() string {
	if c == CutWriteTimeout {
		return "write_timeout"
	}
	return "queue_full"
}

// SlowCut describes one connection cut because it could not keep up.
type SlowCut struct {
	Proto Protocol
	Cause CutCause
	// Conn is the connection's id (Pusher socket id, Centrifugo client id,
	// ActionCable connection id).
	Conn string
	// User is who the connection belongs to: the identified or signed-in
	// user, "" for an anonymous connection.
	User string
	// Queued is the writer's backlog at the cut, in bytes (see
	// WriterConfig.OnSlow).
	Queued int
}

// ReportSlowConsumer counts cut and logs it once at info level: a cut is an
// expected outcome of a client on a bad network, not a server fault, but an
// operator looking for a user's "I keep getting disconnected" must find it.
// Adapters call it from WriterConfig.OnSlow, which fires once per
// connection; the line carries the same keys whatever the protocol, so one
// query finds them all.
func (n *Node) ReportSlowConsumer(cut SlowCut) {
	if cut.Proto < numProtocols && cut.Cause < numCutCauses {
		n.Stats().slowCuts[cut.Proto][cut.Cause].Add(1)
	}
	n.Log.LogAttrs(context.Background(), slog.LevelInfo, "slow consumer cut",
		slog.String("proto", cut.Proto.String()),
		slog.String("conn", cut.Conn),
		slog.String("user", cut.User),
		slog.Int("queued_bytes", cut.Queued),
		slog.String("cause", cut.Cause.String()))
}

// Door is where a credential was refused.
type Door uint8

// The doors an auth failure is counted at.
const (
	// DoorConnect: the connection's own credential (a Centrifugo
	// connection token, an ActionCable identity, a Centrifugo refresh).
	DoorConnect Door = iota
	// DoorSubscribe: a channel subscription (a Pusher channel signature, a
	// Centrifugo subscription token or permission, an ActionCable
	// reject_subscription).
	DoorSubscribe
	// DoorSignin: Pusher user authentication (pusher:signin).
	DoorSignin
	numDoors
)

var doorNames = [numDoors]string{"connect", "subscribe", "signin"}

func (d Door) String() string {
	if d < numDoors {
		return doorNames[d]
	}
	return "unknown"
}

// Doors lists every door, for an exporter that walks the counters.
func Doors() []Door { return []Door{DoorConnect, DoorSubscribe, DoorSignin} }

// AuthFailure describes one refused credential on a WebSocket. (The HTTP
// doors answer 401/403, which the HTTP request metrics count.)
type AuthFailure struct {
	Proto Protocol
	Door  Door
	// Conn, User and Remote say whose it was: the connection's id, the
	// user when known ("" otherwise), the peer's address.
	Conn, User, Remote string
	// Reason is what was wrong, for the log.
	Reason string
}

// ReportAuthFailure counts f and logs it at debug level: a refused token
// is a client's problem, usually an expired session, and at info a
// misconfigured page would flood the log; the per-minute counts (LogCounts)
// show the rate at info.
func (n *Node) ReportAuthFailure(f AuthFailure) {
	if f.Proto < numProtocols && f.Door < numDoors {
		n.Stats().authFailures[f.Proto][f.Door].Add(1)
	}
	processTap.authFailed(f)
	ctx := context.Background()
	if !n.Log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	n.Log.LogAttrs(ctx, slog.LevelDebug, "auth failure",
		slog.String("proto", f.Proto.String()),
		slog.String("door", f.Door.String()),
		slog.String("conn", f.Conn),
		slog.String("user", f.User),
		slog.String("remote", f.Remote),
		slog.String("reason", f.Reason))
}

// CountClientEvent counts one accepted client-originated publication of
// protocol p. Client events arrive one per inbound message and are rate
// limited per connection, so a shared counter costs nothing next to the
// fan-out each one causes.
func (n *Node) CountClientEvent(p Protocol) {
	if p < numProtocols {
		n.Stats().clientEvents[p].Add(1)
	}
}
