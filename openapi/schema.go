package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"switchboard/access"
	"switchboard/chat"
	"switchboard/console"
	"switchboard/domain"
	"switchboard/forms"
	"switchboard/games"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
	"switchboard/notifications"
	"switchboard/pubsub"
	"switchboard/social"
)

// Schema is a JSON Schema (2020-12, the dialect of OpenAPI 3.1) object.
type Schema = map[string]any

// Wire types whose JSON is not what their Go kind says: they marshal
// themselves. Each is described here once.
var wireTypes = map[reflect.Type]Schema{
	reflect.TypeFor[time.Time]():        {"type": "string", "format": "date-time"},
	reflect.TypeFor[domain.Timestamp](): {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, whole seconds"},
	reflect.TypeFor[json.RawMessage]():  {"description": "any JSON value"},
	reflect.TypeFor[domain.MemberID](): {"type": []any{"integer", "string"},
		"description": "a member id (a JWT sub): a JSON number when it is a decimal integer up to 2^53-1 without a leading zero, a string otherwise; both forms are accepted"},
	reflect.TypeFor[social.AuthorID](): {"type": []any{"integer", "string"},
		"description": "the author's JWT sub: a JSON number when it is a decimal integer, a string otherwise"},
}

// componentNames names the component of a Go type whose own name would
// collide with another's or say too little out of its package.
var componentNames = map[reflect.Type]string{
	reflect.TypeFor[access.Zone]():                              "AccessZone",
	reflect.TypeFor[access.Point]():                             "AccessPoint",
	reflect.TypeFor[access.Credential]():                        "AccessCredential",
	reflect.TypeFor[access.Rule]():                              "AccessRule",
	reflect.TypeFor[access.Scan]():                              "AccessScan",
	reflect.TypeFor[access.ScanAttendee]():                      "AccessScanAttendee",
	reflect.TypeFor[access.Occupancy]():                         "AccessZoneOccupancy",
	reflect.TypeFor[social.Stream]():                            "SocialStream",
	reflect.TypeFor[social.Post]():                              "SocialPost",
	reflect.TypeFor[social.Author]():                            "SocialAuthor",
	reflect.TypeFor[games.Award]():                              "GameAward",
	reflect.TypeFor[games.Standing]():                           "GameStanding",
	reflect.TypeFor[forms.Field]():                              "FormField",
	reflect.TypeFor[forms.Response]():                           "FormResponse",
	reflect.TypeFor[chat.RoomView]():                            "ChatRoom",
	reflect.TypeFor[chat.ParticipantJSON]():                     "ChatParticipant",
	reflect.TypeFor[chat.JSONMessage]():                         "ChatMessage",
	reflect.TypeFor[chat.MessageJSON]():                         "ChatMessageEdited",
	reflect.TypeFor[chat.Member]():                              "ChatMember",
	reflect.TypeFor[notifications.Actor]():                      "NotificationActor",
	reflect.TypeFor[notifications.UpdateNewNotificationCount](): "NotificationCount",
	reflect.TypeFor[notifications.ResetNewNotificationCount]():  "NotificationCountReset",
	reflect.TypeFor[pubsub.Result]():                            "PubSubPublished",
	reflect.TypeFor[pubsub.Scope]():                             "PubSubScope",
	reflect.TypeFor[pubsub.APIToken]():                          "PubSubAPIToken",
	reflect.TypeFor[pubsub.RoomToken]():                         "PubSubRoomToken",
	reflect.TypeFor[webhooks.Delivery]():                        "WebhookDelivery",
	reflect.TypeFor[webhooks.Attempt]():                         "WebhookAttempt",
	reflect.TypeFor[console.Overview]():                         "ConsoleOverview",
	reflect.TypeFor[console.NodeState]():                        "ConsoleNode",
	reflect.TypeFor[console.RelayState]():                       "ConsoleRelay",
	reflect.TypeFor[console.WebhookCounts]():                    "ConsoleWebhookCounts",
	reflect.TypeFor[console.ConsoleState]():                     "ConsoleState",
	reflect.TypeFor[console.ChannelInfo]():                      "ConsoleChannel",
	reflect.TypeFor[console.ChannelList]():                      "ConsoleChannelList",
	reflect.TypeFor[console.PresenceList]():                     "ConsolePresence",
	reflect.TypeFor[console.Session]():                          "ConsoleSession",
	reflect.TypeFor[console.TestEvent]():                        "ConsoleTestEvent",
	reflect.TypeFor[gateway.Member]():                           "PresenceMember",
}

// reflector turns Go types into schemas the way encoding/json writes and
// reads them. Named struct types written by handlers become components
// (#/components/schemas/Name); request bodies are inlined, since what a
// request needs (required fields) depends on the route.
type reflector struct {
	components map[string]Schema
	owners     map[string]reflect.Type
	// requestRequired lists the fields a handler refuses to go without,
	// for struct types met inside request bodies.
	requestRequired map[reflect.Type][]string
	// fieldSchemas refine single fields ("pkg.Type.json_name"): enums,
	// patterns, the meaning of a raw JSON field.
	fieldSchemas map[string]Schema
}

// response returns the schema of a value a handler writes: fields without
// omitempty are always present (required), pointers may be null.
func (r *reflector) response(t reflect.Type) Schema { return r.schema(t, false) }

// request returns the inline schema of a body a handler reads, with the
// top-level required fields given by the route.
func (r *reflector) request(t reflect.Type, required ...string) Schema {
	s := r.schema(t, true)
	if len(required) > 0 {
		props, _ := s["properties"].(map[string]Schema)
		for _, f := range required {
			if _, ok := props[f]; !ok {
				panic(fmt.Sprintf("openapi: %s has no JSON field %q to require", t, f))
			}
		}
		s["required"] = required
	}
	return s
}

func (r *reflector) schema(t reflect.Type, request bool) Schema {
	if s, ok := wireTypes[t]; ok {
		return clone(s)
	}
	switch t.Kind() {
	case reflect.Pointer:
		if request {
			// A request leaves out what it does not set; null is read
			// as absent, which is no use to say.
			return r.schema(t.Elem(), request)
		}
		return nullable(r.schema(t.Elem(), request))
	case reflect.Bool:
		return Schema{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return Schema{"type": "integer", "format": "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return Schema{"type": "integer", "format": "int32"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return Schema{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return Schema{"type": "number"}
	case reflect.String:
		return Schema{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return Schema{"type": "string", "contentEncoding": "base64"}
		}
		return Schema{"type": "array", "items": r.schema(t.Elem(), request)}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("openapi: map key of %s is not a string", t))
		}
		return Schema{"type": "object", "additionalProperties": r.schema(t.Elem(), request)}
	case reflect.Interface:
		return Schema{}
	case reflect.Struct:
		// Requests, anonymous structs and generic instances
		// (domain.List[T]) are written where they are used.
		if request || t.Name() == "" || strings.Contains(t.Name(), "[") {
			return r.object(t, request)
		}
		name := componentNames[t]
		if name == "" {
			name = t.Name()
		}
		if owner, ok := r.owners[name]; ok {
			if owner != t {
				panic(fmt.Sprintf("openapi: component %s names both %s and %s: add one to componentNames", name, owner, t))
			}
		} else {
			r.owners[name] = t
			r.components[name] = nil // taken before recursing (recursive types)
			r.components[name] = r.object(t, false)
		}
		return Schema{"$ref": "#/components/schemas/" + name}
	}
	panic(fmt.Sprintf("openapi: no schema for %s (%s)", t, t.Kind()))
}

// object describes a struct's JSON object: its fields as encoding/json
// sees them (tags, omitempty, embedded structs promoted).
func (r *reflector) object(t reflect.Type, request bool) Schema {
	props := map[string]Schema{}
	var required []string
	for _, f := range jsonFields(t) {
		s := r.schema(f.typ, request)
		if extra, ok := r.fieldSchemas[typeKey(f.owner)+"."+f.name]; ok {
			s = merge(s, extra)
		}
		props[f.name] = s
		if !request && !f.omitempty {
			required = append(required, f.name)
		}
	}
	s := Schema{"type": "object", "properties": props}
	if request {
		required = r.requestRequired[t]
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

type jsonField struct {
	name      string
	typ       reflect.Type
	owner     reflect.Type // the struct that declares it
	omitempty bool
	depth     int
}

// jsonFields lists t's JSON fields in order: a field of an embedded struct
// is promoted unless a shallower field has its name (encoding/json's rule
// for the cases this API has).
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	at := map[string]int{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if strings.Contains(","+opts+",", ",string,") {
				ft = reflect.TypeFor[string]()
			}
			jf := jsonField{name: name, typ: ft, owner: t, omitempty: strings.Contains(","+opts+",", ",omitempty,") ||
				strings.Contains(","+opts+",", ",omitzero,"), depth: depth}
			if i, ok := at[name]; ok {
				if out[i].depth > depth {
					out[i] = jf
				}
				continue
			}
			at[name] = len(out)
			out = append(out, jf)
		}
	}
	walk(t, 0)
	return out
}

// typeKey is "pkg.Type" (the last element of the import path).
func typeKey(t reflect.Type) string {
	p := t.PkgPath()
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	return p + "." + t.Name()
}

// nullable lets s also be null.
func nullable(s Schema) Schema {
	if _, ok := s["$ref"]; ok {
		return Schema{"anyOf": []any{s, Schema{"type": "null"}}}
	}
	switch typ := s["type"].(type) {
	case string:
		s["type"] = []any{typ, "null"}
		return s
	case []any:
		for _, x := range typ {
			if x == "null" {
				return s
			}
		}
		s["type"] = append(typ, "null")
		return s
	}
	return s // no type: already takes null
}

func clone(s Schema) Schema {
	out := make(Schema, len(s))
	for k, v := range s {
		if l, ok := v.([]any); ok {
			v = append([]any(nil), l...)
		}
		out[k] = v
	}
	return out
}

// merge returns s with extra's keywords added (extra wins). A nullable
// type stays nullable.
func merge(s, extra Schema) Schema {
	out := clone(s)
	for k, v := range extra {
		out[k] = v
	}
	if inner, ok := s["anyOf"]; ok && extra["anyOf"] == nil {
		out["anyOf"] = inner
	}
	return out
}
