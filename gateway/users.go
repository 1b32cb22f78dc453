package gateway

import "sync"

// DefaultMaxConnsPerUser is the seed's "Connections: Max 100 per user".
const DefaultMaxConnsPerUser = 100

// UserConns counts each user's connections across all protocols, so one
// limit holds whichever front door a client uses.
type UserConns struct {
	mu    sync.Mutex
	max   int
	conns map[string]map[string]struct{} // user → conn ids
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
	if len(cs) >= max {
		return false
	}
	if cs == nil {
		cs = map[string]struct{}{}
		u.conns[userID] = cs
	}
	cs[connID] = struct{}{}
	return true
}

// Release forgets connID for userID.
func (u *UserConns) Release(userID, connID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if cs := u.conns[userID]; cs != nil {
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
	return len(u.conns[userID])
}
