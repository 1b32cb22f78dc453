package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// The Pusher HTTP API (protocol note §8): what the official server SDKs
// call. Every request is signed with the app's key and secret; events go
// through the outbox, so a 200 means the event is committed and will be
// delivered by the relay on every node.

const ctxApp = "pusher_app"

func (a *Adapter) apiRoutes(e *echo.Echo) {
	if a.cfg.DB == nil {
		return
	}
	g := e.Group("/apps/:app_id", a.apiAuth)
	g.POST("/events", a.apiEvents)
	g.POST("/batch_events", a.apiBatchEvents)
	g.GET("/channels", a.apiChannels)
	g.GET("/channels/:channel_name", a.apiChannel)
	g.GET("/channels/:channel_name/users", a.apiUsers)
	g.POST("/users/:user_id/terminate_connections", a.apiTerminate)
}

// apiAuth finds the app and verifies the request signature before any
// handler runs; the body is read once here (for body_md5) and put back.
func (a *Adapter) apiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		app := a.byID[c.Param("app_id")]
		if app == nil {
			return domain.NotFound("app %q does not exist", truncate(c.Param("app_id"), 64))
		}
		r := c.Request()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return &domain.Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "request body too large"}
			}
			return domain.BadRequest("could not read the request body")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := verifySignature(app, r.Method, r.URL.Path, r.URL.Query(), body, a.cfg.Now()); err != nil {
			return err
		}
		if !app.enabledOn() {
			return &domain.Error{Status: http.StatusForbidden, Code: "app_disabled", Message: "app " + truncate(app.ID, 64) + " is disabled"}
		}
		c.Set(ctxApp, app)
		return next(c)
	}
}

func appOf(c echo.Context) *App { return c.Get(ctxApp).(*App) }

// eventIn is one event of /events or of a batch.
type eventIn struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channels []string        `json:"channels"`
	Channel  string          `json:"channel"`
	SocketID string          `json:"socket_id"`
	Info     string          `json:"info"`
}

// prepared is a validated event, ready for the outbox.
type prepared struct {
	env   domain.Envelope
	names []string // Pusher channel names
	info  []string // requested attributes
}

// prepare validates ev against app's limits: 400 for bad fields or too many
// channels, 413 for oversize data. Nothing is published unless every event
// of the request passes.
func (a *Adapter) prepare(app *App, ev eventIn) (prepared, error) {
	if ev.Name == "" {
		return prepared{}, domain.BadRequest("name is required")
	}
	if len(ev.Name) > app.MaxEventNameLength {
		return prepared{}, domain.BadRequest("name is longer than %d characters", app.MaxEventNameLength)
	}
	if len(ev.Data) == 0 || string(ev.Data) == "null" {
		return prepared{}, domain.BadRequest("data is required")
	}
	tags := map[string]string{}
	size := len(ev.Data)
	if ev.Data[0] == '"' {
		var s string
		if err := json.Unmarshal(ev.Data, &s); err != nil {
			return prepared{}, domain.BadRequest("data is not a valid JSON string")
		}
		size = len(s)
		// Delivered verbatim: subscribers get exactly the string sent.
		tags["raw_string"] = "1"
	}
	if size > app.MaxEventDataSize {
		return prepared{}, &domain.Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: "event data is " + itoa(size) + " bytes, more than the " + itoa(app.MaxEventDataSize) + " allowed"}
	}
	names := append([]string(nil), ev.Channels...)
	if ev.Channel != "" {
		names = append(names, ev.Channel)
	}
	if len(names) == 0 {
		return prepared{}, domain.BadRequest("channels (or channel) is required")
	}
	if len(names) > app.MaxEventChannels {
		return prepared{}, domain.BadRequest("at most %d channels per event, got %d", app.MaxEventChannels, len(names))
	}
	hubs := make([]string, 0, len(names))
	for _, n := range names {
		if ok, reason := validChannelName(n, app.MaxChannelNameLength); !ok {
			return prepared{}, domain.BadRequest("channel %q: %s", truncate(n, 64), reason)
		}
		if classify(n).encrypted && len(names) > 1 {
			return prepared{}, domain.BadRequest("an event to an encrypted channel must name exactly one channel")
		}
		hubs = append(hubs, hubChannel(app, n))
	}
	if ev.SocketID != "" && !socketIDRE.MatchString(ev.SocketID) {
		return prepared{}, domain.BadRequest("socket_id must look like 123.456")
	}
	info, err := parseInfo(ev.Info, "user_count", "subscription_count")
	if err != nil {
		return prepared{}, err
	}
	env := domain.RawEnvelope(ev.Name, domain.Scope{Channels: hubs}, ev.Data)
	env.Except = ev.SocketID
	if len(tags) > 0 {
		env.Tags = tags
	}
	return prepared{env: env, names: names, info: info}, nil
}

