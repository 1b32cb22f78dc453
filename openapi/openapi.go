// Package openapi describes the binary's JSON HTTP API as an OpenAPI 3.1
// document, served at GET /openapi.json.
//
// The document is built in Go from one table (routes.go: one entry per
// route). Response schemas are reflected from the very Go types the
// handlers write, request schemas from the types they bind, so a field
// added to a module's type appears here by itself; what reflection cannot
// know (which fields a handler requires, enums, the statuses a route
// gives) is stated in the route's entry. cmd/switchboard's
// TestOpenAPIMatchesRouter keeps the table true to the real router: every
// route is described or listed in excluded, every operationId is the id
// the route's handler sets with domain.Op, and real responses validate.
package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// Path is where the document is served.
const Path = "/openapi.json"

// Routes serves the document at GET /openapi.json, without authentication.
func Routes(e *echo.Echo) {
	e.GET(Path, func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, Document())
	})
}

// Document is the OpenAPI document as JSON.
var Document = sync.OnceValue(func() []byte {
	b, err := json.Marshal(Build())
	if err != nil {
		panic(fmt.Sprintf("openapi: %v", err))
	}
	return b
})

// Excluded is a route the binary serves that the document leaves out, and
// why. Method "*" is any method; a Path ending in "/**" is that path and
// every path under it.
type Excluded struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Matches reports whether the route method + path (echo's form, :param)
// is one x leaves out.
func (x Excluded) Matches(method, path string) bool {
	if x.Method != "*" && x.Method != method {
		return false
	}
	if prefix, ok := strings.CutSuffix(x.Path, "/**"); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return EchoPath(x.Path) == path
}

const (
	whyWebSocket = "a WebSocket endpoint: OpenAPI describes request/response HTTP only"
	whyStatic    = "static browser files (JavaScript, TypeScript types, HTML), not JSON"
	whyPusherAPI = "the Pusher HTTP API: requests are signed with the app key and secret (auth_key, auth_timestamp, " +
		"auth_version, body_md5, auth_signature query parameters) exactly as Pusher's own HTTP API, which Pusher's " +
		"server SDKs implement; see https://pusher.com/docs/channels/library_auth_reference/rest-api/ and docs/pusherfull.md"
)

// excluded lists the routes the binary serves that are not described, in
// the document's x-excluded-routes; the router test fails for a route that
// is neither described nor here, and for an entry here the router lacks.
var excluded = []Excluded{
	{"GET", "/app/{key}", "Pusher protocol 7 " + whyWebSocket + " (docs/pusherfull.md)"},
	{"GET", "/connection/websocket", "Centrifugo client protocol " + whyWebSocket + " (docs/centrifugo.md)"},
	{"GET", "/cable", "ActionCable " + whyWebSocket + " (docs/actioncable.md)"},
	{"POST", "/apps/{app_id}/events", whyPusherAPI},
	{"POST", "/apps/{app_id}/batch_events", whyPusherAPI},
	{"GET", "/apps/{app_id}/channels", whyPusherAPI},
	{"GET", "/apps/{app_id}/channels/{channel_name}", whyPusherAPI},
	{"GET", "/apps/{app_id}/channels/{channel_name}/users", whyPusherAPI},
	{"POST", "/apps/{app_id}/users/{user_id}/terminate_connections", whyPusherAPI},
	{"GET", "/metrics", "Prometheus text format, not JSON; on this listener only with SWITCHBOARD_METRICS_TOKEN " +
		"(Authorization: Bearer <that token>), or on SWITCHBOARD_METRICS_ADDR"},
	{"*", "/sdk/**", whyStatic + " (the PubSub browser SDK)"},
	{"*", "/examples/**", whyStatic + " (example pages; /examples redirects to one)"},
	{"GET", "/console", whyStatic + " (the debug console's page, docs/console.md)"},
	{"GET", "/console/*", whyStatic + " (the debug console's page, docs/console.md)"},
	{"GET", "/console/api/stream", "the debug console's live log: Server-Sent Events (text/event-stream), not JSON; " +
		"an admin JWT or a console session as bearer or ?token= (docs/console.md)"},
}

// ExcludedRoutes returns the routes the document leaves out.
func ExcludedRoutes() []Excluded { return slices.Clone(excluded) }

// Operation is what the router test needs to know of a described route.
type Operation struct {
	Method, Path string // Path in OpenAPI form: /api/v1/projects/{slug}
	OperationID  string
	// AliasOf is "METHOD /path" of the operation this one repeats under
	// another path (the same handler and domain.Op id; operationIds must
	// be unique, so the alias has its own).
	AliasOf string
	// Auth is how the route authenticates: "bearer", "pubsub-api-token",
	// "api-key", "broadcast-key" or "" (none).
	Auth string
}

// Operations lists the described routes, in table order.
func Operations() []Operation {
	out := make([]Operation, 0, len(routes))
	for _, r := range routes {
		out = append(out, Operation{Method: r.method, Path: r.path, OperationID: r.id, AliasOf: r.aliasOf, Auth: string(r.auth)})
	}
	return out
}

// EchoPath is the OpenAPI path p as echo registers it: {slug} → :slug.
func EchoPath(p string) string { return paramRE.ReplaceAllString(p, ":$1") }

var paramRE = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// Build assembles the document.
func Build() map[string]any {
	r := &reflector{components: map[string]Schema{}, owners: map[string]reflect.Type{},
		requestRequired: requestRequired, fieldSchemas: fieldSchemas}
	paths := map[string]map[string]any{}
	ids := map[string]string{}
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		if prev, dup := ids[rt.id]; dup {
			panic(fmt.Sprintf("openapi: operationId %s is used by %s and %s", rt.id, prev, key))
		}
		ids[rt.id] = key
		m := strings.ToLower(rt.method)
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		if _, dup := paths[rt.path][m]; dup {
			panic("openapi: " + key + " is described twice")
		}
		paths[rt.path][m] = rt.operation(r)
	}
	for _, rt := range routes {
		if rt.aliasOf != "" {
			if !slices.ContainsFunc(routes, func(o route) bool { return o.method+" "+o.path == rt.aliasOf }) {
				panic("openapi: " + rt.method + " " + rt.path + " is an alias of " + rt.aliasOf + ", which is not described")
			}
		}
	}
	for name, s := range commonSchemas {
		if _, taken := r.components[name]; taken {
			panic("openapi: component " + name + " is both reflected and written by hand")
		}
		r.components[name] = s
	}
	tagNames := map[string]bool{}
	for _, rt := range routes {
		tagNames[rt.tag] = true
	}
	var tagList []map[string]string
	for _, t := range tags {
		if tagNames[t.name] {
			tagList = append(tagList, map[string]string{"name": t.name, "description": t.description})
			delete(tagNames, t.name)
		}
	}
	if len(tagNames) > 0 {
		panic(fmt.Sprintf("openapi: tags without a description: %v", tagNames))
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Switchboard",
			"version":     "v1",
			"summary":     "Realtime event gateway: REST modules whose writes reach pusher-js, centrifuge-js and @rails/actioncable clients",
			"description": description,
			"license":     map[string]string{"name": "MIT", "identifier": "MIT"},
		},
		"servers":           []map[string]string{{"url": "/"}},
		"tags":              tagList,
		"paths":             paths,
		"x-excluded-routes": excluded,
		"components": map[string]any{
			"schemas":         r.components,
			"responses":       errorResponses(),
			"parameters":      commonParameters,
			"headers":         commonHeaders,
			"securitySchemes": securitySchemes,
		},
	}
}

