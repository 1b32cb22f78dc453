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

	// left is told of every departure, once the grace has passed.
	left func(hub string, m Member)

	mu      sync.Mutex
	pending map[[2]string]*departure // (hub, user) → its announcement
}

type departure struct {
	timer *time.Timer
}

// leave schedules the announcement that m left hub; it goes out after the
// grace unless the user is on hub again by then.
func (d *departures) leave(hub, conn string, m Member) {
	key := [2]string{hub, m.UserID}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.pending[key]; old != nil {
		old.timer.Stop()
	}
	dep := &departure{}
	dep.timer = time.AfterFunc(d.grace, func() {
		d.mu.Lock()
		if d.pending[key] != dep {
			d.mu.Unlock()
			return
		}
		delete(d.pending, key)
		d.mu.Unlock()
		if d.present(hub, m.UserID) {
			return
		}
		d.fire(hub, conn, m, false, true)
		if d.left != nil {
			d.left(hub, m)
		}
	})
	d.pending[key] = dep
}

// rejoin cancels a pending announcement that user left hub and reports
// whether there was one (the user then never left: no "joined" either).
func (d *departures) rejoin(hub, user string) bool {
	key := [2]string{hub, user}
	d.mu.Lock()
	defer d.mu.Unlock()
	dep := d.pending[key]
	if dep == nil {
		return false
	}
	dep.timer.Stop()
	delete(d.pending, key)
	return true
}
