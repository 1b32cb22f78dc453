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
	conns map[string]idSet // user → conn ids
	peers *Peers           // nil on a single node
}

// NewUserConns returns a counter allowing max connections per user (zero
// means DefaultMaxConnsPerUser).
func NewUserConns(max int) *UserConns {
	if max <= 0 {
		max = DefaultMaxConnsPerUser
	}
	return &UserConns{max: max, conns: map[string]idSet{}}
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
	if cs.has(connID) {
		return true
	}
	n := cs.len()
	if u.peers != nil {
		n += u.peers.remoteUserConns(userID)
	}
	if n >= max {
		return false
	}
	cs.add(connID)
	u.conns[userID] = cs
	if u.peers != nil {
		u.peers.userDelta(userID, 1)
	}
	return true
}

// Release forgets connID for userID.
func (u *UserConns) Release(userID, connID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cs, ok := u.conns[userID]
	if !ok || !cs.remove(connID) {
		return
	}
	if u.peers != nil {
		u.peers.userDelta(userID, -1)
	}
	if cs.len() == 0 {
		delete(u.conns, userID)
	} else {
		u.conns[userID] = cs
	}
}

// Count is the number of connections of userID.
func (u *UserConns) Count(userID string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	cs := u.conns[userID]
	n := cs.len()
	if u.peers != nil {
		n += u.peers.remoteUserConns(userID)
	}
	return n
}

// snapshot copies this node's connection counts per user.
func (u *UserConns) snapshot() map[string]int {
	out := make(map[string]int, len(u.conns))
	for user, cs := range u.conns {
		out[user] = cs.len()
	}
	return out
}
