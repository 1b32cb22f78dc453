package centrifuge

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/centrifugal/protocol"

	"switchboard/gateway"
)

// Server API methods that act on a user's connections (subscribe,
// unsubscribe, disconnect, refresh) and that describe the node (channels,
// info). A user's connections can be on any node, so the first three are
// gateway commands (gateway.Node.Command): run here before the reply and
// relayed to the other nodes in cluster mode. disconnect is the gateway's
// cross-protocol gateway.Node.DisconnectUser: it closes the user's Pusher
// and ActionCable connections as well.

// Command kinds of this adapter (gateway.Node.OnCommand).
const (
	cmdSubscribe   = "centrifugo.subscribe"
	cmdUnsubscribe = "centrifugo.unsubscribe"
	cmdRefresh     = "centrifugo.refresh"
)

// userCommand is a command about a user's connections (or one of them).
type userCommand struct {
	User     string          `json:"user"`
	Client   string          `json:"client,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Expired  bool            `json:"expired,omitempty"`
	ExpireAt int64           `json:"expire_at,omitempty"`
}

// registerCommands makes this node carry out the adapter's commands.
func (a *Adapter) registerCommands() {
	a.node.OnCommand(cmdSubscribe, a.onCommand(func(c *conn, cmd userCommand) {
		if ch, perr := a.res.resolve(cmd.Channel); perr == nil {
			c.serverSubscribe(ch, cmd.Data)
		}
	}))
	a.node.OnCommand(cmdUnsubscribe, a.onCommand(func(c *conn, cmd userCommand) {
		c.serverUnsubscribe(cmd.Channel)
	}))
	a.node.OnCommand(cmdRefresh, a.onCommand(func(c *conn, cmd userCommand) {
		c.serverRefresh(cmd.Expired, cmd.ExpireAt)
	}))
}

// onCommand decodes a user command and runs fn on each of this node's
// connections it names.
func (a *Adapter) onCommand(fn func(*conn, userCommand)) func(json.RawMessage) {
	return func(body json.RawMessage) {
		var cmd userCommand
		if json.Unmarshal(body, &cmd) != nil || cmd.User == "" {
			return
		}
		for _, c := range a.conns.ByUser(cmd.User) {
			if cmd.Client == "" || cmd.Client == c.id {
				fn(c, cmd)
			}
		}
	}
}

// command validates the user of a user command and sends it.
func (a *Adapter) command(kind string, cmd userCommand) *protocol.Error {
	if cmd.User == "" {
		return badRequest("user is required")
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return errInternal
	}
	a.node.Command(kind, body)
	return nil
}

// callSubscribe subscribes the user's connections (or one, client) to a
// channel from the server side: each gets a subscribe push and then the
// channel's publications, on the Centrifuge object in centrifuge-js
// (server-side subscriptions). The server API decides alone: no channel
// rule is applied. A connection already subscribed to the channel is left
// as it is. Not supported: info, b64info, b64data, session,
// recover_since, override, expire_at.
func (a *Adapter) callSubscribe(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req struct {
		User    string          `json:"user"`
		Channel string          `json:"channel"`
		Client  string          `json:"client"`
		Data    json.RawMessage `json:"data"`
	}
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	if len(req.Data) > 0 && (string(req.Data) == "null" || !validJSON(req.Data)) {
		req.Data = nil
	}
	return a.userChannelCommand(cmdSubscribe, userCommand{User: req.User, Client: req.Client, Channel: req.Channel, Data: req.Data})
}

// callUnsubscribe ends the user's subscriptions (client-side or
// server-side) to a channel with an unsubscribe push, code 2000: the
// client stays unsubscribed.
func (a *Adapter) callUnsubscribe(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req struct {
		User    string `json:"user"`
		Channel string `json:"channel"`
		Client  string `json:"client"`
	}
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	return a.userChannelCommand(cmdUnsubscribe, userCommand{User: req.User, Client: req.Client, Channel: req.Channel})
}

// userChannelCommand checks what subscribe and unsubscribe both need (a
// user, a channel the namespaces know) and sends cmd as kind to every node.
func (a *Adapter) userChannelCommand(kind string, cmd userCommand) (any, *protocol.Error) {
	if cmd.User == "" {
		return nil, badRequest("user is required")
	}
	if _, perr := a.res.resolve(cmd.Channel); perr != nil {
		return nil, perr
	}
	if perr := a.command(kind, cmd); perr != nil {
		return nil, perr
	}
	return struct{}{}, nil
}

// callDisconnect closes the user's connections on every front door
// (gateway.Node.DisconnectUser). Centrifugo clients are closed with
// disconnect.code and .reason when given (3000-4999; 3000-3499 and
// 4000-4499 reconnect), else 3503 "force disconnect" (no reconnect);
// Pusher and ActionCable clients are told to reconnect or not to match.
func (a *Adapter) callDisconnect(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req struct {
		User       string   `json:"user"`
		Client     string   `json:"client"`
		Whitelist  []string `json:"whitelist"`
		Disconnect *struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"disconnect"`
	}
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	d := gateway.UserDisconnect{User: req.User, Client: req.Client, Keep: req.Whitelist}
	if req.Disconnect != nil {
		d.Code, d.Reason, d.Reconnect = req.Disconnect.Code, req.Disconnect.Reason, reconnects(req.Disconnect.Code)
		if d.Code == 0 {
			return nil, badRequest("disconnect.code is required (3000-4999)")
		}
	}
	if _, err := a.node.DisconnectUser(d); err != nil {
		return nil, badRequest(err.Error())
	}
	return struct{}{}, nil
}

