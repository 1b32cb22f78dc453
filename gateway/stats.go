package gateway

import (
	"context"
	"errors"
	"log/slog"
	"os"
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
type Stats struct {
	slowCuts [numProtocols]atomic.Uint64
}

// SlowConsumerCuts is how many connections of protocol p were cut because
// they could not keep up: their send queue overflowed or a write timed out.
func (s *Stats) SlowConsumerCuts(p Protocol) uint64 {
	if p >= numProtocols {
		return 0
	}
	return s.slowCuts[p].Load()
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
)

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
	if cut.Proto < numProtocols {
		n.Stats().slowCuts[cut.Proto].Add(1)
	}
	n.Log.LogAttrs(context.Background(), slog.LevelInfo, "slow consumer cut",
		slog.String("proto", cut.Proto.String()),
		slog.String("conn", cut.Conn),
		slog.String("user", cut.User),
		slog.Int("queued_bytes", cut.Queued),
		slog.String("cause", cut.Cause.String()))
}

// IsWriteTimeout reports whether err, from a Writer's OnError, is a write
// that timed out (a client that stopped reading) rather than a connection
// the peer already closed.
func IsWriteTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
