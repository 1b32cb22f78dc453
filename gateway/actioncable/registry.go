package actioncable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"switchboard/domain"
	"switchboard/gateway"
)

// The gateway cannot run Ruby channel code, so it serves channel classes from
// a registry: each class names the canonical stream(s) an identifier's params
// select. Authorization stays the gateway's (node.Auth.CanRead), so a class
// can only ever point at a canonical channel the other protocols guard the
// same way.

// Errors a subscription is rejected with.
var (
	// ErrUnknownChannel: the identifier's channel class is not registered.
	ErrUnknownChannel = errors.New("actioncable: unknown channel class")
	// ErrBadIdentifier: the identifier is not a JSON object with a channel,
	// or a param the stream needs is missing or malformed.
	ErrBadIdentifier = errors.New("actioncable: bad identifier")
)

// maxIdentifierLen bounds what a client may make the gateway parse and keep
// per subscription; real identifiers are well under 200 bytes.
const maxIdentifierLen = 1024

// Class is one ActionCable channel class served by the gateway.
//
// Stream templates are canonical channel names with placeholders:
//   - {me}: the connection's member id (the token's sub);
//   - {param}: the identifier's param of that name (a string or an integer
//     made of letters, digits, '-' and '_', at most 128 bytes);
//   - {room_uuid:param}: the param is a chat room uuid, replaced by the
//     room's id through the configured domain.RoomResolver.
//
// Templates are tried in order; the first whose params are all present in
// the identifier wins, so a class can accept alternative spellings
// (chat_room_id or chat_room_uuid). StreamFrom adds streams the
// subscription receives as well, every one of them, as a Rails channel
// that calls stream_from several times in subscribed.
type Class struct {
	// Name is the identifier's "channel" value, e.g. "Chats::RoomChannel".
	Name string `json:"channel"`
	// Stream is a single stream template (shorthand for Streams).
	Stream string `json:"stream,omitempty"`
	// Streams are alternative stream templates, tried in order.
	Streams []string `json:"streams,omitempty"`
	// StreamFrom are stream templates streamed in addition, all of them
	// (each needs its params in the identifier). With neither Stream nor
	// Streams, the first of them is the subscription's primary stream.
	StreamFrom []string `json:"stream_from,omitempty"`
	// Actions are the perform() actions forwarded to the stream as client
	// events ("typing" → "client-typing"). Empty means none: clients only
	// listen unless the deployment says otherwise.
	Actions []string `json:"actions,omitempty"`

	templates []template // alternatives (Stream, Streams)
	also      []template // all of them (StreamFrom)
}

// BuiltinClasses are the seed's channel classes (002 community seed) plus a
// dashboard class for the project channels.
func BuiltinClasses() []Class {
	return []Class{
		{Name: "NotificationChannel", Stream: "notification-channel-{me}"},
		{Name: "ChatRoomChannel", Stream: "chat-room-channel-{me}"},
		{Name: "Chats::RoomChannel", Streams: []string{
			"chat-room-{chat_room_id}-channel",
			"chat-room-{room_uuid:chat_room_uuid}-channel",
		}},
		{Name: "Chats::CommunityMemberThreadsChannel", Stream: "chat-community-member-{me}-threads-channel"},
		{Name: "DashboardChannel", Stream: "dashboard.project.{project}.{family}"},
	}
}

// Registry maps channel classes to streams. It is immutable once built and
// safe for concurrent use.
type Registry struct {
	classes map[string]*Class
}

// NewRegistry validates classes and builds a registry. Later classes with the
// same name replace earlier ones, so a file can override a builtin.
func NewRegistry(classes ...Class) (*Registry, error) {
	r := &Registry{classes: map[string]*Class{}}
	var errs []error
	for _, c := range classes {
		if err := c.compile(); err != nil {
			errs = append(errs, err)
			continue
		}
		r.classes[c.Name] = &c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// registryFile is the JSON shape of SWITCHBOARD_CABLE_CHANNELS.
type registryFile struct {
	Channels []Class `json:"channels"`
}

// LoadRegistry builds the builtin classes plus those of the JSON file at path
// ({"channels":[{"channel":"X","stream":"...","actions":["typing"]}]}); an
// empty path means the builtins only.
func LoadRegistry(path string) (*Registry, error) {
	classes := BuiltinClasses()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("actioncable: channel registry: %w", err)
		}
		var f registryFile
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("actioncable: channel registry %s: %w", path, err)
		}
		classes = append(classes, f.Channels...)
	}
	return NewRegistry(classes...)
}

