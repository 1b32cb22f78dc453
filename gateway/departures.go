package gateway

import "time"

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

	pending Holds // keyed by hub and user
}

func departureKey(hub, user string) string { return hub + "\x00" + user }

// leave schedules the announcement that m left hub; it goes out after the
// grace unless the user is on hub again by then.
func (d *departures) leave(hub, conn string, m Member) {
	d.pending.Hold(departureKey(hub, m.UserID), d.grace, func() {
		if d.present(hub, m.UserID) {
			return
		}
		d.fire(hub, conn, m, false, true)
		if d.left != nil {
			d.left(hub, m)
		}
	})
}

// rejoin cancels a pending announcement that user left hub and reports
// whether there was one (the user then never left: no "joined" either).
func (d *departures) rejoin(hub, user string) bool {
	return d.pending.Cancel(departureKey(hub, user))
}
