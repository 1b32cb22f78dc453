package centrifuge

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/centrifugal/protocol"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// The server API follows Centrifugo's HTTP API (v5+ format): POST
// /api/<method> with a JSON body, answered {"result":{…}} or, for errors of
// the protocol's own kind (unknown channel, …), HTTP 200 with
// {"error":{"code":102,"message":"unknown channel"}} — unless the request
// sets X-Centrifugo-Error-Mode: transport, which turns them into HTTP 4xx.
// A body that is not JSON is a plain 400 and a missing or wrong key a 401,
// in Switchboard's error shape.

// apiKey checks `X-API-Key: <key>`, `Authorization: apikey <key>` or
// ?api_key=<key>. When X-API-Key is present the others are not consulted,
// as in Centrifugo.
func (a *Adapter) apiKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		got := r.Header.Get("X-API-Key")
		if got == "" {
			h := r.Header.Get("Authorization")
			if len(h) > 7 && strings.EqualFold(h[:7], "apikey ") {
				got = strings.TrimSpace(h[7:])
			} else {
				got = r.URL.Query().Get("api_key")
			}
		}
		ok := got != "" && a.cfg.APIKey != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.APIKey)) == 1
		if !ok {
			return &domain.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or invalid API key"}
		}
		return next(c)
	}
}

type apiError struct {
	Error *protocol.Error `json:"error"`
}

type apiResult struct {
	Result any `json:"result"`
}

// fail answers a protocol error the way the request's error mode asks.
func fail(c echo.Context, e *protocol.Error) error {
	if strings.EqualFold(c.Request().Header.Get("X-Centrifugo-Error-Mode"), "transport") {
		status := http.StatusBadRequest
		if e.Code == errInternal.Code {
			status = http.StatusInternalServerError
		}
		return c.JSON(status, e)
	}
	return c.JSON(http.StatusOK, apiError{Error: e})
}

type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

type broadcastRequest struct {
	Channels []string        `json:"channels"`
	Data     json.RawMessage `json:"data"`
}

// serverChannel resolves a channel the server API may publish to:
// namespace channels only, since canonical channels carry domain events
// written by the modules.
func (a *Adapter) serverChannel(name string) (channel, *protocol.Error) {
	ch, perr := a.res.resolve(name)
	if perr != nil {
		return channel{}, perr
	}
	if ch.canonical {
		return channel{}, &protocol.Error{Code: errPermissionDenied.Code, Message: "permission denied: canonical channels carry domain events only"}
	}
	return ch, nil
}

func (a *Adapter) apiPublish(c echo.Context) error {
	var req publishRequest
	if err := domain.Bind(c, &req); err != nil {
		return err
	}
	ch, perr := a.serverChannel(req.Channel)
	if perr != nil {
		return fail(c, perr)
	}
	if !validJSON(req.Data) || string(req.Data) == "null" {
		return fail(c, &protocol.Error{Code: errBadRequest.Code, Message: "bad request: data is required"})
	}
	if err := a.publishOutbox(c.Request().Context(), []channel{ch}, req.Data, nil); err != nil {
		a.log.Error("api publish", "channel", ch.name, "err", err)
		return fail(c, errInternal)
	}
	return c.JSON(http.StatusOK, apiResult{Result: struct{}{}})
}

type publishResponse struct {
	Error  *protocol.Error `json:"error,omitempty"`
	Result *struct{}       `json:"result,omitempty"`
}