// callRefresh changes the expiry of the user's connections: expired
// closes them with 3005 (they reconnect and fetch a token); expire_at
// (Unix seconds, in the future) makes them expire then, as if their token
// said so; neither makes them never expire.
func (a *Adapter) callRefresh(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req struct {
		User     string `json:"user"`
		Client   string `json:"client"`
		Expired  bool   `json:"expired"`
		ExpireAt int64  `json:"expire_at"`
	}
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	if req.ExpireAt < 0 || (req.ExpireAt > 0 && !req.Expired && time.Unix(req.ExpireAt, 0).Before(time.Now())) {
		return nil, badRequest("expire_at must be a Unix time in the future")
	}
	if perr := a.command(cmdRefresh, userCommand{User: req.User, Client: req.Client, Expired: req.Expired, ExpireAt: req.ExpireAt}); perr != nil {
		return nil, perr
	}
	return struct{}{}, nil
}

// channelInfo is Centrifugo's ChannelInfo.
type channelInfo struct {
	NumClients int `json:"num_clients"`
}

// callChannels lists the Centrifugo channels with subscribers on any node
// (gateway.Occupancy), filtered by pattern ('*' any run of characters,
// '?' one character, '\' escapes; empty: all).
func (a *Adapter) callChannels(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req struct {
		Pattern string `json:"pattern"`
	}
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	if len(req.Pattern) > maxChannelLength {
		return nil, badRequest("pattern is too long")
	}
	out := map[string]channelInfo{}
	for key, n := range a.node.Occupancy.Occupied(occupancyPrefix) {
		name := strings.TrimPrefix(key, occupancyPrefix)
		if n > 0 && (req.Pattern == "" || globMatch(req.Pattern, name)) {
			out[name] = channelInfo{NumClients: n}
		}
	}
	return map[string]any{"channels": out}, nil
}

