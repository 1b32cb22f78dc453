package gateway

import "sync"

// DefaultMaxConnsPerUser is the seed's "Connections: Max 100 per user".
const DefaultMaxConnsPerUser = 100

// UserConns counts each user's connections across all protocols, so one
// limit holds whichever front door a client uses.
//
// In cluster mode (Node.EnableCluster) the limit counts the user's
// connections on every node (peers.go).
type UserConns struct {
	mu    sync.Mutex
	max   int
	conns map[string]map[string]struct{} // user → conn ids
	peers *Peers                         // nil on a single node
}

// NewUserConns returns a counter allowing max connections per user (zero
// means DefaultMaxConnsPerUser).
func NewUserConns(max int) *UserConns {
	if max <= 0 {
		max = DefaultMaxConnsPerUser
	}
	return &UserConns{max: max, conns: map[string]map[string]struct{}{}}
}

// Acquire attributes connID to userID. It reports false, and records
// nothing, when the user already has the maximum. Acquiring twice is fine.
func (u *UserConns) Acquire(userID, connID string) bool {
	return u.AcquireMax(userID, connID, u.max)
}

// AcquireMax is Acquire with a per-call limit (per-app limits).
func (u *UserConns) AcquireMax(userID, connID string, max int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	cs := u.conns[userID]
	if _, ok := cs[connID]; ok {
		return true
	}
	n := len(cs)
	if u.peers != nil {
		n += u.peers.remoteUserConns(userID)
	}
	if n >= max {
		return false
	}
	if cs == nil {
		cs = map[string]struct{}{}
		u.conns[userID] = cs
	}
	cs[connID] = struct{}{}
	if u.peers != nil {
		u.peers.userDelta(userID, 1)
	}
	return true
}

// Release forgets connID for userID.
func (u *UserConns) Release(userID, connID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if cs := u.conns[userID]; cs != nil {
		if _, ok := cs[connID]; ok && u.peers != nil {
			u.peers.userDelta(userID, -1)
		}
		delete(cs, connID)
		if len(cs) == 0 {
			delete(u.conns, userID)
		}
	}
}

// Count is the number of connections of userID.
func (u *UserConns) Count(userID string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := len(u.conns[userID])
	if u.peers != nil {
		n += u.peers.remoteUserConns(userID)
	}
	return n
}

// snapshot copies this node's connection counts per user.
func (u *UserConns) snapshot() map[string]int {
	out := make(map[string]int, len(u.conns))
	for user, cs := range u.conns {
		out[user] = len(cs)
	}
	return out
}
