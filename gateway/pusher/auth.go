package pusher

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

var socketIDRE = regexp.MustCompile(`^\d+\.\d+$`)

type authRequest struct {
	SocketID    string `json:"socket_id" form:"socket_id" query:"socket_id"`
	ChannelName string `json:"channel_name" form:"channel_name" query:"channel_name"`
}

type authResponse struct {
	Auth         string `json:"auth"`
	ChannelData  string `json:"channel_data,omitempty"`
	SharedSecret string `json:"shared_secret,omitempty"`
}

// bindAuthRequest reads pusher-js's form body (or a JSON body, or the query
// string for GET).
func bindAuthRequest(c echo.Context, in *authRequest) error {
	if strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		return domain.Bind(c, in)
	}
	in.SocketID = c.FormValue("socket_id")
	in.ChannelName = c.FormValue("channel_name")
	return nil
}

// channelAuth is Laravel's /broadcasting/auth: the bearer asks to read a
// private or presence channel; the answer is signed with the default app's
// secret so the WebSocket can verify it without knowing the bearer.
//
// Which channels it signs:
//   - private-/presence- + a canonical channel: gateway.Authorizer decides;
//   - presence-dashboard.project.{slug}: project access;
//   - any other private/presence/encrypted/cache name: only when it starts
//     with one of the app's AuthPrefixes (default private-chat.,
//     presence-chat. and their cache/encrypted flavours); everything else
//     is 403, because Switchboard knows nothing about who may read it.
//
// The connection then belongs to the bearer: over the per-user connection
// limit the answer is 403 and the socket gets pusher:error 4004.
func (a *Adapter) channelAuth(c echo.Context) error {
	var in authRequest
	if err := bindAuthRequest(c, &in); err != nil {
		return err
	}
	if !socketIDRE.MatchString(in.SocketID) {
		return domain.Invalid("socket_id", "must look like 123.456")
	}
	app := a.DefaultApp()
	if ok, reason := validChannelName(in.ChannelName, app.MaxChannelNameLength); !ok {
		return domain.Invalid("channel_name", "%s", reason)
	}
	ctx := c.Request().Context()
	claims := domain.ClaimsFrom(ctx)
	name := in.ChannelName
	info := classify(name)
	if !info.private {
		return domain.Invalid("channel_name", "only private- and presence- channels need authorization")
	}
	if canon := canonicalOf(name); canon != "" {
		if err := a.canRead(ctx, claims, canon); err != nil {
			if e, ok := domain.AsError(err); ok && e.Status < 500 {
				return &domain.Error{Status: http.StatusForbidden, Code: "forbidden", Message: e.Message}
			}
			return err
		}
	} else if !app.mayAuthPrefix(name) {
		return domain.Forbidden("channel %q is not a Switchboard channel and not in the app's auth prefixes", name)
	}
	resp := authResponse{}
	if info.encrypted {
		secret, ok := app.SharedSecret(name)
		if !ok {
			return domain.Forbidden("encrypted channels are not enabled: the app has no encryption master key")
		}
		resp.SharedSecret = secret
	}
	if info.presence {
		info := map[string]string{}
		if claims.Name != "" {
			info["name"] = claims.Name
		}
		cd, _ := json.Marshal(struct {
			UserID   string            `json:"user_id"`
			UserInfo map[string]string `json:"user_info,omitempty"`
		}{claims.Subject, info})
		resp.ChannelData = string(cd)
	}
	if cn := a.connByID(in.SocketID); cn != nil && cn.app == app {
		if !cn.acquireUser(claims.Subject) {
			return &domain.Error{Status: http.StatusForbidden, Code: "over_quota",
				Message: "user " + claims.Subject + " already has the maximum of " + itoa(app.MaxConnectionsPerUser) + " connections"}
		}
		// Remember who this socket's subscription belongs to, so revoking
		// the user's access (removed from a room) can drop it at once.
		cn.authorize(hubChannel(app, name), claims.Subject)
	}
	resp.Auth = app.ChannelAuth(in.SocketID, name, resp.ChannelData)
	return c.JSON(http.StatusOK, resp)
}

// canRead applies the gateway's rules to the channel behind a private or
// presence name. The project presence channel
// presence-dashboard.project.{slug} follows the project rule.
func (a *Adapter) canRead(ctx context.Context, claims *domain.Claims, canonical string) error {
	if slug, ok := strings.CutPrefix(canonical, "dashboard.project."); ok && !strings.Contains(slug, ".") {
		if claims.CanAccessProject(slug) {
			return nil
		}
		return domain.Forbidden("token may not read project %q", slug)
	}
	return a.node.Auth.CanRead(ctx, claims, canonical)
}
