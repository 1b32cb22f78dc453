package pusher

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// Tags of adapter instructions that travelled through the outbox, so every
// node carried them out (terminate a user's connections). terminate_connections
// is now a gateway command (gateway.Node.DisconnectUser); the tags are still
// read so that a row an older node wrote during a rolling upgrade is
// carried out.
const (
	tagControl       = "pusher_control"
	tagApp           = "pusher_app"
	tagUser          = "pusher_user"
	controlTerminate = "terminate"
)

// signin runs pusher:signin: the app backend (here /pusher/user-auth)
// signed "socket_id::user::user_data"; user_data must carry a string id.
// The connection then belongs to that user (connection limit, terminate)
// and may subscribe to #server-to-user-{id}.
func (c *conn) signin(d signinData) {
	if d.Auth == "" || !c.app.VerifyUserAuth(d.Auth, c.id, d.UserData) {
		c.authFailed(gateway.DoorSignin, "invalid signature for signin")
		c.w.Enqueue(errorFrame(CodeUnauthorized, "Invalid signature for signin"))
		return
	}
	var ud struct {
		ID json.RawMessage `json:"id"`
	}
	var id string
	if err := json.Unmarshal([]byte(d.UserData), &ud); err != nil || json.Unmarshal(ud.ID, &id) != nil || !userIDRE.MatchString(id) {
		c.w.Enqueue(errorFrame(CodeUnauthorized, "user_data must be a JSON object with a string id (1-128 characters of [-a-zA-Z0-9_=@,.;])"))
		return
	}
	c.mu.Lock()
	prev := c.signedIn
	c.mu.Unlock()
	if prev != "" && prev != id {
		c.w.Enqueue(errorFrame(CodeUnauthorized, "The connection is already signed in as another user"))
		return
	}
	if !c.acquireUser(id) {
		return
	}
	c.mu.Lock()
	c.signedIn = id
	c.mu.Unlock()
	c.markAuthorized()
	// signin_success first: once indexed under the user, the connection
	// receives sendToUser events (Adapter.toSignedIn), and pusher-js only
	// handles them after signin_success.
	c.w.Enqueue(encode(outFrame{Event: evSigninSuccess, Data: map[string]string{"user_data": d.UserData}}))
	c.a.conns.SetUser(c.id, c.a.userKey(c.app, id))
}

type userAuthResponse struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// userAuth is the user-authentication endpoint pusher-js calls before
// pusher:signin (POST /pusher/user-auth, Echo's /broadcasting/user-auth):
// the bearer's sub and name become user_data, signed for the socket.
func (a *Adapter) userAuth(c echo.Context) error {
	var in authRequest
	if err := bindAuthRequest(c, &in); err != nil {
		return err
	}
	if !socketIDRE.MatchString(in.SocketID) {
		return domain.Invalid("socket_id", "must look like 123.456")
	}
	claims := domain.ClaimsFrom(c.Request().Context())
	if claims == nil {
		return domain.ErrUnauthorized
	}
	if !userIDRE.MatchString(claims.Subject) {
		return domain.Forbidden("token subject %q cannot be a Pusher user id", truncate(claims.Subject, 64))
	}
	ud := map[string]any{"id": claims.Subject}
	if claims.Name != "" {
		ud["user_info"] = map[string]string{"name": claims.Name}
	}
	userData := jsonString(ud)
	app := a.DefaultApp()
	return c.JSON(http.StatusOK, userAuthResponse{Auth: app.UserAuth(in.SocketID, userData), UserData: userData})
}

// terminateLocal closes this node's connections of app signed in as user
// with 4009 (as soketi does: pusher-js then stays disconnected until the
// app reconnects it).
func (a *Adapter) terminateLocal(appID, user string) {
	app := a.byID[appID]
	if app == nil {
		return
	}
	for _, c := range a.conns.ByUser(a.userKey(app, user)) {
		c.mu.Lock()
		mine := c.app == app && c.signedIn == user
		c.mu.Unlock()
		if mine {
			c.closeWith(CodeUnauthorized, "You got disconnected by the app.")
		}
	}
}