func (a *Adapter) apiBroadcast(c echo.Context) error {
	var req broadcastRequest
	if err := domain.Bind(c, &req); err != nil {
		return err
	}
	if len(req.Channels) == 0 || !validJSON(req.Data) || string(req.Data) == "null" {
		return fail(c, &protocol.Error{Code: errBadRequest.Code, Message: "bad request: channels and data are required"})
	}
	resp := make([]publishResponse, len(req.Channels))
	var chans []channel
	for i, name := range req.Channels {
		ch, perr := a.serverChannel(name)
		if perr != nil {
			resp[i].Error = perr
			continue
		}
		chans = append(chans, ch)
		resp[i].Result = &struct{}{}
	}
	if len(chans) > 0 {
		// One envelope for every channel: one outbox row, one commit.
		if err := a.publishOutbox(c.Request().Context(), chans, req.Data, nil); err != nil {
			a.log.Error("api broadcast", "err", err)
			return fail(c, errInternal)
		}
	}
	return c.JSON(http.StatusOK, apiResult{Result: map[string]any{"responses": resp}})
}

// publishOutbox writes one publication for chans to the outbox and returns
// after the commit: from there the relay, the broker and node.Dispatch
// deliver it like any domain event (and the History numbers it). The
// envelope is named after the data's "type" when it has one (the seed's
// {"type","data"} events), so logs and other consumers can tell events apart.
func (a *Adapter) publishOutbox(ctx context.Context, chans []channel, data json.RawMessage, from *gateway.ClientInfo) error {
	hubs := make([]string, len(chans))
	for i, ch := range chans {
		hubs[i] = ch.hub
	}
	var typed struct {
		Type string `json:"type"`
	}
	name := "centrifugo.publication"
	if json.Unmarshal(data, &typed) == nil && typed.Type != "" && len(typed.Type) <= 200 {
		name = typed.Type
	}
	env := domain.RawEnvelope(name, domain.Scope{Channels: hubs}, data)
	env.Tags = map[string]string{tagRaw: "1"}
	if from != nil {
		env.Tags[tagFromUser] = from.UserID
		env.Tags[tagFromClient] = from.ConnID
		if len(from.Info) > 0 {
			env.Tags[tagFromInfo] = string(from.Info)
		}
	}
	if err := a.cfg.DB.InTx(ctx, func(tx *domain.Tx) error {
		tx.EmitEnvelope(env)
		return nil
	}); err != nil {
		return fmt.Errorf("centrifuge: publish to outbox: %w", err)
	}
	return nil
}

type channelRequest struct {
	Channel string                   `json:"channel"`
	Limit   int32                    `json:"limit"`
	Since   *protocol.StreamPosition `json:"since"`
	Reverse bool                     `json:"reverse"`
}

func (a *Adapter) apiPresence(c echo.Context) error {
	var req channelRequest
	if err := domain.Bind(c, &req); err != nil {
		return err
	}
	ch, perr := a.res.resolve(req.Channel)
	if perr == nil && !ch.opts.Presence {
		perr = errNotAvailable
	}
	if perr != nil {
		return fail(c, perr)
	}
	return c.JSON(http.StatusOK, apiResult{Result: map[string]any{"presence": presenceMap(a.node.Presence, ch.hub)}})
}

func (a *Adapter) apiPresenceStats(c echo.Context) error {
	var req channelRequest
	if err := domain.Bind(c, &req); err != nil {
		return err
	}
	ch, perr := a.res.resolve(req.Channel)
	if perr == nil && !ch.opts.Presence {
		perr = errNotAvailable
	}
	if perr != nil {
		return fail(c, perr)
	}
	clients, users := a.node.Presence.Count(ch.hub)
	return c.JSON(http.StatusOK, apiResult{Result: map[string]int{"num_clients": clients, "num_users": users}})
}

func (a *Adapter) apiHistory(c echo.Context) error {
	var req channelRequest
	if err := domain.Bind(c, &req); err != nil {
		return err
	}
	ch, perr := a.res.resolve(req.Channel)
	if perr == nil && !ch.opts.History().Enabled() {
		perr = errNotAvailable
	}
	if perr != nil {
		return fail(c, perr)
	}
	res, perr := readHistory(c.Request().Context(), a.node.History, ch, req.Limit, req.Since, req.Reverse)
	if perr != nil {
		return fail(c, perr)
	}
	return c.JSON(http.StatusOK, apiResult{Result: res})
}
