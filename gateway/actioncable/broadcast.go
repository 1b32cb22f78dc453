package actioncable

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
)

// The broadcast endpoint is AnyCable's HTTP broadcaster: an app backend
// that did ActionCable.server.broadcast(stream, message), or published
// through AnyCable's HTTP broadcast adapter, POSTs the same body here:
//
//	POST /_broadcast
//	Authorization: Bearer <broadcast key>
//	{"stream": "chat-room-7-channel", "data": "{\"text\":\"hi\"}", "meta": {}}
//
// or an array of those (all or nothing). data is AnyCable's string (JSON
// text, or any text) or, as a Switchboard extension, the JSON value
// itself. Each publication goes through the outbox like every other: the
// 201 is sent after the commit, and the relay delivers it on every node,
// after the events committed before it.
//
// The stream is a canonical channel, so the same broadcast reaches the
// channel's Pusher and Centrifugo subscribers too (see publicationOf).

// BroadcastPath is where the endpoint is served (AnyCable's path).
const BroadcastPath = "/_broadcast"

// Broadcast limits.
const (
	// DefaultMaxBroadcastData is the largest data of one publication, in
	// bytes, unless Config.MaxBroadcastData says otherwise.
	DefaultMaxBroadcastData = 64 << 10
	// MaxBroadcastBatch is the most publications in one request.
	MaxBroadcastBatch = 100
	// broadcastEvent names a verbatim broadcast for Pusher clients.
	broadcastEvent = "broadcast"
)

// broadcastIn is one publication of the request, in AnyCable's format.
type broadcastIn struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
	Meta   *struct {
		// ExcludeSocket is a connection that must not receive the
		// publication (a Pusher socket id, a Centrifugo client id).
		ExcludeSocket string `json:"exclude_socket"`
	} `json:"meta"`
}

// broadcastKey checks Authorization: Bearer <key> in constant time. An
// empty key disables the endpoint: every call is 401.
func (a *Adapter) broadcastKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.cfg.BroadcastKey == "" {
			return &domain.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "the broadcast endpoint is disabled: set SWITCHBOARD_BROADCAST_KEY (or SWITCHBOARD_API_KEY)"}
		}
		h := c.Request().Header.Get("Authorization")
		got, ok := "", len(h) > 7 && strings.EqualFold(h[:7], "bearer ")
		if ok {
			got = strings.TrimSpace(h[7:])
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.BroadcastKey)) != 1 {
			return &domain.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "missing or invalid broadcast key (Authorization: Bearer <key>)"}
		}
		return next(c)
	}
}

// broadcast serves POST /_broadcast: 201 once every publication of the
// request is committed; 400/422 (nothing published) for a bad one.
func (a *Adapter) broadcast(c echo.Context) error {
	var raw json.RawMessage
	if err := domain.Bind(c, &raw); err != nil {
		return err
	}
	var ins []broadcastIn
	batch := bytes.HasPrefix(raw, []byte("["))
	if batch {
		if err := json.Unmarshal(raw, &ins); err != nil {
			return domain.BadRequest("the body must be a publication {\"stream\",\"data\"} or an array of them: %v", err)
		}
		if len(ins) == 0 {
			return domain.Invalid("body", "the array holds no publication")
		}
		if len(ins) > MaxBroadcastBatch {
			return domain.Invalid("body", "at most %d publications per request, got %d", MaxBroadcastBatch, len(ins))
		}
	} else {
		var in broadcastIn
		if err := json.Unmarshal(raw, &in); err != nil {
			return domain.BadRequest("the body must be a publication {\"stream\",\"data\"} or an array of them: %v", err)
		}
		ins = []broadcastIn{in}
	}
	envs := make([]domain.Envelope, 0, len(ins))
	for i, in := range ins {
		env, err := a.publicationOf(in)
		if err != nil {
			if e, ok := domain.AsError(err); ok && batch {
				return &domain.Error{Status: e.Status, Code: e.Code, Field: fmt.Sprintf("[%d].%s", i, e.Field),
					Message: fmt.Sprintf("publication %d: %s", i, e.Message)}
			}
			return err
		}
		envs = append(envs, env)
	}
	if err := a.publish(c.Request().Context(), envs); err != nil {
		return err
	}
	return c.NoContent(http.StatusCreated)
}

