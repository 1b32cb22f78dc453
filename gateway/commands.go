package gateway

import (
	"encoding/json"
	"sync"
)

// Commands are instructions about connections, as opposed to publications:
// "close user 42's connections", "subscribe user 42's connections to
// news". A connection lives on one node, and the caller (a server API
// request) reaches any node, so a command runs on this node at once and,
// in cluster mode, on every other node through the peers bus (peers.go).
// Like everything on the bus it is at-most-once: a node that is down
// has no connections to act on, and one cut off from NATS is forgotten by
// the others after PeerTTL.
//
// Commands are not publications: they never go through the outbox, carry
// no offset and are not replayed after a restart (the connections they
// were about are gone by then).

// commands is the node's table of command handlers.
type commands struct {
	mu sync.RWMutex
	fn map[string][]func(body json.RawMessage)
}

// OnCommand registers fn for commands of kind, from this node and (in
// cluster mode) from every other node. Kinds are namespaced by their owner
// ("centrifugo.subscribe"); fn runs on the caller's goroutine or the bus's
// and must not block. Call before serving.
func (n *Node) OnCommand(kind string, fn func(body json.RawMessage)) {
	n.cmds.mu.Lock()
	defer n.cmds.mu.Unlock()
	if n.cmds.fn == nil {
		n.cmds.fn = map[string][]func(json.RawMessage){}
	}
	n.cmds.fn[kind] = append(n.cmds.fn[kind], fn)
}

// Command runs kind's handlers on this node (before it returns) and sends
// the command to the other nodes of the cluster.
func (n *Node) Command(kind string, body json.RawMessage) {
	n.runCommand(kind, body)
	if n.Peers != nil {
		n.Peers.command(kind, body)
	}
}

// runCommand runs the handlers this node registered for kind.
func (n *Node) runCommand(kind string, body json.RawMessage) {
	n.cmds.mu.RLock()
	fns := n.cmds.fn[kind]
	n.cmds.mu.RUnlock()
	for _, fn := range fns {
		fn(body)
	}
}
