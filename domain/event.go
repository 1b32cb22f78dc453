// Package domain is the contract every module and the gateway share: typed
// events and their envelope, the transactional outbox, database helpers and
// the REST conventions (errors, request and operation ids, identity).
package domain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event is a typed domain event. Its wire name is explicit (never taken from
// the Go type by reflection) so that renaming a type can't rename an event
// that unmodified clients listen for.
type Event interface {
	Name() string
}

// TriggeredBy correlates an event with the REST call that caused it. It is
// merged into the event data on the wire as "x-triggered-by".
type TriggeredBy struct {
	OperationID string `json:"operation_id"`
	RequestID   string `json:"request_id"`
}

// Envelope is what travels through the outbox, the relay and the broker to
// the gateway. Data is the exact object clients receive.
type Envelope struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	OccurredAt  time.Time       `json:"occurred_at"`
	Scope       Scope           `json:"scope"`
	TriggeredBy *TriggeredBy    `json:"triggered_by,omitempty"`
	Data        json.RawMessage `json:"data"`
	// Except is a connection id that must not receive the event (Pusher's
	// socket_id exclusion on the HTTP API).
	Except string `json:"except,omitempty"`
	// Tags carry protocol-specific extras through the outbox (e.g. that Data
	// is a JSON string to be sent as is). Read by adapters, never by modules.
	Tags map[string]string `json:"tags,omitempty"`
	// Revoke lists (member, canonical channel) pairs whose access ended in
	// this transaction (a participant removed from a room): the gateway drops
	// those live subscriptions before fanning the event out.
	Revoke []Revocation `json:"revoke,omitempty"`
	// Streams are the places this event took in its channels' durable
	// streams (Centrifugo offsets, Pusher cache channels). The relay's sink
	// sets them before the event leaves for any hub, so every node and
	// every replay after a restart gives it the same offset. Never set by
	// modules.
	Streams []StreamOffset `json:"streams,omitempty"`
}

// StreamOffset is an event's position in one channel's stream.
type StreamOffset struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// StreamOffset returns env's position in channel's stream, if it has one.
func (env Envelope) StreamOffset(channel string) (uint64, string) {
	for _, s := range env.Streams {
		if s.Channel == channel {
			return s.Offset, s.Epoch
		}
	}
	return 0, ""
}

// Revocation says that Member may no longer read Channel.
type Revocation struct {
	Member  string `json:"member"`
	Channel string `json:"channel"`
}

// NewEnvelope encodes ev for scope. When ctx carries a TriggeredBy (set by the
// REST middleware) it is merged into the data as "x-triggered-by".
func NewEnvelope(ctx context.Context, scope Scope, ev Event) (Envelope, error) {
	if ev == nil || ev.Name() == "" {
		return Envelope{}, errors.New("domain: event without a name")
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return Envelope{}, fmt.Errorf("domain: encode %s: %w", ev.Name(), err)
	}
	env := Envelope{
		ID:         uuid.Must(uuid.NewV7()).String(),
		Name:       ev.Name(),
		OccurredAt: time.Now().UTC(),
		Scope:      scope,
		Data:       data,
	}
	if tb, ok := TriggerFrom(ctx); ok {
		env.TriggeredBy = &tb
		if env.Data, err = withField(data, "x-triggered-by", tb); err != nil {
			return Envelope{}, fmt.Errorf("domain: encode %s: %w", ev.Name(), err)
		}
	}
	return env, nil
}

// RawEnvelope wraps data that is already encoded (a server API publish) so it
// travels the same outbox path as typed events.
func RawEnvelope(name string, scope Scope, data json.RawMessage) Envelope {
	return Envelope{
		ID:         uuid.Must(uuid.NewV7()).String(),
		Name:       name,
		OccurredAt: time.Now().UTC(),
		Scope:      scope,
		Data:       data,
	}
}

// withField appends key to a JSON object without decoding it.
func withField(obj []byte, key string, v any) ([]byte, error) {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return nil, errors.New("event data is not a JSON object")
	}
	val, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	k, _ := json.Marshal(key)
	out := make([]byte, 0, len(obj)+len(k)+len(val)+2)
	out = append(out, obj[:len(obj)-1]...)
	if len(bytes.TrimSpace(obj[1:len(obj)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, k...)
	out = append(out, ':')
	out = append(out, val...)
	return append(out, '}'), nil
}

// Timestamp is the wire format of every event time: RFC 3339, UTC, seconds.
type Timestamp time.Time

// MarshalJSON renders t as "2024-01-15T10:30:00Z".
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339))
}

// UnmarshalJSON accepts any RFC 3339 time.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Timestamp(v)
	return nil
}