// publicationOf validates one publication and builds its envelope.
//
// The message is data as given: a JSON string holding JSON is that JSON
// (AnyCable's rule: data is usually JSON-encoded), any other string is
// that string, and any other JSON value (Switchboard's extension) is that
// value. @rails/actioncable's received() gets exactly the message. The
// other front doors see it this way:
//   - a message shaped {"event": name, "data": payload} (what this
//     gateway's own channels send) is an event like a domain event:
//     Pusher event name with payload, Centrifugo {"type","data"};
//   - any other message is delivered verbatim (gateway.TagVerbatim): as
//     Pusher event "broadcast" with the message as data, as the
//     Centrifugo publication's data.
func (a *Adapter) publicationOf(in broadcastIn) (domain.Envelope, error) {
	if in.Stream == "" {
		return domain.Envelope{}, domain.Invalid("stream", "is required")
	}
	if !gateway.IsCanonical(in.Stream) {
		return domain.Envelope{}, domain.Invalid("stream", "%q is not a Switchboard channel (a stream is a canonical channel: "+
			"notification-channel-42, chat-room-7-channel, dashboard.project.demo.attendees, ...)", truncate(in.Stream, 64))
	}
	if len(in.Data) == 0 || string(in.Data) == "null" {
		return domain.Envelope{}, domain.Invalid("data", "is required")
	}
	msg := []byte(in.Data)
	if msg[0] == '"' {
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return domain.Envelope{}, domain.Invalid("data", "is not a valid JSON string")
		}
		if t := strings.TrimSpace(s); t != "" && t != "null" && json.Valid([]byte(t)) {
			msg = []byte(t)
		}
	}
	if max := a.cfg.MaxBroadcastData; len(msg) > max {
		return domain.Envelope{}, &domain.Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Field: "data",
			Message: fmt.Sprintf("data is %d bytes, more than the %d allowed", len(msg), max)}
	}
	scope := domain.Scope{Channels: []string{in.Stream}}
	var env domain.Envelope
	if name, payload, ok := eventShaped(msg); ok {
		env = domain.RawEnvelope(name, scope, payload)
	} else {
		env = domain.RawEnvelope(broadcastEvent, scope, json.RawMessage(msg))
		env.Tags = map[string]string{gateway.TagVerbatim: "1"}
	}
	if in.Meta != nil && in.Meta.ExcludeSocket != "" {
		if len(in.Meta.ExcludeSocket) > 128 {
			return domain.Envelope{}, domain.Invalid("meta.exclude_socket", "must be at most 128 characters")
		}
		env.Except = in.Meta.ExcludeSocket
	}
	return env, nil
}

// eventShaped reports whether msg is exactly {"event": name, "data":
// payload} with a name of 1-200 characters, and returns its parts.
func eventShaped(msg []byte) (name string, payload json.RawMessage, ok bool) {
	if msg[0] != '{' {
		return "", nil, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(msg, &fields) != nil || len(fields) != 2 {
		return "", nil, false
	}
	ev, data := fields["event"], fields["data"]
	if len(ev) == 0 || len(data) == 0 || json.Unmarshal(ev, &name) != nil || name == "" || len(name) > 200 {
		return "", nil, false
	}
	return name, data, true
}

// publish writes envs to the outbox in one transaction.
func (a *Adapter) publish(ctx context.Context, envs []domain.Envelope) error {
	if err := a.cfg.DB.InTx(ctx, func(tx *domain.Tx) error {
		tx.EmitEnvelope(envs...)
		return nil
	}); err != nil {
		return fmt.Errorf("actioncable: broadcast to outbox: %w", err)
	}
	return nil
}

// DisconnectUser closes this node's connections of d.User with
// {"type":"disconnect","reason":"remote","reconnect":d.Reconnect}, what
// Rails' remote_connections.where(current_user: u).disconnect sends
// (gateway.Disconnector).
func (a *Adapter) DisconnectUser(d gateway.UserDisconnect) int {
	n := 0
	for _, c := range a.conns.ByUser(d.User) {
		if d.Spares(c.id) {
			continue
		}
		c.closeWith(ReasonRemote, d.Reconnect)
		n++
	}
	return n
}

var _ gateway.Disconnector = (*Adapter)(nil)
