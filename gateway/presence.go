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
type Presence struct {
	mu    sync.Mutex
	chans map[string]*presenceSet
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
			return false
		}
		p.leaveLocked(s, channel, connID)
	}
	s.conns[connID] = m
	cs := s.users[m.UserID]
	if cs == nil {
		cs = map[string]int{}
		s.users[m.UserID] = cs
	}
	cs[connID]++
	return len(cs) == 1
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
	if s == nil {
		return nil
	}
	byUser := make(map[string]Member, len(s.users))
	for _, m := range s.conns {
		byUser[m.UserID] = m
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
	return out
}

// Count returns the number of connections and of distinct users on channel.
func (p *Presence) Count(channel string) (clients, users int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.chans[channel]; s != nil {
		return len(s.conns), len(s.users)
	}
	return 0, 0
}

// HasUser reports whether userID is present on channel.
func (p *Presence) HasUser(channel, userID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.chans[channel]
	return s != nil && len(s.users[userID]) > 0
}