// Class returns the class registered under name.
func (r *Registry) Class(name string) (*Class, bool) {
	c, ok := r.classes[name]
	return c, ok
}

// Names lists the registered class names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.classes))
	for n := range r.classes {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Binding is what an identifier resolved to.
type Binding struct {
	Class *Class
	// Stream is the primary stream (a canonical channel): perform()
	// actions go there.
	Stream string
	// Streams are every stream the subscription receives, Stream first,
	// without repeats. Each one's messages arrive in order; messages of
	// different streams are not ordered with each other.
	Streams []string
}

// Resolve parses identifier (the opaque string the client sent) and returns
// the class and canonical stream it selects for member. rooms may be nil;
// then {room_uuid:...} templates cannot be used. It does not authorize.
func (r *Registry) Resolve(ctx context.Context, identifier, member string, rooms domain.RoomResolver) (Binding, error) {
	if len(identifier) > maxIdentifierLen {
		return Binding{}, fmt.Errorf("%w: longer than %d bytes", ErrBadIdentifier, maxIdentifierLen)
	}
	params, err := parseIdentifier(identifier)
	if err != nil {
		return Binding{}, err
	}
	var name string
	if raw, ok := params["channel"]; !ok || json.Unmarshal(raw, &name) != nil || name == "" {
		return Binding{}, fmt.Errorf("%w: no channel name", ErrBadIdentifier)
	}
	c, ok := r.classes[name]
	if !ok {
		return Binding{}, fmt.Errorf("%w: %q", ErrUnknownChannel, truncate(name, 64))
	}
	var b Binding
	for _, t := range c.templates {
		if !t.applies(params) {
			continue
		}
		stream, err := t.expand(ctx, params, member, rooms)
		if err != nil {
			return Binding{}, err
		}
		b = Binding{Class: c, Stream: stream, Streams: []string{stream}}
		break
	}
	if b.Class == nil && len(c.templates) > 0 {
		return Binding{}, fmt.Errorf("%w: %s needs %s", ErrBadIdentifier, c.Name, c.paramsHint())
	}
	b.Class = c
	for _, t := range c.also {
		if !t.applies(params) {
			return Binding{}, fmt.Errorf("%w: %s needs {%s}", ErrBadIdentifier, c.Name, strings.Join(t.params, ", "))
		}
		stream, err := t.expand(ctx, params, member, rooms)
		if err != nil {
			return Binding{}, err
		}
		if !slices.Contains(b.Streams, stream) {
			b.Streams = append(b.Streams, stream)
		}
	}
	b.Stream = b.Streams[0]
	return b, nil
}

// Allows reports whether perform(action) is forwarded for this class.
func (c *Class) Allows(action string) bool { return slices.Contains(c.Actions, action) }

func (c *Class) compile() error {
	if c.Name == "" {
		return errors.New("actioncable: channel class without a name")
	}
	srcs := c.Streams
	if c.Stream != "" {
		if len(srcs) > 0 {
			return fmt.Errorf("actioncable: %s: give stream or streams, not both", c.Name)
		}
		srcs = []string{c.Stream}
	}
	if len(srcs) == 0 && len(c.StreamFrom) == 0 {
		return fmt.Errorf("actioncable: %s: no stream template", c.Name)
	}
	c.templates, c.also = nil, nil
	for _, s := range srcs {
		t, err := parseTemplate(s)
		if err != nil {
			return fmt.Errorf("actioncable: %s: %w", c.Name, err)
		}
		c.templates = append(c.templates, t)
	}
	for _, s := range c.StreamFrom {
		t, err := parseTemplate(s)
		if err != nil {
			return fmt.Errorf("actioncable: %s: stream_from: %w", c.Name, err)
		}
		c.also = append(c.also, t)
	}
	for _, a := range c.Actions {
		if a == "" || !validValue(a) {
			return fmt.Errorf("actioncable: %s: action %q must be letters, digits, '-' or '_'", c.Name, a)
		}
	}
	return nil
}

func (c *Class) paramsHint() string {
	var alts []string
	for _, t := range c.templates {
		alts = append(alts, "{"+strings.Join(t.params, ", ")+"}")
	}
	return strings.Join(alts, " or ")
}

type partKind int

const (
	partLit partKind = iota
	partMe
	partParam
	partRoomUUID
)

type part struct {
	kind  partKind
	text  string // literal text or param name
	param string
}

type template struct {
	raw    string
	parts  []part
	params []string // identifier params the template reads
}

func parseTemplate(s string) (template, error) {
	t := template{raw: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, part{kind: partLit, text: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{kind: partLit, text: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return template{}, fmt.Errorf("stream %q: unclosed {", s)
		}
		ph := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		switch {
		case ph == "me":
			t.parts = append(t.parts, part{kind: partMe})
		case strings.HasPrefix(ph, "room_uuid:"):
			p := strings.TrimPrefix(ph, "room_uuid:")
			if !validValue(p) {
				return template{}, fmt.Errorf("stream %q: bad placeholder {%s}", s, ph)
			}
			t.parts = append(t.parts, part{kind: partRoomUUID, param: p})
			t.params = append(t.params, p)
		case validValue(ph) && ph != "channel":
			t.parts = append(t.parts, part{kind: partParam, param: ph})
			t.params = append(t.params, ph)
		default:
			return template{}, fmt.Errorf("stream %q: bad placeholder {%s}", s, ph)
		}
	}
	// Expanding with a sample value must give a Switchboard channel: a class
	// cannot point outside the channels the Authorizer knows how to guard.
	sample := t.sample()
	if !gateway.IsCanonical(sample) {
		return template{}, fmt.Errorf("stream %q is not a canonical Switchboard channel (e.g. notification-channel-{me}, chat-room-{id}-channel, dashboard.project.{project}.attendees)", s)
	}
	return t, nil
}

func (t template) sample() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.kind == partLit {
			b.WriteString(p.text)
		} else {
			b.WriteString("x1")
		}
	}
	return b.String()
}

