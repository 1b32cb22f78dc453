package console

import (
	"encoding/json"
	"sync"
	"time"

	"switchboard/gateway"
)

// In cluster mode every node delivers every event to its own connections,
// and connections, subscriptions and auth failures happen on the node the
// client is connected to. So a console shows the whole cluster by asking
// the other nodes for their lines: while a page is open on a node, that
// node sends a "watch" lease on the console bus every leaseEvery; a node
// that holds a lease turns its tap on and sends its lines (batched every
// forwardEvery) and its state (every leaseEvery). Once the page closes,
// the leases run out after leaseTTL and every tap turns off again.
//
// What a page sees is what reached the bus: a node cut off from NATS is
// missing from the log and, after stateTTL, from the overview's nodes.

const (
	leaseEvery   = 2 * time.Second
	leaseTTL     = 3 * leaseEvery
	forwardEvery = 100 * time.Millisecond
	// forwardMax bounds one node's lines per batch (NATS's default
	// message limit is 1 MB); past it lines are dropped and counted.
	forwardMax = 256 << 10
	stateTTL   = leaseTTL
)

// busMsg is a console bus message.
type busMsg struct {
	Node string `json:"n"`
	// Kind: "watch" (a lease), "lines", "state".
	Kind    string            `json:"k"`
	Lines   []json.RawMessage `json:"l,omitempty"`
	Dropped uint64            `json:"d,omitempty"`
	State   *NodeState        `json:"s,omitempty"`
}

type cluster struct {
	c    *Console
	bus  gateway.Bus
	self string

	mu         sync.Mutex
	out        []json.RawMessage // lines waiting for the next batch
	outBytes   int
	outDropped uint64
	nodes      map[string]remoteNode

	kickc chan struct{} // a page opened here: lease the other nodes now
	stopc chan struct{}
	done  chan struct{}
}

type remoteNode struct {
	state NodeState
	seen  time.Time
}

func newCluster(c *Console, bus gateway.Bus) *cluster {
	return &cluster{c: c, bus: bus, self: c.cfg.NodeID, nodes: map[string]remoteNode{},
		kickc: make(chan struct{}, 1), stopc: make(chan struct{}), done: make(chan struct{})}
}

func (cl *cluster) start() error {
	if err := cl.bus.Subscribe(cl.receive); err != nil {
		return err
	}
	go cl.run()
	return nil
}

// kick asks for a lease at once (a page opened), not at the next tick.
func (cl *cluster) kick() {
	select {
	case cl.kickc <- struct{}{}:
	default:
	}
}

func (cl *cluster) stop() {
	close(cl.stopc)
	<-cl.done
}

func (cl *cluster) run() {
	defer close(cl.done)
	lease := time.NewTicker(leaseEvery)
	defer lease.Stop()
	flush := time.NewTicker(forwardEvery)
	defer flush.Stop()
	for {
		select {
		case <-cl.stopc:
			return
		case <-cl.kickc:
			cl.send(busMsg{Kind: "watch"})
		case <-lease.C:
			streams, on := cl.c.feed.watching()
			if streams > 0 {
				cl.send(busMsg{Kind: "watch"})
			}
			if on {
				st := cl.c.nodeState()
				cl.send(busMsg{Kind: "state", State: &st})
			}
			cl.c.feed.expire()
			cl.forget(cl.c.cfg.Now())
		case <-flush.C:
			cl.flush()
		}
	}
}

func (cl *cluster) send(m busMsg) {
	m.Node = cl.self
	b, err := json.Marshal(m)
	if err != nil {
		cl.c.cfg.Logger.Error("console: cluster: encode", "kind", m.Kind, "err", err)
		return
	}
	if err := cl.bus.Publish(b); err != nil {
		cl.c.cfg.Logger.Debug("console: cluster: publish", "kind", m.Kind, "err", err)
	}
}

// receive handles another node's message (the bus echoes ours: skipped).
func (cl *cluster) receive(data []byte) {
	var m busMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Node == "" || m.Node == cl.self {
		return
	}
	now := cl.c.cfg.Now()
	switch m.Kind {
	case "watch":
		if started := cl.c.feed.leaseUntil(now.Add(leaseTTL), cl.queue); started {
			// The page there lists this node at once, not after a tick.
			st := cl.c.nodeState()
			cl.send(busMsg{Kind: "state", State: &st})
		}
	case "lines":
		if streams, _ := cl.c.feed.watching(); streams == 0 {
			return
		}
		for _, l := range m.Lines {
			if len(l) > 2 && l[0] == '{' {
				cl.c.feed.add(l, false)
			}
		}
		if m.Dropped > 0 {
			var dl LogLine
			_ = json.Unmarshal(droppedLine(m.Dropped, now), &dl)
			dl.Node = m.Node
			b, _ := json.Marshal(dl)
			cl.c.feed.add(b, false)
		}
	case "state":
		if m.State == nil {
			return
		}
		m.State.ID = m.Node
		cl.mu.Lock()
		cl.nodes[m.Node] = remoteNode{state: *m.State, seen: now}
		cl.mu.Unlock()
	}
}

// queue takes one of this node's lines for the other nodes' consoles. The
// feed calls it under its lock: it must not block.
func (cl *cluster) queue(b []byte) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.outBytes+len(b) > forwardMax {
		cl.outDropped++
		return
	}
	cl.out = append(cl.out, b)
	cl.outBytes += len(b)
}

func (cl *cluster) flush() {
	cl.mu.Lock()
	lines, dropped := cl.out, cl.outDropped
	cl.out, cl.outBytes, cl.outDropped = nil, 0, 0
	cl.mu.Unlock()
	if len(lines) == 0 && dropped == 0 {
		return
	}
	cl.send(busMsg{Kind: "lines", Lines: lines, Dropped: dropped})
}

// forget drops the nodes not heard from for stateTTL.
func (cl *cluster) forget(now time.Time) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for id, n := range cl.nodes {
		if now.Sub(n.seen) > stateTTL {
			delete(cl.nodes, id)
		}
	}
}

// remote returns the other nodes' last states, with how long ago each was
// heard from.
func (cl *cluster) remote(now time.Time) []NodeState {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := make([]NodeState, 0, len(cl.nodes))
	for _, n := range cl.nodes {
		st := n.state
		st.SeenMS = now.Sub(n.seen).Milliseconds()
		out = append(out, st)
	}
	return out
}