const description = `The JSON HTTP API of one Switchboard binary.

**Operation ids.** An operationId starting with ` + "`v1.`" + ` is the id the route's handler sets: events caused by
the request carry it, with the request id, as ` + "`\"x-triggered-by\": {\"operation_id\", \"request_id\"}`" + ` inside
the event data. Other operationIds (health, channel authorization, the Centrifugo server API, webhook deliveries) are
names given by this document to routes that set none. ` + "`POST /api/v1/publish`" + ` repeats ` +
	"`POST /api/v1/pub_subs`" + ` (` + "`x-alias-of`" + `): its requests carry ` + "`v1.pub_subs.store`" + `.

**Conventions.** JSON bodies; unknown fields are ignored. ` + "`X-Request-ID`" + ` is taken from the request (or made)
and returned. Errors are ` + "`{\"error\":{\"code\",\"message\",\"field\"?}}`" + `: 400 malformed JSON, 401 no or bad
credential, 403 not allowed, 404 unknown id or project, 409 conflict, 413 body over 1 MiB, 422 validation (` +
	"`field`" + ` names the field at fault, NUL characters included), 503 ` + "`database_unavailable`" + ` with
` + "`Retry-After: 2`" + ` when the database does not answer in time (a 503 on a write may have committed).
` + "`Idempotency-Key`" + ` on POST routes that take it: the same key and body within 24 h returns the first response.
Lists take ` + "`limit`" + ` (1-100, default 50) and ` + "`cursor`" + ` (the previous page's ` + "`next_cursor`" + `).

Not described here (see ` + "`x-excluded-routes`" + `): the WebSocket endpoints, static files, and the Pusher HTTP API
` + "`/apps/{app_id}/...`" + `, which is signed as Pusher's own.`