// globMatch matches name against a pattern of literal characters, '*'
// (any run, empty included), '?' (any one character) and '\' (the next
// character literally).
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == '\\' && p+1 < len(pattern) && pattern[p+1] == name[n]:
			p, n = p+2, n+1
		case p < len(pattern) && pattern[p] != '\\' && (pattern[p] == '?' || pattern[p] == name[n]):
			p, n = p+1, n+1
		case star >= 0:
			p, mark = star+1, mark+1
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// nodeInfo is Centrifugo's NodeResult for this node.
type nodeInfo struct {
	UID         string `json:"uid"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	NumClients  int    `json:"num_clients"`
	NumUsers    int    `json:"num_users"`
	NumChannels int    `json:"num_channels"`
	NumSubs     int    `json:"num_subs"`
	Uptime      int    `json:"uptime"`
}

// callInfo describes the node that answers: its Centrifugo connections,
// their users, channels and subscriptions. In cluster mode each node
// answers for itself (the metrics describe the cluster).
func (a *Adapter) callInfo(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req struct{}
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	users := map[string]bool{}
	channels := map[string]bool{}
	subs := 0
	for _, c := range a.conns.All() {
		c.mu.Lock()
		if c.ident != nil {
			users[c.ident.user] = true
		}
		for name := range c.subs.All() {
			channels[name] = true
		}
		subs += c.subs.Len()
		c.mu.Unlock()
	}
	name, _ := os.Hostname()
	return map[string]any{"nodes": []nodeInfo{{
		UID: a.uid, Name: name, Version: a.cfg.Version,
		NumClients: a.conns.Len(), NumUsers: len(users), NumChannels: len(channels), NumSubs: subs,
		Uptime: int(time.Since(a.started).Seconds()),
	}}}, nil
}

// DisconnectUser closes this node's Centrifugo connections of d.User
// (gateway.Disconnector): with d.Code when set, else 3503 "force
// disconnect" (3011 "force reconnect" when d.Reconnect).
func (a *Adapter) DisconnectUser(d gateway.UserDisconnect) int {
	dis := DisconnectForce
	if d.Reconnect {
		dis = DisconnectForceReconnect
	}
	if d.Code != 0 {
		dis = Disconnect{Code: d.Code, Reason: d.Reason}
	}
	n := 0
	for _, c := range a.conns.ByUser(d.User) {
		if d.Spares(c.id) {
			continue
		}
		c.stopped.Store(true)
		c.closeWith(dis)
		n++
	}
	return n
}

var _ gateway.Disconnector = (*Adapter)(nil)

// serverSubscribe subscribes the connection to ch from the server side
// (server API subscribe): a subscribe push, then the channel's
// publications. A connection not connected yet, closed, or already
// subscribed to ch is left alone.
func (c *conn) serverSubscribe(ch channel, data json.RawMessage) {
	c.mu.Lock()
	ident, closed := c.ident, c.closed
	c.mu.Unlock()
	if ident == nil || closed || c.stopped.Load() {
		return
	}
	res, s, last, perr := c.join(ch, joinRequest{})
	if perr != nil {
		c.a.log.Debug("server-side subscribe", "client", c.id, "channel", ch.name, "err", perr.Message)
		return
	}
	c.reply(&protocol.Reply{Push: &protocol.Push{Channel: ch.name, Subscribe: &protocol.Subscribe{
		Recoverable: res.Recoverable, Epoch: res.Epoch, Offset: res.Offset, Positioned: res.Positioned, Data: protocol.Raw(data),
	}}})
	c.joined(s, last, ident, nil)
}

// serverUnsubscribe ends the connection's subscription to the channel
// named name (server API unsubscribe) with an unsubscribe push, code 2000.
func (c *conn) serverUnsubscribe(name string) {
	s := c.subscribed(name)
	if s == nil {
		return
	}
	c.dropSub(s)
	c.pushUnsubscribe(name, unsubscribeServer, "server unsubscribe")
}

// serverRefresh changes the connection's expiry (server API refresh).
func (c *conn) serverRefresh(expired bool, expireAt int64) {
	if expired {
		c.stopped.Store(true)
		c.closeWith(DisconnectExpired)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ident == nil || c.closed {
		return
	}
	// A copy: readers took the old identity under the lock and use it
	// without.
	id := *c.ident
	id.expires = time.Time{}
	if expireAt > 0 {
		id.expires = time.Unix(expireAt, 0)
	}
	c.ident = &id
	c.armLocked(time.Now())
}
