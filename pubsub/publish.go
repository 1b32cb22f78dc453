package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"switchboard/domain"
)

// Scope is where a publish goes, as the seed writes it. The organization
// is never in the body: it is the API token's.
type Scope struct {
	Type      string `json:"type"`
	EventID   string `json:"event_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// Publication is a validated publish.
type Publication struct {
	Scope     Scope           `json:"scope"`
	EventName string          `json:"eventName"`
	Data      json.RawMessage `json:"data"`
}

// Published is the event of a publish: its wire name is the publisher's
// eventName and its data the publisher's object, so a Pusher client binds
// the name and a Centrifugo client gets {"type": eventName, "data": ...}.
type Published struct {
	name string
	data json.RawMessage
}

// Name is the publisher's eventName.
func (p Published) Name() string { return p.name }

// MarshalJSON is the publisher's data as sent.
func (p Published) MarshalJSON() ([]byte, error) { return p.data, nil }

// Result answers a publish.
type Result struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
	Scope          Scope  `json:"scope"`
	EventName      string `json:"eventName"`
	Channel        string `json:"channel"`
}

// Channel is the channel of p's scope in org.
func (p Publication) Channel(org string) string {
	switch p.Scope.Type {
	case domain.PubSubOrganization:
		return domain.PubSubChannel(org, "", "")
	case domain.PubSubEvent:
		return domain.PubSubChannel(org, p.Scope.EventID, "")
	}
	return domain.PubSubChannel(org, p.Scope.EventID, p.Scope.SessionID)
}

// Publish commits p's event for org to the outbox; it is delivered after
// the commit, like every domain event.
func (s *Store) Publish(ctx context.Context, org string, p Publication) (Result, error) {
	ch := p.Channel(org)
	res := Result{OrganizationID: org, Scope: p.Scope, EventName: p.EventName, Channel: ch}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		env, err := domain.NewEnvelope(ctx, domain.Scope{Channels: []string{ch}}, Published{name: p.EventName, data: p.Data})
		if err != nil {
			return err
		}
		res.ID = env.ID
		tx.EmitEnvelope(env)
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("pubsub: publish: %w", err)
	}
	return res, nil
}

// PublishBody is the seed's request body, read loosely so every mistake
// is a 422 naming its field rather than a decoder's 400.
type PublishBody struct {
	Scope   json.RawMessage `json:"scope"`
	Payload json.RawMessage `json:"payload"`
}

// Parse validates a publish body with the seed's rules: type is
// organization, event or session; event_id is required for event and
// session, session_id for session; eventName is a non-empty string; data
// is an object of at most maxData bytes.
func (b PublishBody) Parse(maxData int) (Publication, error) {
	var p Publication
	scope, err := object(b.Scope, "scope")
	if err != nil {
		return p, err
	}
	if p.Scope.Type, err = str(scope["type"], "scope.type"); err != nil {
		return p, err
	}
	switch p.Scope.Type {
	case domain.PubSubOrganization, domain.PubSubEvent, domain.PubSubSession:
	default:
		return p, domain.Invalid("scope.type", "must be organization, event or session")
	}
	if p.Scope.Type != domain.PubSubOrganization {
		if p.Scope.EventID, err = id(scope["event_id"], "scope.event_id", p.Scope.Type); err != nil {
			return p, err
		}
	}
	if p.Scope.Type == domain.PubSubSession {
		if p.Scope.SessionID, err = id(scope["session_id"], "scope.session_id", p.Scope.Type); err != nil {
			return p, err
		}
	}
	payload, err := object(b.Payload, "payload")
	if err != nil {
		return p, err
	}
	event, err := object(payload["event"], "payload.event")
	if err != nil {
		return p, err
	}
	if p.EventName, err = str(event["eventName"], "payload.event.eventName"); err != nil {
		return p, err
	}
	if err := ValidEventName(p.EventName); err != nil {
		return p, domain.Invalid("payload.event.eventName", "%s", err.Error())
	}
	if _, err := object(event["data"], "payload.event.data"); err != nil {
		return p, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, event["data"]); err != nil {
		return p, domain.Invalid("payload.event.data", "must be an object")
	}
	if compact.Len() > maxData {
		return p, domain.Invalid("payload.event.data", "must be at most %d bytes of JSON, got %d", maxData, compact.Len())
	}
	p.Data = compact.Bytes()
	return p, nil
}

// ValidEventName: 1 to 200 characters, not one of Pusher's reserved
// prefixes (the same event reaches pusher-js clients by its name).
func ValidEventName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("must be a non-empty string")
	case len(name) > 200:
		return fmt.Errorf("must be at most 200 characters")
	case strings.HasPrefix(name, "pusher:"), strings.HasPrefix(name, "pusher_internal:"):
		return fmt.Errorf("must not start with pusher: or pusher_internal:")
	}
	return nil
}

func object(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, domain.Invalid(field, "is required")
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, domain.Invalid(field, "must be an object")
	}
	return m, nil
}

func str(raw json.RawMessage, field string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", domain.Invalid(field, "is required")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", domain.Invalid(field, "must be a string")
	}
	return s, nil
}

func id(raw json.RawMessage, field, scopeType string) (string, error) {
	s, err := str(raw, field)
	if err != nil {
		if e, ok := domain.AsError(err); ok && strings.HasSuffix(e.Message, "is required") {
			return "", domain.Invalid(field, "is required for scope type %s", scopeType)
		}
		return "", err
	}
	if !domain.ValidPubSubID(s) {
		return "", domain.Invalid(field, "must be 1 to 128 of [A-Za-z0-9_-]")
	}
	return s, nil
}