type tag struct{ name, description string }

var tags = []tag{
	{"projects", "Projects: the tenant of the event-management modules"},
	{"attendees", "Attendees of a project (→ AttendeeCreated, AttendeeUpdated, AttendeeDeleted on dashboard.project.{slug}.attendees)"},
	{"access", "Access control: zones, points, credentials, rules, kiosk scans (→ AccessGranted, AccessDenied)"},
	{"social", "Social stream (→ PostCreated, PostHidden)"},
	{"games", "Gamification (→ PointsAwarded)"},
	{"forms", "Forms (→ FormResponseCreated, FormResponseUpdated)"},
	{"chat", "Chat rooms, messages and threads (→ chatRoomCreated, newMessage, updatedMessage, deletedMessage, ...)"},
	{"notifications", "Notifications (→ newNotification, updateNewNotificationCount, resetNewNotificationCount)"},
	{"pubsub", "Scoped PubSub: publish with an organization's API token, room tokens, API token administration (docs/pubsub.md)"},
	{"webhooks", "Pusher webhook deliveries (docs/pusherfull.md#webhooks)"},
	{"realtime", "Tokens and channel authorization for the WebSocket clients"},
	{"centrifugo", "Centrifugo server API (SWITCHBOARD_API_KEY); publications go through the outbox"},
	{"actioncable", "ActionCable broadcast in AnyCable's shape (SWITCHBOARD_BROADCAST_KEY); publications go through the outbox"},
	{"health", "Liveness and readiness"},
	{"console", "The debug console's API (docs/console.md): an admin JWT, or the console session it is exchanged for"},
	{"meta", "This document"},
}

// auth is how a route authenticates.
type auth string

const (
	none     auth = ""
	bearer   auth = "bearer"
	apiToken auth = "pubsub-api-token"
	apiKey   auth = "api-key"
	// broadcastKey is the ActionCable broadcast endpoint's key.
	broadcastKey auth = "broadcast-key"
)

var securitySchemes = map[string]any{
	"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
		"description": "An HS256 JWT signed with SWITCHBOARD_JWT_SECRET (`switchboard token`): `sub`, `name`, `projects` " +
			"(slugs or `*`), `admin`, and an `exp` at most SWITCHBOARD_JWT_MAX_TTL away. An expired token is " +
			"401 `token_expired`; a PubSub room token is 403 everywhere but channel authorization."},
	"pubsubApiToken": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
		"description": "An organization's PubSub API token (`sbp_...`), bare or as `Bearer <token>`; revoked tokens are 401."},
	"apiKeyHeader": map[string]any{"type": "apiKey", "in": "header", "name": "X-API-Key",
		"description": "SWITCHBOARD_API_KEY (the server API is off when it is empty)."},
	"apiKeyAuthorization": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
		"description": "`apikey <SWITCHBOARD_API_KEY>`."},
	"apiKeyQuery": map[string]any{"type": "apiKey", "in": "query", "name": "api_key",
		"description": "SWITCHBOARD_API_KEY as a query parameter."},
	"broadcastKey": map[string]any{"type": "http", "scheme": "bearer",
		"description": "SWITCHBOARD_BROADCAST_KEY (SWITCHBOARD_API_KEY when unset): `Authorization: Bearer <key>`, AnyCable's broadcast key header."},
}

func (a auth) requirement() []map[string][]string {
	switch a {
	case bearer:
		return []map[string][]string{{"bearer": {}}}
	case apiToken:
		return []map[string][]string{{"pubsubApiToken": {}}}
	case apiKey:
		return []map[string][]string{{"apiKeyHeader": {}}, {"apiKeyAuthorization": {}}, {"apiKeyQuery": {}}}
	case broadcastKey:
		return []map[string][]string{{"broadcastKey": {}}}
	}
	return []map[string][]string{}
}