func (t template) applies(params map[string]json.RawMessage) bool {
	for _, p := range t.params {
		if v, ok := params[p]; !ok || string(v) == "null" {
			return false
		}
	}
	return true
}

func (t template) expand(ctx context.Context, params map[string]json.RawMessage, member string, rooms domain.RoomResolver) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case partLit:
			b.WriteString(p.text)
		case partMe:
			b.WriteString(member)
		case partParam:
			v, err := paramValue(params, p.param)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		case partRoomUUID:
			v, err := paramValue(params, p.param)
			if err != nil {
				return "", err
			}
			if rooms == nil {
				return "", domain.NotFound("chat rooms cannot be looked up by uuid on this server")
			}
			id, err := rooms.RoomIDByUUID(ctx, v)
			if err != nil {
				return "", fmt.Errorf("resolve %s: %w", p.param, err)
			}
			b.WriteString(id)
		}
	}
	return b.String(), nil
}

// parseIdentifier decodes the identifier's params without changing the
// identifier itself (which is echoed as the client sent it).
func parseIdentifier(identifier string) (map[string]json.RawMessage, error) {
	var params map[string]json.RawMessage
	if err := json.Unmarshal([]byte(identifier), &params); err != nil || params == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadIdentifier)
	}
	return params, nil
}

// paramValue reads a param as a string: JSON strings and integers (Rails
// apps pass ids either way: {"chat_room_id":7} or {"chat_room_id":"7"}).
func paramValue(params map[string]json.RawMessage, name string) (string, error) {
	raw := params[name]
	var v string
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("%w: %s", ErrBadIdentifier, name)
		}
	} else {
		v = string(raw)
		if strings.Trim(v, "0123456789") != "" || v == "" {
			return "", fmt.Errorf("%w: %s must be a string or a non-negative integer", ErrBadIdentifier, name)
		}
	}
	if !validValue(v) {
		return "", fmt.Errorf("%w: %s must be 1-128 letters, digits, '-' or '_'", ErrBadIdentifier, name)
	}
	return v, nil
}

// validValue is the character set of ids in canonical channel names, so a
// param can never smuggle a '.' into a project channel or a '-channel'
// suffix of its own.
func validValue(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
