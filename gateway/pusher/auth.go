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
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data,omitempty"`
}

// channelAuth is Laravel's /broadcasting/auth: the bearer asks to read a
// private or presence channel; the answer is signed with the app secret so
// the WebSocket can verify it without knowing the bearer.
func (a *Adapter) channelAuth(c echo.Context) error {
	var in authRequest
	if strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
	} else {
		in.SocketID = c.FormValue("socket_id")
		in.ChannelName = c.FormValue("channel_name")
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
	var canonical string
	switch typeOf(name) {
	case chPrivate:
		canonical = strings.TrimPrefix(name, "private-")
	case chPresence:
		canonical = strings.TrimPrefix(name, "presence-")
	default:
		return domain.Invalid("channel_name", "only private- and presence- channels need authorization")
	}
	if err := a.canRead(ctx, claims, canonical); err != nil {
		if e, ok := domain.AsError(err); ok && e.Status < 500 {
			return &domain.Error{Status: http.StatusForbidden, Code: "forbidden", Message: e.Message}
		}
		return err
	}
	resp := authResponse{}
	if typeOf(name) == chPresence {
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
	resp.Auth = app.ChannelAuth(in.SocketID, name, resp.ChannelData)
	// Remember who this socket's subscription belongs to, so revoking the
	// user's access (removed from a room) can drop it at once.
	if cn := a.connByID(in.SocketID); cn != nil {
		cn.authorize(hubChannel(app, name), claims.Subject)
	}
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