// route is one described route: the table in routes.go holds one each.
type route struct {
	method, path string // path in OpenAPI form
	id           string // operationId: the route's domain.Op id when it sets one
	aliasOf      string // "METHOD /path" of the operation this one repeats
	tag          string
	summary      string
	description  string
	auth         auth
	query        []Schema // query parameter objects
	body         *body
	replies      []reply // the success responses
	errs         []int   // error statuses besides those the route's traits give
	project      bool    // under /projects/{slug}: 403 and 404 for the project
	idempotent   bool    // takes Idempotency-Key
	paged        bool    // takes limit and cursor
	pathTypes    map[string]Schema
	noGuard      bool // answers 503 itself (health), not the database guard's
}

// body is a request body: a Go type the handler binds, or a schema.
type body struct {
	typ      reflect.Type
	schema   Schema
	required []string
	form     bool // pusher-js's form encoding is accepted too
	optional bool
}

// reply is a success response: a Go type the handler writes, a schema,
// or no content.
type reply struct {
	status      int
	typ         reflect.Type
	schema      Schema
	description string
}

func req[T any](required ...string) *body {
	return &body{typ: reflect.TypeFor[T](), required: required}
}

func res[T any](status int, description string) reply {
	return reply{status: status, typ: reflect.TypeFor[T](), description: description}
}

func noContent(description string) reply {
	return reply{status: http.StatusNoContent, description: description}
}

// pathSchemas are the path parameters' schemas unless a route says
// otherwise: ids are positive integers (anything else is a 404).
var pathSchemas = map[string]Schema{
	"slug":     {"type": "string", "description": "the project's slug"},
	"id":       {"type": "integer", "format": "int64", "minimum": 1},
	"stream":   {"type": "integer", "format": "int64", "minimum": 1, "description": "the stream's id"},
	"post":     {"type": "integer", "format": "int64", "minimum": 1, "description": "the post's id"},
	"response": {"type": "integer", "format": "int64", "minimum": 1, "description": "the response's id"},
	"room":     {"type": "integer", "format": "int64", "minimum": 1, "description": "the chat room's id"},
	"thread":   {"type": "integer", "format": "int64", "minimum": 1, "description": "the chat thread's id"},
	"member":   {"type": "string", "description": "a member id (JWT sub)"},
}

func (rt route) operation(r *reflector) map[string]any {
	op := map[string]any{
		"operationId": rt.id,
		"summary":     rt.summary,
		"tags":        []string{rt.tag},
		"security":    rt.auth.requirement(),
	}
	if rt.description != "" {
		op["description"] = rt.description
	}
	if rt.aliasOf != "" {
		op["x-alias-of"] = rt.aliasOf
	}
	params := []any{map[string]string{"$ref": "#/components/parameters/XRequestID"}}
	for _, m := range paramRE.FindAllStringSubmatch(rt.path, -1) {
		s, ok := rt.pathTypes[m[1]]
		if !ok {
			s, ok = pathSchemas[m[1]]
		}
		if !ok {
			panic("openapi: no schema for path parameter " + m[1] + " of " + rt.path)
		}
		p := map[string]any{"name": m[1], "in": "path", "required": true, "schema": clone(s)}
		if d, ok := s["description"]; ok {
			p["description"] = d
		}
		params = append(params, p)
	}
	if rt.paged {
		params = append(params, map[string]string{"$ref": "#/components/parameters/Limit"},
			map[string]string{"$ref": "#/components/parameters/Cursor"})
	}
	if rt.idempotent {
		params = append(params, map[string]string{"$ref": "#/components/parameters/IdempotencyKey"})
	}
	for _, q := range rt.query {
		params = append(params, q)
	}
	op["parameters"] = params

	statuses := map[int]bool{}
	for _, s := range rt.errs {
		statuses[s] = true
	}
	if !rt.noGuard {
		statuses[http.StatusServiceUnavailable] = true
	}
	switch rt.auth {
	case bearer:
		statuses[401], statuses[403] = true, true
	case apiToken, apiKey, broadcastKey:
		statuses[401] = true
	}
	if rt.body != nil {
		var s Schema
		if rt.body.typ != nil {
			s = r.request(rt.body.typ, rt.body.required...)
		} else {
			s = rt.body.schema
		}
		content := map[string]any{"application/json": map[string]any{"schema": s}}
		if rt.body.form {
			content["application/x-www-form-urlencoded"] = map[string]any{"schema": s}
		}
		op["requestBody"] = map[string]any{"required": !rt.body.optional, "content": content}
		statuses[400], statuses[413], statuses[422] = true, true, true
	}
	if rt.project {
		statuses[403], statuses[404] = true, true
	}
	if rt.idempotent {
		statuses[409], statuses[422] = true, true
	}
	if rt.paged {
		statuses[422] = true
	}
	if strings.Contains(rt.path, "{") && !rt.project {
		statuses[404] = true
	}
	responses := map[string]any{}
	for _, rp := range rt.replies {
		resp := map[string]any{"description": rp.description,
			"headers": map[string]any{"X-Request-ID": map[string]string{"$ref": "#/components/headers/XRequestID"}}}
		if rt.idempotent {
			resp["headers"].(map[string]any)["Idempotent-Replayed"] = map[string]string{"$ref": "#/components/headers/IdempotentReplayed"}
		}
		var s Schema
		switch {
		case rp.typ != nil:
			s = r.response(rp.typ)
		case rp.schema != nil:
			s = rp.schema
		}
		if s != nil {
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": s}}
		}
		responses[strconv.Itoa(rp.status)] = resp
	}
	for s := range statuses {
		if _, own := responses[strconv.Itoa(s)]; own {
			continue
		}
		if _, ok := errorDescriptions[s]; !ok {
			panic(fmt.Sprintf("openapi: %s %s: no error response for status %d", rt.method, rt.path, s))
		}
		responses[strconv.Itoa(s)] = map[string]string{"$ref": "#/components/responses/" + errorName(s)}
	}
	op["responses"] = responses
	return op
}

