package gateway

import (
	"sync"
	"time"
)

// PresenceGrace is how long a user whose last connection left a presence
// channel stays announced in cluster mode: a page reload (the tab's socket
// closes, the new one joins, maybe on another node) then neither removes
// nor re-adds the member for the others.
const PresenceGrace = 2 * time.Second

// departures holds back "member left" announcements for the grace: a user
// who comes back in time never left, for anyone listening.
type departures struct {
	grace   time.Duration
	present func(hub, user string) bool                            // anywhere in the cluster
	fire    func(hub, conn string, m Member, joined, changed bool) // the adapters' hook

	mu      sync.Mutex
	pending map[[2]string]*time.Timer // (hub, user) → its announcement
}

// leave schedules the announcement that m left hub; it goes out after the
// grace unless the user is on hub again by then.
func (d *departures) leave(hub, conn string, m Member) {
	key := [2]string{hub, m.UserID}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.pending[key]; t != nil {
		t.Stop()
	}
	d.pending[key] = time.AfterFunc(d.grace, func() {
		d.mu.Lock()
		if d.pending[key] == nil {
			d.mu.Unlock()
			return
		}
		delete(d.pending, key)
		d.mu.Unlock()
		if !d.present(hub, m.UserID) {
			d.fire(hub, conn, m, false, true)
		}
	})
}

// rejoin cancels a pending announcement that user left hub and reports
// whether there was one (the user then never left: no "joined" either).
func (d *departures) rejoin(hub, user string) bool {
	key := [2]string{hub, user}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.pending[key]
	if t == nil {
		return false
	}
	t.Stop()
	delete(d.pending, key)
	return true
}
