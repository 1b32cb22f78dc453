package gateway

import (
	"strings"
	"sync"
)

// OccupancyChange is a change of a channel's subscription count, in the
// whole cluster.
type OccupancyChange struct {
	Channel  string // the key adapters count under (e.g. "pusher/<app>/<name>")
	Count    int    // subscriptions now, on every node
	Occupied bool   // the first subscription: Count went from 0
	Vacated  bool   // the last one left: Count is 0
	Remote   bool   // the change happened on another node
}

// Occupancy counts subscriptions per channel key across the cluster (this
// node's own, plus what other nodes announce, see peers.go) and tells its
// listeners of every change: Pusher's subscription_count and channel info
// read it, and webhooks and metrics can listen to it.
type Occupancy struct {
	mu    sync.Mutex
	local map[string]int
	peers *Peers
	fns   []func(OccupancyChange)
}

// NewOccupancy returns an empty counter.
func NewOccupancy() *Occupancy { return &Occupancy{local: map[string]int{}} }

// OnChange registers fn; call before serving. fn must not block.
func (o *Occupancy) OnChange(fn func(OccupancyChange)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fns = append(o.fns, fn)
}

// Add changes this node's count of key by delta and returns the count in
// the cluster.
func (o *Occupancy) Add(key string, delta int) int {
	o.mu.Lock()
	before := o.local[key]
	after := max(before+delta, 0)
	if after == 0 {
		delete(o.local, key)
	} else {
		o.local[key] = after
	}
	remote := 0
	if o.peers != nil {
		remote = o.peers.remoteOccupancy(key)
		if after != before {
			o.peers.occupancyDelta(key, after-before)
		}
	}
	fns := o.fns
	o.mu.Unlock()
	if after != before {
		fire(fns, OccupancyChange{Channel: key, Count: after + remote, Occupied: before+remote == 0, Vacated: after+remote == 0})
	}
	return after + remote
}

// Count returns key's subscriptions in the cluster.
func (o *Occupancy) Count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.local[key]
	if o.peers != nil {
		n += o.peers.remoteOccupancy(key)
	}
	return n
}

// Occupied returns every key with the prefix that has subscriptions in the
// cluster, with its count.
func (o *Occupancy) Occupied(prefix string) map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, n := range o.local {
		if strings.HasPrefix(k, prefix) {
			out[k] = n
		}
	}
	if o.peers != nil {
		for k, n := range o.peers.remoteOccupied(prefix) {
			out[k] += n
		}
	}
	return out
}

// remoteChanged is called by the peers after another node's count of key
// moved from before to after (cluster totals).
func (o *Occupancy) remoteChanged(key string, before, after int) {
	if before == after {
		return
	}
	o.mu.Lock()
	fns := o.fns
	o.mu.Unlock()
	fire(fns, OccupancyChange{Channel: key, Count: after, Occupied: before == 0, Vacated: after == 0, Remote: true})
}

func (o *Occupancy) snapshot() map[string]int {
	out := make(map[string]int, len(o.local))
	for k, n := range o.local {
		out[k] = n
	}
	return out
}

func fire(fns []func(OccupancyChange), c OccupancyChange) {
	for _, fn := range fns {
		fn(c)
	}
}