// parseInfo splits an info parameter and checks each attribute.
func parseInfo(s string, allowed ...string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, x := range allowed {
			ok = ok || x == f
		}
		if !ok {
			return nil, domain.BadRequest("info attribute %q is not supported (want %s)", truncate(f, 64), strings.Join(allowed, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// publish writes the events to the outbox in one transaction.
func (a *Adapter) publish(ctx context.Context, ps ...prepared) error {
	return a.cfg.DB.InTx(ctx, func(tx *domain.Tx) error {
		for _, p := range ps {
			tx.EmitEnvelope(p.env)
		}
		return nil
	})
}

// channelInfo answers the info attributes of one channel from this node's
// state (subscriptions and presence).
func (a *Adapter) channelInfo(app *App, name string, attrs []string) map[string]any {
	out := map[string]any{}
	ci := classify(name)
	for _, at := range attrs {
		switch {
		case at == "user_count" && ci.presence:
			_, users := a.node.Presence.Count(hubChannel(app, name))
			out["user_count"] = users
		case at == "subscription_count":
			// Presence channels too: Pusher's SDKs ask for it there
			// (pusher-http-php's README); it counts subscriptions (a user
			// with two connections counts twice), user_count counts users.
			out["subscription_count"] = a.subscriptions(app, name)
		}
	}
	return out
}

func decodeBody(c echo.Context, v any) error {
	return domain.Bind(c, v)
}

func (a *Adapter) apiEvents(c echo.Context) error {
	app := appOf(c)
	var ev eventIn
	if err := decodeBody(c, &ev); err != nil {
		return err
	}
	p, err := a.prepare(app, ev)
	if err != nil {
		return err
	}
	if err := a.publish(c.Request().Context(), p); err != nil {
		return err
	}
	if len(p.info) == 0 {
		return c.JSON(http.StatusOK, struct{}{})
	}
	chans := map[string]any{}
	for _, n := range p.names {
		chans[n] = a.channelInfo(app, n, p.info)
	}
	return c.JSON(http.StatusOK, map[string]any{"channels": chans})
}

func (a *Adapter) apiBatchEvents(c echo.Context) error {
	app := appOf(c)
	var in struct {
		Batch []eventIn `json:"batch"`
	}
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	if len(in.Batch) == 0 {
		return domain.BadRequest("batch is required")
	}
	if len(in.Batch) > app.MaxBatchSize {
		return domain.BadRequest("at most %d events per batch, got %d", app.MaxBatchSize, len(in.Batch))
	}
	ps := make([]prepared, 0, len(in.Batch))
	anyInfo := false
	for i, ev := range in.Batch {
		p, err := a.prepare(app, ev)
		if err != nil {
			if e, ok := domain.AsError(err); ok {
				return &domain.Error{Status: e.Status, Code: e.Code, Message: "batch[" + itoa(i) + "]: " + e.Message}
			}
			return err
		}
		anyInfo = anyInfo || len(p.info) > 0
		ps = append(ps, p)
	}
	if err := a.publish(c.Request().Context(), ps...); err != nil {
		return err
	}
	if !anyInfo {
		return c.JSON(http.StatusOK, struct{}{})
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		info := map[string]any{}
		if len(p.info) > 0 {
			info = a.channelInfo(app, p.names[0], p.info)
		}
		out = append(out, info)
	}
	return c.JSON(http.StatusOK, map[string]any{"batch": out})
}

// apiChannels lists occupied channels: GET /apps/{id}/channels
// ?filter_by_prefix=&info=user_count,subscription_count.
func (a *Adapter) apiChannels(c echo.Context) error {
	app := appOf(c)
	prefix := c.QueryParam("filter_by_prefix")
	info, err := parseInfo(c.QueryParam("info"), "user_count", "subscription_count")
	if err != nil {
		return err
	}
	for _, at := range info {
		if at == "user_count" && !strings.HasPrefix(prefix, "presence-") {
			return domain.BadRequest("info=user_count needs filter_by_prefix=presence-")
		}
	}
	names := make([]string, 0)
	for n := range a.occupied(app) {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	chans := make(map[string]any, len(names))
	for _, n := range names {
		chans[n] = a.channelInfo(app, n, info)
	}
	return c.JSON(http.StatusOK, map[string]any{"channels": chans})
}

func channelParam(c echo.Context, app *App) (string, error) {
	name, err := url.PathUnescape(c.Param("channel_name"))
	if err != nil {
		return "", domain.BadRequest("channel name is not valid URL encoding")
	}
	if ok, reason := validChannelName(name, app.MaxChannelNameLength); !ok {
		return "", domain.BadRequest("%s", reason)
	}
	return name, nil
}

// apiChannel describes one channel: GET /apps/{id}/channels/{name}?info=.
func (a *Adapter) apiChannel(c echo.Context) error {
	app := appOf(c)
	name, err := channelParam(c, app)
	if err != nil {
		return err
	}
	info, err := parseInfo(c.QueryParam("info"), "user_count", "subscription_count", "cache")
	if err != nil {
		return err
	}
	ci := classify(name)
	for _, at := range info {
		switch {
		case at == "user_count" && !ci.presence:
			return domain.BadRequest("user_count is only available for presence channels")
		case at == "cache" && !ci.cache:
			return domain.BadRequest("cache is only available for cache channels")
		}
	}
	out := a.channelInfo(app, name, info)
	out["occupied"] = a.subscriptions(app, name) > 0
	for _, at := range info {
		if at != "cache" {
			continue
		}
		out["cache"] = nil
		if e, ok := a.cache.lookup(hubChannel(app, name), a.storedCacheEvent); ok {
			data := string(e.data)
			if e.tags["raw_string"] == "1" {
				var s string
				if json.Unmarshal(e.data, &s) == nil {
					data = s
				}
			}
			out["cache"] = map[string]any{"event": e.event, "data": data, "ttl": int(e.expires.Sub(a.cfg.Now()).Seconds())}
		}
	}
	return c.JSON(http.StatusOK, out)
}

// apiUsers lists a presence channel's users: {"users":[{"id":"1"}]}.
func (a *Adapter) apiUsers(c echo.Context) error {
	app := appOf(c)
	name, err := channelParam(c, app)
	if err != nil {
		return err
	}
	if !classify(name).presence {
		return domain.BadRequest("the channel must be a presence channel")
	}
	users := []map[string]string{}
	for _, m := range a.node.Presence.Members(hubChannel(app, name)) {
		users = append(users, map[string]string{"id": m.UserID})
	}
	return c.JSON(http.StatusOK, map[string]any{"users": users})
}
