package gateway

import (
	"encoding/json"
	"sort"
	"sync"
)

// Member is a user present on a channel, with the info clients show.
type Member struct {
	UserID string          `json:"user_id"`
	Info   json.RawMessage `json:"user_info,omitempty"`
}

// Presence tracks who is on presence-enabled channels, per connection and
// deduplicated per user, for every protocol: a user with two tabs is one
// member, who joins with the first connection and leaves with the last.
//
// In cluster mode (Node.EnableCluster) it also counts the members other
// nodes announce (peers.go): first and last, Members, Clients, Count and
// HasUser then hold for the whole cluster.
type Presence struct {
	mu    sync.Mutex
	chans map[string]*presenceSet
	peers *Peers // nil on a single node
	// gone holds back the last departures for PresenceGrace (cluster mode).
	gone *departures
}

type presenceSet struct {
	conns map[string]Member         // conn id → member
	users map[string]map[string]int // user id → conn ids
}

// NewPresence returns an empty registry.
func NewPresence() *Presence { return &Presence{chans: map[string]*presenceSet{}} }

// Join records connID as m on channel. first is true when this is the
// user's first connection there (announce "member added").
func (p *Presence) Join(channel, connID string, m Member) (first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	if s == nil {
		s = &presenceSet{conns: map[string]Member{}, users: map[string]map[string]int{}}
		p.chans[channel] = s
	}
	if old, ok := s.conns[connID]; ok {
		if old.UserID == m.UserID {
			s.conns[connID] = m
			if p.peers != nil {
				p.peers.joined(channel, connID, m)
			}
			return false
		}
		p.leaveLocked(s, channel, connID)
		if p.peers != nil {
			p.peers.left(channel, connID)
		}
		if p.chans[channel] == nil {
			p.chans[channel] = s
		}
	}
	s.conns[connID] = m
	cs := s.users[m.UserID]
	if cs == nil {
		cs = map[string]int{}
		s.users[m.UserID] = cs
	}
	cs[connID]++
	first = len(cs) == 1
	if p.peers != nil {
		first = first && !p.peers.remoteHasUser(channel, m.UserID)
		p.peers.joined(channel, connID, m)
	}
	if first && p.gone != nil && p.gone.rejoin(channel, m.UserID) {
		first = false // back within the grace: never left
	}
	return first
}

// Leave forgets connID on channel. last is true when it was the user's last
// connection there (announce "member removed").
func (p *Presence) Leave(channel, connID string) (m Member, last, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	if s == nil {
		return Member{}, false, false
	}
	m, ok = s.conns[connID]
	if !ok {
		return Member{}, false, false
	}
	last = p.leaveLocked(s, channel, connID)
	if p.peers != nil {
		last = last && !p.peers.remoteHasUser(channel, m.UserID)
		p.peers.left(channel, connID)
	}
	if last && p.gone != nil {
		p.gone.leave(channel, connID, m) // announced after the grace, if still gone
		last = false
	}
	return m, last, true
}

func (p *Presence) leaveLocked(s *presenceSet, channel, connID string) (last bool) {
	m := s.conns[connID]
	delete(s.conns, connID)
	cs := s.users[m.UserID]
	delete(cs, connID)
	if len(cs) == 0 {
		delete(s.users, m.UserID)
		last = true
	}
	if len(s.conns) == 0 {
		delete(p.chans, channel)
	}
	return last
}

// Members lists the users on channel (one entry per user, the info of their
// latest connection), sorted by user id.
func (p *Presence) Members(channel string) []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	byUser := map[string]Member{}
	if p.peers != nil {
		for _, m := range p.peers.remoteMembers(channel) {
			byUser[m.UserID] = m
		}
	}
	if s != nil {
		for _, m := range s.conns {
			byUser[m.UserID] = m
		}
	}
	if len(byUser) == 0 {
		return nil
	}
	out := make([]Member, 0, len(byUser))
	for _, m := range byUser {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// Clients returns connection id → member for channel.
func (p *Presence) Clients(channel string) map[string]Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	out := map[string]Member{}
	if s != nil {
		for id, m := range s.conns {
			out[id] = m
		}
	}
	if p.peers != nil {
		for id, m := range p.peers.remoteMembers(channel) {
			out[id] = m
		}
	}
	return out
}

// Count returns the number of connections and of distinct users on channel.
func (p *Presence) Count(channel string) (clients, users int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	if p.peers == nil {
		if s != nil {
			return len(s.conns), len(s.users)
		}
		return 0, 0
	}
	distinct := map[string]bool{}
	if s != nil {
		clients = len(s.conns)
		for u := range s.users {
			distinct[u] = true
		}
	}
	for _, m := range p.peers.remoteMembers(channel) {
		clients++
		distinct[m.UserID] = true
	}
	return clients, len(distinct)
}

// HasUser reports whether userID is present on channel.
func (p *Presence) HasUser(channel, userID string) bool {
	if p.hasLocal(channel, userID) {
		return true
	}
	return p.peers != nil && p.peers.remoteHasUser(channel, userID)
}

// hasLocal reports whether userID is on channel through this node.
func (p *Presence) hasLocal(channel, userID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	return s != nil && len(s.users[userID]) > 0
}

// snapshot copies this node's members (conn id → member per channel).
func (p *Presence) snapshot() map[string]map[string]Member {
	out := make(map[string]map[string]Member, len(p.chans))
	for ch, s := range p.chans {
		cs := make(map[string]Member, len(s.conns))
		for id, m := range s.conns {
			cs[id] = m
		}
		out[ch] = cs
	}
	return out
}
