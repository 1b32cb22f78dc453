package pusher

import (
	"net/url"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// DisconnectUser closes this node's connections that belong to d.User
// (gateway.Disconnector): signed in as that user, or authorized as that
// user by the auth endpoint or a presence subscription. d.User is a
// gateway.UserConns key: a Switchboard user id for the default app, an
// app-scoped key (Adapter.userKey) for the others. pusher-js gets
// pusher:error 4009 and close 4009 and stays disconnected (soketi's
// terminate); with d.Reconnect, 4200 and it reconnects at once.
func (a *Adapter) DisconnectUser(d gateway.UserDisconnect) int {
	code, msg := CodeUnauthorized, "You got disconnected by the app."
	if d.Reconnect {
		code, msg = CodeGenericReconnect, "Reconnect: the app closed this connection."
	}
	n := 0
	for _, c := range a.conns.All() {
		if d.Spares(c.id) {
			continue
		}
		c.mu.Lock()
		mine := c.holdsUserKey(d.User)
		closed := c.closed
		c.mu.Unlock()
		if mine && !closed {
			c.closeWith(code, msg)
			n++
		}
	}
	return n
}

var _ gateway.Disconnector = (*Adapter)(nil)

// apiTerminate is terminate_connections: it closes every connection of the
// user, on every node. For the default app, whose users are Switchboard's,
// that is every front door: the user's Pusher sockets (4009), ActionCable
// connections (disconnect "remote", no reconnect) and Centrifugo clients
// (3503 force disconnect). Another app's users are its own: only its
// Pusher sockets close.
func (a *Adapter) apiTerminate(c echo.Context) error {
	app := appOf(c)
	user, err := url.PathUnescape(c.Param("user_id"))
	if err != nil || !userIDRE.MatchString(user) {
		return domain.BadRequest("user_id must be 1-128 characters of [-a-zA-Z0-9_=@,.;]")
	}
	if _, err := a.node.DisconnectUser(gateway.UserDisconnect{User: a.userKey(app, user)}); err != nil {
		return domain.BadRequest("%v", err)
	}
	return c.JSON(200, struct{}{})
}
