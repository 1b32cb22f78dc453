package pusher

import (
	"strings"
	"unique"

	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

// subscribe runs pusher:subscribe: name rules, signature, per-connection
// and presence limits, then the confirmation (with the member list on
// presence channels), the cache replay and the hub subscription, in that
// order so the client never sees an event before its confirmation.
func (c *conn) subscribe(d subscribeData) {
	name := d.Channel
	if ok, reason := validChannelName(name, c.app.MaxChannelNameLength); !ok {
		c.w.Enqueue(subscriptionErrorFrame(name, "LimitReached", reason, CodeUnauthorized))
		return
	}
	info := classify(name)
	var member *gateway.Member
	switch {
	case info.private:
		if d.Auth == "" || !c.app.VerifyChannelAuth(d.Auth, c.id, name, d.ChannelData) {
			c.authFailed(gateway.DoorSubscribe, "invalid signature for "+name)
			c.w.Enqueue(subscriptionErrorFrame(name, "AuthError", "Invalid signature for "+name, 401))
			return
		}
		if info.presence {
			m, err := parseMember(d.ChannelData)
			if err != nil {
				c.w.Enqueue(subscriptionErrorFrame(name, "AuthError", err.Error(), 401))
				return
			}
			if len(m.Info) > c.app.MaxPresenceMemberSize {
				c.w.Enqueue(subscriptionErrorFrame(name, "LimitReached",
					"The maximum size for a channel member is "+itoa(c.app.MaxPresenceMemberSize)+" bytes.", CodeClientEvent))
				return
			}
			member = &m
		}
	case info.user:
		c.mu.Lock()
		me := c.signedIn
		c.mu.Unlock()
		if me == "" || name != userChannelPrefix+me {
			c.authFailed(gateway.DoorSubscribe, "not the signed-in user's channel: "+name)
			c.w.Enqueue(subscriptionErrorFrame(name, "AuthError", "Only the signed-in user may subscribe to "+name, 401))
			return
		}
	default:
		if c.app.canonical && gateway.IsCanonical(name) {
			c.authFailed(gateway.DoorSubscribe, "canonical channel without private- prefix: "+name)
			c.w.Enqueue(subscriptionErrorFrame(name, "AuthError", "Channel "+name+" is private: subscribe to private-"+name, 403))
			return
		}
	}
	hub := hubChannel(c.app, name)

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if old, dup := c.subs.Get(name); dup {
		c.mu.Unlock()
		// pusher-js resubscribes after reconnects; answer again, subscribe once.
		data := "{}"
		if old.member != nil {
			data = presenceData(c.a.node.Presence.Members(hub))
		}
		c.w.Enqueue(succeededFrame(name, data))
		return
	}
	if c.subs.Len() >= c.app.MaxSubscriptionsPerConnection {
		c.mu.Unlock()
		c.w.Enqueue(subscriptionErrorFrame(name, "LimitReached",
			"The maximum of "+itoa(c.app.MaxSubscriptionsPerConnection)+" subscriptions per connection was reached", CodeOverCapacity))
		return
	}
	c.mu.Unlock()

	if member != nil {
		// A presence member is an authorized user: it counts towards the
		// user's connection limit like a channel auth or a signin.
		if !c.acquireUser(member.UserID) {
			c.w.Enqueue(subscriptionErrorFrame(name, "LimitReached", "Application is over connection quota", CodeOverQuota))
			return
		}
		if _, users := c.a.node.Presence.Count(hub); users >= c.app.MaxPresenceMembers && !c.a.node.Presence.HasUser(hub, member.UserID) {
			c.w.Enqueue(subscriptionErrorFrame(name, "LimitReached",
				"The maximum members per presence channel limit ("+itoa(c.app.MaxPresenceMembers)+") was reached", CodeOverCapacity))
			return
		}
	}

	// Interned names: every subscriber of a channel shares one copy instead
	// of keeping the one its subscribe frame was decoded into (idle memory
	// per connection, BENCHMARKS.md "Session 10").
	key := unique.Make("pusher:" + name)
	name, hub = key.Value()[len("pusher:"):], gateway.Intern(hub)
	s := &subscription{c: c, name: name, hub: hub, key: key, info: info, member: member}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if _, dup := c.subs.Get(name); dup {
		c.mu.Unlock()
		return
	}
	c.subs.Set(name, s)
	c.mu.Unlock()
	if info.private {
		c.markAuthorized()
	}
	c.a.track(c.app, name, +1)

	// Hold the writer from the confirmation until the hub subscription is
	// in place: the client sees subscription_succeeded only once events
	// reach it, and events published meanwhile queue behind it.
	release := c.w.Hold()
	if member != nil {
		first := c.a.node.Presence.Join(hub, c.id, *member)
		c.w.Enqueue(succeededFrame(name, presenceData(c.a.node.Presence.Members(hub))))
		if first {
			c.a.toPusherSubs(hub, name, c, encode(outFrame{Event: evMemberAdded, Channel: name,
				Data: jsonString(memberJSON(*member))}))
			c.a.memberAddedHook(c.app, name, member.UserID)
		}
	} else {
		c.w.Enqueue(succeededFrame(name, "{}"))
	}
	if info.cache {
		if c.a.cache.replayAndSubscribe(c.a.node.Hub, hub, s, c.a.storedCacheEvent) {
			c.a.hook(c.app, webhooks.Event{Name: webhooks.CacheMiss, Channel: name})
		}
	} else {
		c.a.node.Hub.Subscribe(hub, s)
	}
	release()
	if !info.presence && !info.user {
		c.a.subscriptionCount(c.app, name, hub)
	}
}

func memberJSON(m gateway.Member) map[string]any {
	out := map[string]any{"user_id": m.UserID}
	if len(m.Info) > 0 {
		out["user_info"] = m.Info
	}
	return out
}

// unsubscribe leaves name; on presence channels the user's last connection
// leaving announces member_removed to the others.
func (c *conn) unsubscribe(name string) {
	c.mu.Lock()
	s, _ := c.subs.Delete(name)
	c.mu.Unlock()
	if s == nil {
		return
	}
	c.a.node.Hub.Unsubscribe(s.hub, s)
	c.a.track(c.app, name, -1)
	if s.member != nil {
		if m, last, ok := c.a.node.Presence.Leave(s.hub, c.id); ok && last {
			c.a.toPusherSubs(s.hub, name, c, encode(outFrame{Event: evMemberRemoved, Channel: name,
				Data: jsonString(map[string]string{"user_id": m.UserID})}))
			c.a.memberRemovedHook(c.app, name, s.hub, m.UserID)
		}
	} else if !s.info.user {
		c.a.subscriptionCount(c.app, name, s.hub)
	}
}

// remotePresence announces a member who joined or left on another node
// (cluster mode) to this node's Pusher subscribers of the presence channel,
// once per user as locally.
func (a *Adapter) remotePresence(hub, _ string, m gateway.Member, joined, userChanged bool) {
	if !userChanged {
		return
	}
	if joined {
		a.remoteMemberHook(hub, m)
	}
	names := map[string]bool{}
	for _, sub := range a.node.Hub.Subscribers(hub) {
		if ps, ok := sub.(*subscription); ok && ps.member != nil {
			names[ps.name] = true
		}
	}
	for name := range names {
		f := outFrame{Event: evMemberAdded, Channel: name, Data: jsonString(memberJSON(m))}
		if !joined {
			f = outFrame{Event: evMemberRemoved, Channel: name, Data: jsonString(map[string]string{"user_id": m.UserID})}
		}
		a.toPusherSubs(hub, name, nil, encode(f))
	}
}

// toPusherSubs sends frame to this adapter's subscriptions of the Pusher
// channel name on hub, except the connection skip. Presence and counting
// events are Pusher internals: they go straight to Pusher connections and
// never through the hub, so other protocols sharing the hub channel do not
// see them.
func (a *Adapter) toPusherSubs(hub, name string, skip *conn, frame []byte) {
	for _, sub := range a.node.Hub.Subscribers(hub) {
		ps, ok := sub.(*subscription)
		if !ok || ps.name != name || ps.c == skip {
			continue
		}
		ps.c.w.Enqueue(frame)
	}
}

// hubChannel maps a Pusher channel name onto the hub. Switchboard's own
// channels ("private-" + canonical name, "presence-" + canonical name, and
// presence-dashboard.project.{slug}) share the hub channel with the other
// protocols (default app only); anything else is an app channel, scoped to
// its app.
func hubChannel(app *App, name string) string {
	if canon := canonicalOf(name); canon != "" && app.canonical {
		return canon
	}
	return appHubPrefix(app.ID) + name
}

func appHubPrefix(appID string) string { return "pusher:" + appID + ":" }

// splitHub undoes hubChannel for app channels.
func splitHub(hub string) (appID, name string, ok bool) {
	rest, ok := strings.CutPrefix(hub, "pusher:")
	if !ok {
		return "", "", false
	}
	appID, name, ok = strings.Cut(rest, ":")
	return appID, name, ok
}
