package centrifuge

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/centrifugal/protocol"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// The server API follows Centrifugo's HTTP API (v5+ format): POST
// /api/<method> with a JSON body, answered {"result":{…}} or, for errors of
// the protocol's own kind (unknown channel, …), HTTP 200 with
// {"error":{"code":102,"message":"unknown channel"}} — unless the request
// sets X-Centrifugo-Error-Mode: transport, which turns them into HTTP 4xx.
// A body that is not JSON is a plain 400 and a missing or wrong key a 401,
// in Switchboard's error shape. POST /api/batch runs several methods in
// one request, in order: {"commands":[{"publish":{…}},…]} is answered
// {"replies":[{"publish":{…}},{"error":{…}},…]}.
//
// Every method is a function of its request's JSON (apiMethod), so the
// routes and batch run the same code.

// apiMethod runs one server API method on its request body and returns the
// result (encoded as the reply's result) or a protocol error.
type apiMethod func(ctx context.Context, body json.RawMessage) (any, *protocol.Error)

// apiMethods are the methods, by name (the path after /api/ and the key
// of a batch command).
func (a *Adapter) apiMethods() map[string]apiMethod {
	return map[string]apiMethod{
		"publish":        a.callPublish,
		"broadcast":      a.callBroadcast,
		"subscribe":      a.callSubscribe,
		"unsubscribe":    a.callUnsubscribe,
		"disconnect":     a.callDisconnect,
		"refresh":        a.callRefresh,
		"presence":       a.callPresence,
		"presence_stats": a.callPresenceStats,
		"history":        a.callHistory,
		"history_remove": a.callHistoryRemove,
		"channels":       a.callChannels,
		"info":           a.callInfo,
	}
}

// APIMethods lists the server API's method names, batch included.
func APIMethods() []string {
	return []string{"publish", "broadcast", "subscribe", "unsubscribe", "disconnect", "refresh", "presence",
		"presence_stats", "history", "history_remove", "channels", "info", "batch"}
}

// apiRoutes registers POST /api/<method> for every method, and batch.
func (a *Adapter) apiRoutes(e *echo.Echo) {
	// Per-route middleware, not a group: an echo group with middleware
	// catches every unknown /api/* path, /api/v1 included.
	for name, m := range a.apiMethods() {
		e.POST("/api/"+name, a.apiHandler(m), a.apiKey)
	}
	e.POST("/api/batch", a.apiBatch, a.apiKey)
}

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

// apiHandler serves one method on its own route.
func (a *Adapter) apiHandler(m apiMethod) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body json.RawMessage
		if err := domain.Bind(c, &body); err != nil {
			return err
		}
		res, perr := m(c.Request().Context(), body)
		if perr != nil {
			return fail(c, perr)
		}
		return c.JSON(http.StatusOK, apiResult{Result: res})
	}
}

// maxBatchCommands bounds one batch: each command may wait for the
// relay (publish) or the database.
const maxBatchCommands = 100

// apiBatch runs the commands in order (a "parallel" request is run in
// order too, which it allows) and answers one reply per command: the
// method's result under the method's name, or an error.
func (a *Adapter) apiBatch(c echo.Context) error {
	var req struct {
		Commands []map[string]json.RawMessage `json:"commands"`
		Parallel bool                         `json:"parallel"`
	}
	if err := domain.Bind(c, &req); err != nil {
		return err
	}
	if len(req.Commands) == 0 {
		return fail(c, &protocol.Error{Code: errBadRequest.Code, Message: "bad request: commands are required"})
	}
	if len(req.Commands) > maxBatchCommands {
		return fail(c, &protocol.Error{Code: errBadRequest.Code, Message: "bad request: at most 100 commands per batch"})
	}
	methods := a.apiMethods()
	replies := make([]map[string]any, len(req.Commands))
	for i, cmd := range req.Commands {
		replies[i] = a.batchCommand(c.Request().Context(), methods, cmd)
	}
	return c.JSON(http.StatusOK, map[string]any{"replies": replies})
}

// batchCommand runs one command of a batch: an object with exactly one
// method key.
func (a *Adapter) batchCommand(ctx context.Context, methods map[string]apiMethod, cmd map[string]json.RawMessage) map[string]any {
	if len(cmd) != 1 {
		return map[string]any{"error": &protocol.Error{Code: errBadRequest.Code, Message: "bad request: a command has exactly one method"}}
	}
	for name, body := range cmd {
		m, ok := methods[name]
		if !ok {
			return map[string]any{"error": errMethodNotFound}
		}
		res, perr := m(ctx, body)
		if perr != nil {
			return map[string]any{"error": perr}
		}
		return map[string]any{name: res}
	}
	return nil // unreachable: cmd has one key
}

// decode reads a method's request; a body of the wrong shape is 107.
func decode(body json.RawMessage, v any) *protocol.Error {
	if len(body) == 0 || string(body) == "null" {
		body = json.RawMessage(`{}`)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &protocol.Error{Code: errBadRequest.Code, Message: "bad request: " + err.Error()}
	}
	return nil
}

// badRequest is error 107 with a reason.
func badRequest(reason string) *protocol.Error {
	return &protocol.Error{Code: errBadRequest.Code, Message: "bad request: " + reason}
}

type channelRequest struct {
	Channel string                   `json:"channel"`
	Limit   int32                    `json:"limit"`
	Since   *protocol.StreamPosition `json:"since"`
	Reverse bool                     `json:"reverse"`
}

func (a *Adapter) callPresence(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req channelRequest
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	ch, perr := a.res.resolve(req.Channel)
	if perr == nil && !ch.opts.Presence {
		perr = errNotAvailable
	}
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"presence": presenceMap(a.node.Presence, ch.hub)}, nil
}

func (a *Adapter) callPresenceStats(_ context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req channelRequest
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	ch, perr := a.res.resolve(req.Channel)
	if perr == nil && !ch.opts.Presence {
		perr = errNotAvailable
	}
	if perr != nil {
		return nil, perr
	}
	clients, users := a.node.Presence.Count(ch.hub)
	return map[string]int{"num_clients": clients, "num_users": users}, nil
}

// historyRequest decodes a request about a channel's history: the channel
// must exist and keep history.
func (a *Adapter) historyRequest(body json.RawMessage) (channelRequest, channel, *protocol.Error) {
	var req channelRequest
	if perr := decode(body, &req); perr != nil {
		return req, channel{}, perr
	}
	ch, perr := a.res.resolve(req.Channel)
	if perr == nil && !ch.opts.History().Enabled() {
		perr = errNotAvailable
	}
	return req, ch, perr
}

func (a *Adapter) callHistory(ctx context.Context, body json.RawMessage) (any, *protocol.Error) {
	req, ch, perr := a.historyRequest(body)
	if perr != nil {
		return nil, perr
	}
	res, perr := readHistory(ctx, a.node.History, ch, req.Limit, req.Since, req.Reverse)
	if perr != nil {
		return nil, perr
	}
	return res, nil
}

// callHistoryRemove drops a channel's publications, keeping its epoch and
// top offset: subscribers keep their position (Centrifugo's
// history_remove).
func (a *Adapter) callHistoryRemove(ctx context.Context, body json.RawMessage) (any, *protocol.Error) {
	_, ch, perr := a.historyRequest(body)
	if perr != nil {
		return nil, perr
	}
	if err := a.node.History.Clear(ctx, ch.hub); err != nil {
		a.log.Error("api history_remove", "channel", ch.name, "err", err)
		return nil, errInternal
	}
	return struct{}{}, nil
}
