package pusher

import (
	"time"

	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

// WebhookSink takes the app's webhook events (webhooks.Emitter queues
// them durably); nil turns webhooks off.
type WebhookSink interface {
	Emit(appID string, e webhooks.Event)
}

// webhookHold is how long channel_vacated and member_removed wait, as at
// Pusher: a page reload (leave, then come back) sends neither of them nor
// the occupied/added that would follow.
const webhookHold = 3 * time.Second

// hook hands e to the sink for app.
func (a *Adapter) hook(app *App, e webhooks.Event) {
	if a.cfg.Webhooks != nil && len(app.Webhooks) > 0 {
		a.cfg.Webhooks.Emit(app.ID, e)
	}
}

// occupancyHooks turns subscription changes into channel existence and
// subscription count webhooks. One node decides them (Config.Leads), from
// its view of every node's counts, local and remote changes alike: nodes
// deciding each from their own changes would each see "first" when
// clients join on several at once, and none "last" when they leave so.
func (a *Adapter) occupancyHooks(app *App, name string, c gateway.OccupancyChange) {
	if !a.leads() || len(app.Webhooks) == 0 || a.cfg.Webhooks == nil {
		return
	}
	key := "vacated\x00" + c.Channel
	switch {
	case c.Occupied:
		if !a.webhookHolds.Cancel(key) { // back within the hold: nothing happened
			a.hook(app, webhooks.Event{Name: webhooks.ChannelOccupied, Channel: name})
		}
	case c.Vacated:
		a.webhookHolds.Hold(key, webhookHold, func() {
			if a.node.Occupancy.Count(c.Channel) == 0 {
				a.hook(app, webhooks.Event{Name: webhooks.ChannelVacated, Channel: name})
			}
		})
	}
	if ci := classify(name); !ci.presence && !ci.user && !c.Vacated {
		n := c.Count
		a.hook(app, webhooks.Event{Name: webhooks.SubscriptionCount, Channel: name, SubscriptionCount: &n})
	}
}

// leads reports whether this node decides the cluster-wide webhook events.
func (a *Adapter) leads() bool { return a.cfg.Leads == nil || a.cfg.Leads() }

// memberAddedHook sends member_added for a user's first connection on a
// presence channel in the cluster (decided by the leading node, like the
// occupancy events), unless the same user's member_removed is waiting (a
// reload).
func (a *Adapter) memberAddedHook(app *App, name, user string) {
	if !a.leads() {
		return
	}
	if a.webhookHolds.Cancel("removed\x00" + app.ID + "\x00" + name + "\x00" + user) {
		return
	}
	a.hook(app, webhooks.Event{Name: webhooks.MemberAdded, Channel: name, UserID: user})
}

// memberRemovedHook sends member_removed after the hold, if the user is
// still gone from the channel then.
func (a *Adapter) memberRemovedHook(app *App, name, hub, user string) {
	if a.cfg.Webhooks == nil || len(app.Webhooks) == 0 {
		return
	}
	a.webhookHolds.Hold("removed\x00"+app.ID+"\x00"+name+"\x00"+user, webhookHold, func() {
		if !a.node.Presence.HasUser(hub, user) {
			a.hook(app, webhooks.Event{Name: webhooks.MemberRemoved, Channel: name, UserID: user})
		}
	})
}

// memberLeftHook is the cluster-mode path of member_removed: every node
// hears a user leave the cluster after the presence grace; the leading one
// sends it.
func (a *Adapter) memberLeftHook(hub string, m gateway.Member) {
	if !a.leads() {
		return
	}
	if app, name, ok := a.presenceOf(hub); ok {
		a.hook(app, webhooks.Event{Name: webhooks.MemberRemoved, Channel: name, UserID: m.UserID})
	}
}

// remoteMemberHook is the cluster-mode path of member_added for a user
// whose first connection arrived on another node.
func (a *Adapter) remoteMemberHook(hub string, m gateway.Member) {
	if app, name, ok := a.presenceOf(hub); ok {
		a.memberAddedHook(app, name, m.UserID)
	}
}

// presenceOf finds the app and Pusher presence channel of a hub channel
// (hubChannel undone): app channels carry their app, Switchboard's
// canonical channels are the default app's.
func (a *Adapter) presenceOf(hub string) (*App, string, bool) {
	if appID, name, ok := splitHub(hub); ok {
		app := a.byID[appID]
		return app, name, app != nil && classify(name).presence
	}
	name := "presence-" + hub
	return a.def, name, a.def != nil && canonicalOf(name) == hub
}
