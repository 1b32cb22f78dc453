package pusher

import (
	"encoding/json"
	"strings"
	"time"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

// clientEvent relays a client-* event to the channel's other subscribers.
// Rules (protocol note §5, seed "broadcasting from client is not
// supported" on dashboards): the app must enable client events; only
// private and presence channels, never encrypted ones; never on
// dashboard.project.* or on a member's own streams (server-only feeds);
// the sender must be subscribed; at most ClientEventsPerSecond per
// connection. Refusals are pusher:error 4301 on an open connection: a
// close with 43xx would stop pusher-js from ever reconnecting.
func (c *conn) clientEvent(f inFrame) {
	reject := func(code int, msg string) { c.w.Enqueue(errorFrame(code, msg)) }
	if !c.app.clientEventsOn() {
		reject(CodeClientEvent, "The app does not have client messaging enabled.")
		return
	}
	if len(f.Event) > c.app.MaxEventNameLength {
		reject(CodeClientEvent, "Event name is too long: at most "+itoa(c.app.MaxEventNameLength)+" characters")
		return
	}
	info := classify(f.Channel)
	switch {
	case !info.private || info.user:
		reject(CodeClientEvent, "Client event rejected - only supported on private and presence channels")
		return
	case info.encrypted:
		reject(CodeClientEvent, "Client event rejected - not supported on encrypted channels")
		return
	}
	if c.app.canonical && !clientEventsAllowed(f.Channel) {
		reject(CodeClientEvent, "Client event rejected - broadcasting from client is not supported on "+truncate(f.Channel, 200))
		return
	}
	if len(f.Data) > c.app.MaxEventDataSize {
		reject(CodeClientEvent, "The event data should be at most "+itoa(c.app.MaxEventDataSize)+" bytes.")
		return
	}
	c.mu.Lock()
	s, _ := c.subs.Get(f.Channel)
	c.mu.Unlock()
	if s == nil {
		reject(CodeClientEvent, "Client event rejected - not subscribed to "+truncate(f.Channel, 200))
		return
	}
	if !c.allowClientEvent(time.Now()) {
		reject(CodeClientEvent, "Client event rejected due to rate limit: at most "+itoa(c.app.ClientEventsPerSecond)+" per second")
		return
	}
	data := f.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	tags := map[string]string{}
	if data[0] == '"' {
		tags["raw_string"] = "1"
	}
	from := &gateway.ClientInfo{ConnID: c.id}
	if s.member != nil {
		tags["user_id"] = s.member.UserID
		from.UserID = s.member.UserID
	}
	c.a.node.CountClientEvent(gateway.ProtoPusher)
	c.a.node.Broadcast(&gateway.Message{Channel: s.hub, Event: f.Event, Data: data, ExceptConn: c.id, Tags: tags, From: from})
	c.a.hook(c.app, webhooks.Event{Name: webhooks.ClientEvent, Channel: s.name, Event: f.Event, Data: string(data),
		SocketID: c.id, UserID: from.UserID})
}

// clientEventsAllowed says whether a channel family accepts client events:
// not the project dashboards (the seed: "broadcasting from client is not
// supported"), presence-dashboard.project.{slug} included, and not a
// member's notification/chat-list/thread streams, which only the server
// writes, and not a PubSub organization or event channel (participants
// talk in their session only, see gateway.Authorizer.CanPublish). Rooms and
// app channels allow them.
func clientEventsAllowed(name string) bool {
	canon := canonicalOf(name)
	if canon == "" {
		return true
	}
	if strings.HasPrefix(canon, "dashboard.project.") {
		return false
	}
	pc := domain.ParseChannel(canon)
	return pc.Kind != domain.KindMember && (pc.Kind != domain.KindPubSub || pc.PubSub.Session != "")
}

// allowClientEvent applies the per-connection rate with a sliding window:
// the event is accepted when fewer than ClientEventsPerSecond were
// accepted in the last second.
func (c *conn) allowClientEvent(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = &gateway.Window{} // only connections that send client events have one
	}
	return c.sent.Allow(c.app.ClientEventsPerSecond, now)
}