// errorDescriptions says what each error status means across the API.
var errorDescriptions = map[int]string{
	400: "`bad_request`: the body is not JSON, has data after the JSON value, or does not fit the expected types",
	401: "`unauthorized` (no or bad credential) or `token_expired`",
	403: "`forbidden` (not allowed: another project, not an admin, a PubSub room token, ...)",
	404: "`not_found`: an unknown project, id or member",
	409: "`conflict` (already exists, already sent), `idempotency_key_committed` (the first try committed: read the resource) or `idempotency_key_in_use`",
	413: "`payload_too_large`: the body is over 1 MiB",
	422: "`validation_failed`, `field` naming the field at fault (a NUL character in any string included), or `idempotency_key_reused` (the same Idempotency-Key with another body)",
	503: "`database_unavailable`: the database did not answer within SWITCHBOARD_DB_TIMEOUT; retry after `Retry-After` (a write may have committed)",
}

func errorName(status int) string { return "Error" + strconv.Itoa(status) }

func errorResponses() map[string]any {
	out := map[string]any{}
	for s, d := range errorDescriptions {
		resp := map[string]any{
			"description": d,
			"headers":     map[string]any{"X-Request-ID": map[string]string{"$ref": "#/components/headers/XRequestID"}},
			"content":     map[string]any{"application/json": map[string]any{"schema": map[string]string{"$ref": "#/components/schemas/ErrorBody"}}},
		}
		if s == http.StatusServiceUnavailable {
			resp["headers"].(map[string]any)["Retry-After"] = map[string]string{"$ref": "#/components/headers/RetryAfter"}
		}
		out[errorName(s)] = resp
	}
	return out
}

var commonParameters = map[string]any{
	"XRequestID": map[string]any{"name": "X-Request-ID", "in": "header", "required": false,
		"description": "correlates the request with its events (`x-triggered-by.request_id`); made when absent or over 200 characters",
		"schema":      Schema{"type": "string", "maxLength": 200}},
	"IdempotencyKey": map[string]any{"name": "Idempotency-Key", "in": "header", "required": false,
		"description": "the same key and body within 24 h returns the first response and writes nothing new",
		"schema":      Schema{"type": "string", "minLength": 1, "maxLength": 255}},
	"Limit": map[string]any{"name": "limit", "in": "query", "required": false,
		"schema": Schema{"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
	"Cursor": map[string]any{"name": "cursor", "in": "query", "required": false,
		"description": "the previous page's next_cursor", "schema": Schema{"type": "string"}},
}

var commonHeaders = map[string]any{
	"XRequestID":         map[string]any{"description": "the request's id", "schema": Schema{"type": "string"}},
	"RetryAfter":         map[string]any{"description": "seconds to wait before retrying", "schema": Schema{"type": "string"}},
	"IdempotentReplayed": map[string]any{"description": "`true` when this is the stored first response to the Idempotency-Key", "schema": Schema{"type": "string"}},
}
