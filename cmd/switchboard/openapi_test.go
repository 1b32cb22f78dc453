package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/pb33f/libopenapi-validator/errors"

	"switchboard/openapi"
	"switchboard/openapi/openapitest"
)

// TestOpenAPIMatchesRouter keeps GET /openapi.json true to the binary. It
// runs the real serve(), sees its route table (routerBuilt) and, through a
// middleware added there, the operation id each route's handler sets with
// domain.Op (the value events carry in x-triggered-by.operation_id). Then:
//
//   - a scenario of real calls (one or more per module, with real bodies)
//     is validated request and response against the document by an
//     OpenAPI 3.1 validator, formats asserted;
//   - every route of the router is called once, with the credential the
//     document says it takes, and its answer validated too (mostly
//     errors: their status must be documented and their body the error
//     body);
//   - every route must be described or listed in x-excluded-routes, and
//     every described or excluded route must exist;
//   - a described route whose handler sets a domain.Op id must have it as
//     operationId (an alias: its x-alias-of operation's), one that sets
//     none must not claim a v1. id, and an excluded route must set none;
//   - one event's x-triggered-by.operation_id, read back through the
//     Centrifugo history API, is the id the middleware saw.
func TestOpenAPIMatchesRouter(t *testing.T) {
	const apiKey = "openapi-api-key"
	t.Setenv("SWITCHBOARD_API_KEY", apiKey)
	// Every optional route registered, so all are checked.
	t.Setenv("SWITCHBOARD_METRICS_TOKEN", "openapi-metrics-token")
	var (
		routes []*echo.Route
		mu     sync.Mutex
		seen   = map[string]string{} // "METHOD /echo/path" → the domain.Op id it set ("" none)
	)
	routerBuilt = func(e *echo.Echo) {
		routes = e.Routes()
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				err := next(c)
				op, _ := c.Get("operation_id").(string)
				mu.Lock()
				seen[c.Request().Method+" "+c.Path()] = op
				mu.Unlock()
				return err
			}
		})
	}
	t.Cleanup(func() { routerBuilt = nil })
	addr, _ := startServe(t, "")
	base := "http://" + addr
	v := openapitest.Validator(t)
	client := &http.Client{Timeout: 10 * time.Second}

	admin := tokenOf(t, credAdmin, nil)
	member := tokenOf(t, credMember, nil) // sub 42, project demo
	saved := map[string]string{}
	// call sends one request; path may name saved values as {name}.
	call := func(method, path, auth, contentType, body string) openapitest.Exchange {
		t.Helper()
		for k, val := range saved {
			path = strings.ReplaceAll(path, "{"+k+"}", val)
		}
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		var b []byte
		if body != "" {
			b = []byte(body)
			req.Header.Set("Content-Type", contentType)
		}
		x, err := openapitest.Do(client, req, b)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return x
	}

	t.Run("the document is served", func(t *testing.T) {
		x := call("GET", openapi.Path, "", "", "")
		if x.Response.StatusCode != 200 || x.Response.Header.Get("Content-Type") != echo.MIMEApplicationJSON {
			t.Fatalf("GET %s: %d %s", openapi.Path, x.Response.StatusCode, x.Response.Header.Get("Content-Type"))
		}
		var doc struct {
			OpenAPI string `json:"openapi"`
		}
		if err := json.Unmarshal(x.Body, &doc); err != nil || doc.OpenAPI != "3.1.0" {
			t.Fatalf("document: %v %q", err, doc.OpenAPI)
		}
	})

	// A scenario with real bodies: requests and responses must both
	// match the document.
	var apiToken string
	t.Run("real requests and responses validate", func(t *testing.T) {
		bearer := func(tok string) string { return "Bearer " + tok }
		const js = echo.MIMEApplicationJSON
		steps := []struct {
			method, path, auth, contentType, body string
			want                                  int
			save                                  string // keep the response's "id" (or token) as {save}
		}{
			{"GET", "/healthz", "", "", "", 200, ""},
			{"GET", "/readyz", "", "", "", 200, ""},
			{"POST", "/api/v1/projects", bearer(admin), js, `{"slug":"demo","name":"Demo"}`, 201, ""},
			{"GET", "/api/v1/projects/demo", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/projects", bearer(admin), js, `{"slug":"demo","name":"Again"}`, 409, ""},
			{"POST", "/api/v1/projects/demo/attendees", bearer(member), js,
				`{"first_name":"Jane","last_name":"Smith","email":"jane@example.com","attendee_type_id":1}`, 201, "attendee"},
			{"POST", "/api/v1/projects/demo/attendees", bearer(member), js, `{"first_name":"Jane"}`, 422, ""},
			{"POST", "/api/v1/projects/demo/attendees", bearer(member), js, `{"first_name":`, 400, ""},
			{"GET", "/api/v1/projects/demo/attendees?limit=1", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/attendees/{attendee}", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/attendees/999999", bearer(member), "", "", 404, ""},
			{"GET", "/api/v1/projects/demo/attendees", "", "", "", 401, ""},
			{"GET", "/api/v1/projects/expo/attendees", bearer(member), "", "", 403, ""},
			{"PATCH", "/api/v1/projects/demo/attendees/{attendee}", bearer(member), js, `{"last_name":"Doe"}`, 200, ""},
			{"POST", "/api/v1/projects/demo/access/zones", bearer(admin), js, `{"name":"Hall"}`, 201, "zone"},
			{"GET", "/api/v1/projects/demo/access/zones/{zone}", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/projects/demo/access/points", bearer(admin), js, `{"access_zone_id":{zone},"name":"Gate"}`, 201, "point"},
			{"POST", "/api/v1/projects/demo/access/credentials", bearer(admin), js, `{"attendee_id":{attendee},"value":"BADGE-1"}`, 201, "credential"},
			{"POST", "/api/v1/projects/demo/access/rules", bearer(admin), js, `{"access_zone_id":{zone},"attendee_type_id":1}`, 201, "rule"},
			{"POST", "/api/v1/projects/demo/access/scans", bearer(member), js, `{"credential_value":"BADGE-1","access_point_id":{point},"direction":"in"}`, 201, ""},
			{"POST", "/api/v1/projects/demo/access/scans", bearer(member), js, `{"credential_value":"NOPE","access_point_id":{point},"direction":"in"}`, 201, ""},
			{"GET", "/api/v1/projects/demo/access/scans", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/access/zones/{zone}/occupancy", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/access/rules", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/access/credentials", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/projects/demo/access/credentials/{credential}/revoke", bearer(admin), "", "", 200, ""},
			{"POST", "/api/v1/projects/demo/social/streams", bearer(admin), js, `{"name":"Wall"}`, 201, "stream"},
			{"POST", "/api/v1/projects/demo/social/streams/{stream}/posts", bearer(member), js, `{"content":"Hello"}`, 201, "post"},
			{"GET", "/api/v1/projects/demo/social/streams/{stream}/posts", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/projects/demo/social/streams/{stream}/posts/{post}/hide", bearer(admin), "", "", 200, ""},
			{"POST", "/api/v1/projects/demo/games", bearer(member), js, `{"name":"Quest"}`, 201, "game"},
			{"POST", "/api/v1/projects/demo/games/{game}/awards", bearer(member), js, `{"attendee_id":{attendee},"points":5,"reason":"session_attendance"}`, 201, ""},
			{"GET", "/api/v1/projects/demo/games/{game}/leaderboard", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/games/{game}/awards", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/projects/demo/forms", bearer(member), js,
				`{"title":"Survey","fields":[{"key":"rating","label":"Rating","type":"number","required":true},{"key":"color","label":"Color","type":"choice","options":["red","blue"]}]}`, 201, "form"},
			{"POST", "/api/v1/projects/demo/forms/{form}/responses", bearer(member), js, `{"attendee_id":{attendee},"answers":{"rating":4,"color":"red"}}`, 201, "response"},
			{"PATCH", "/api/v1/projects/demo/forms/{form}/responses/{response}", bearer(member), js, `{"answers":{"rating":5}}`, 200, ""},
			{"GET", "/api/v1/projects/demo/forms/{form}/responses", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/projects/demo/forms/{form}", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/chat/rooms", bearer(member), js, `{"name":"Team","participant_ids":[43,"u-7"]}`, 201, "room"},
			{"POST", "/api/v1/chat/rooms/{room}/messages", bearer(member), js, `{"body":"hi","creation_uuid":"c-1"}`, 201, "message"},
			{"POST", "/api/v1/chat/rooms/{room}/messages", bearer(member), js, `{"body":"hi","creation_uuid":"c-1"}`, 200, ""},
			{"POST", "/api/v1/chat/rooms/{room}/messages", bearer(member), js, `{"body":"re","parent_message_id":{message}}`, 201, ""},
			{"GET", "/api/v1/chat/rooms/{room}/messages?parent_message_id={message}", bearer(member), "", "", 200, ""},
			{"PATCH", "/api/v1/chat/rooms/{room}/messages/{message}", bearer(member), js, `{"body":"hello"}`, 200, ""},
			{"PATCH", "/api/v1/chat/rooms/{room}", bearer(member), js, `{"description":"the team","pinned_message_id":{message}}`, 200, ""},
			{"POST", "/api/v1/chat/rooms/{room}/pin", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/chat/rooms/{room}/participants", bearer(member), js, `{"member_id":44}`, 201, ""},
			{"GET", "/api/v1/chat/rooms", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/chat/rooms/{room}", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/chat/rooms/{room}/read", bearer(member), "", "", 204, ""},
			{"POST", "/api/v1/members/42/notifications", bearer(admin), js,
				`{"type":"mention","title":"Hi","body":"You were mentioned","link":"/x","actor":{"id":"7","name":"Ann"}}`, 201, "notification"},
			{"GET", "/api/v1/notifications", bearer(member), "", "", 200, ""},
			{"GET", "/api/v1/notifications/count", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/notifications/{notification}/read", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/notifications/read-all", bearer(member), "", "", 200, ""},
			{"POST", "/api/v1/pubsub/api_tokens", bearer(admin), js, `{"organization_id":"acme","name":"test"}`, 201, "apitoken"},
			{"GET", "/api/v1/pubsub/api_tokens?organization_id=acme", bearer(admin), "", "", 200, ""},
			{"POST", "/api/v1/pubsub/room_tokens", "{token}", js, `{"event_id":"ev1","session_id":"s1","participant":{"id":"p1","name":"P"}}`, 201, ""},
			{"POST", "/api/v1/pub_subs", "{token}", js, `{"scope":{"type":"session","event_id":"ev1","session_id":"s1"},"payload":{"event":{"eventName":"hello","data":{"foo":"bar"}}}}`, 200, ""},
			{"POST", "/api/v1/publish", "Bearer {token}", js, `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"hi","data":{}}}}`, 200, ""},
			{"POST", "/api/v1/pub_subs", "{token}", js, `{"scope":{"type":"event"},"payload":{"event":{"eventName":"hello","data":{}}}}`, 422, ""},
			{"POST", "/api/v1/realtime/token", bearer(member), "", "", 200, ""},
			{"POST", "/broadcasting/auth", bearer(member), echo.MIMEApplicationForm, "socket_id=1.2&channel_name=private-dashboard.project.demo.attendees", 200, ""},
			{"POST", "/broadcasting/auth", bearer(member), js, `{"socket_id":"1.2","channel_name":"presence-dashboard.project.demo"}`, 200, ""},
			{"GET", "/broadcasting/auth?socket_id=1.2&channel_name=private-notification-channel-43", bearer(member), "", "", 403, ""},
			{"POST", "/pusher/user-auth", bearer(member), echo.MIMEApplicationForm, "socket_id=1.2", 200, ""},
			{"POST", "/api/publish", "apikey " + apiKey, js, `{"channel":"tickets:queue","data":{"n":1}}`, 200, ""},
			{"POST", "/api/publish", "apikey " + apiKey, js, `{"channel":"nowhere:x","data":{"n":1}}`, 200, ""},
			{"POST", "/api/broadcast", "apikey " + apiKey, js, `{"channels":["tickets:queue","dashboard.project.demo.attendees"],"data":{"n":2}}`, 200, ""},
			{"POST", "/api/presence", "apikey " + apiKey, js, `{"channel":"presence:lobby"}`, 200, ""},
			{"POST", "/api/presence_stats", "apikey " + apiKey, js, `{"channel":"presence:lobby"}`, 200, ""},
			{"POST", "/api/publish", "apikey wrong", js, `{"channel":"tickets:queue","data":{}}`, 401, ""},
			{"POST", "/api/publish", "apikey " + apiKey, js, `{"channel":"tickets:queue","data":{"n":3},"idempotency_key":"k1"}`, 200, ""},
			{"POST", "/api/batch", "apikey " + apiKey, js, `{"commands":[{"publish":{"channel":"tickets:queue","data":{}}},{"info":{}},{"nope":{}}]}`, 200, ""},
			{"POST", "/api/channels", "apikey " + apiKey, js, `{"pattern":"tickets:*"}`, 200, ""},
			{"POST", "/api/disconnect", "apikey " + apiKey, js, `{"user":"42","disconnect":{"code":4000,"reason":"bye"}}`, 200, ""},
			{"POST", "/_broadcast", "Bearer " + apiKey, js, `{"stream":"notification-channel-42","data":"{\"text\":\"hi\"}"}`, 201, ""},
			{"POST", "/_broadcast", "Bearer " + apiKey, js, `[{"stream":"dashboard.project.demo.attendees","data":{"event":"Ping","data":{}}}]`, 201, ""},
			{"POST", "/_broadcast", "Bearer " + apiKey, js, `{"stream":"nowhere","data":"x"}`, 422, ""},
			{"POST", "/_broadcast", "Bearer wrong", js, `{"stream":"notification-channel-42","data":"x"}`, 401, ""},
			{"GET", "/api/v1/webhooks/deliveries?status=pending", bearer(admin), "", "", 200, ""},
			{"GET", "/api/v1/webhooks/deliveries", bearer(member), "", "", 403, ""},
			{"DELETE", "/api/v1/projects/demo/attendees/{attendee}", bearer(member), "", "", 204, ""},
		}
		for _, s := range steps {
			auth := strings.ReplaceAll(s.auth, "{token}", apiToken)
			body := s.body
			for k, val := range saved {
				body = strings.ReplaceAll(body, "{"+k+"}", val)
			}
			x := call(s.method, s.path, auth, s.contentType, body)
			if x.Response.StatusCode != s.want {
				t.Errorf("%s %s: %d %s, want %d", s.method, s.path, x.Response.StatusCode, x.Body, s.want)
				continue
			}
			var reqBody []byte
			if body != "" {
				reqBody = []byte(body)
			}
			// Requests meant to fail are not valid by design: only
			// their answers are checked.
			validate := func() []*errors.ValidationError { return x.ValidateBoth(v, reqBody) }
			if s.want >= 400 {
				validate = func() []*errors.ValidationError { return x.ValidateResponse(v) }
			}
			if errs := validate(); len(errs) > 0 {
				t.Errorf("%s %s (%d) does not match the document:%s\nbody: %s", s.method, s.path, s.want, openapitest.Describe(errs), x.Body)
			}
			if s.save != "" {
				var got struct {
					ID    any    `json:"id"`
					Token string `json:"token"`
				}
				_ = json.Unmarshal(x.Body, &got)
				saved[s.save] = fmt.Sprint(got.ID)
				if s.save == "apitoken" {
					apiToken = got.Token
				}
			}
		}
	})

	// The id the middleware saw is the one events carry: the attendee's
	// AttendeeCreated, read back from the channel's history.
	t.Run("x-triggered-by carries the operation ids seen", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			x := call("POST", "/api/history", "apikey "+apiKey, echo.MIMEApplicationJSON, `{"channel":"dashboard.project.demo.attendees","limit":10}`)
			if errs := x.ValidateBoth(v, []byte(`{"channel":"dashboard.project.demo.attendees","limit":10}`)); len(errs) > 0 {
				t.Fatalf("POST /api/history does not match the document:%s\nbody: %s", openapitest.Describe(errs), x.Body)
			}
			var h struct {
				Result struct {
					Publications []struct {
						Data struct {
							Type string `json:"type"`
							Data struct {
								TriggeredBy struct {
									OperationID string `json:"operation_id"`
								} `json:"x-triggered-by"`
							} `json:"data"`
						} `json:"data"`
					} `json:"publications"`
				} `json:"result"`
			}
			_ = json.Unmarshal(x.Body, &h)
			for _, p := range h.Result.Publications {
				if p.Data.Type != "AttendeeCreated" {
					continue
				}
				mu.Lock()
				want := seen["POST /api/v1/projects/:slug/attendees"]
				mu.Unlock()
				if got := p.Data.Data.TriggeredBy.OperationID; got == "" || got != want {
					t.Fatalf("AttendeeCreated carries operation_id %q; the middleware saw %q", got, want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no AttendeeCreated in the history: %s", x.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	// Every route once, with the credential the document says it takes.
	ops := map[string]openapi.Operation{} // by "METHOD /echo/path"
	for _, o := range openapi.Operations() {
		ops[o.Method+" "+openapi.EchoPath(o.Path)] = o
	}
	exclusions := openapi.ExcludedRoutes()
	excludedBy := func(key string) int {
		m, p, _ := strings.Cut(key, " ")
		return slices.IndexFunc(exclusions, func(x openapi.Excluded) bool { return x.Matches(m, p) })
	}
	status := map[string]int{}
	t.Run("every route answers as documented", func(t *testing.T) {
		for _, r := range routes {
			key := r.Method + " " + r.Path
			if r.Method == echo.RouteNotFound || status[key] != 0 {
				continue
			}
			auth := ""
			switch ops[key].Auth {
			case "bearer":
				auth = "Bearer " + admin
			case "pubsub-api-token":
				auth = apiToken
			case "api-key":
				auth = "apikey " + apiKey
			case "broadcast-key": // SWITCHBOARD_BROADCAST_KEY falls back to the API key
				auth = "Bearer " + apiKey
			}
			body, ct := "", ""
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				body, ct = "{}", echo.MIMEApplicationJSON
			}
			x := call(r.Method, walkPath(r.Path), auth, ct, body)
			status[key] = x.Response.StatusCode
			if _, described := ops[key]; !described {
				continue
			}
			if errs := x.ValidateResponse(v); len(errs) > 0 {
				t.Errorf("%s answered %d, which does not match the document:%s\nbody: %s", key, x.Response.StatusCode,
					openapitest.Describe(errs), x.Body)
			}
		}
	})

	t.Run("every route is described or excluded, and nothing else", func(t *testing.T) {
		registered := map[string]bool{}
		used := make([]bool, len(exclusions))
		for _, r := range routes {
			if r.Method == echo.RouteNotFound {
				continue
			}
			key := r.Method + " " + r.Path
			registered[key] = true
			_, described := ops[key]
			i := excludedBy(key)
			left := i >= 0
			if left {
				used[i] = true
			}
			switch {
			case !described && !left:
				t.Errorf("route %s is not in the OpenAPI document: describe it in openapi/routes.go, or list it in "+
					"openapi.excluded with the reason", key)
			case described && left:
				t.Errorf("route %s is both described and excluded", key)
			}
		}
		for key := range ops {
			if !registered[key] {
				t.Errorf("the document describes %s, which the server does not register", key)
			}
		}
		for i, x := range exclusions {
			if !used[i] {
				t.Errorf("the document excludes %s %s, which matches no route the server registers", x.Method, x.Path)
			}
		}
	})

	t.Run("operationIds are the domain.Op ids", func(t *testing.T) {
		mu.Lock()
		defer mu.Unlock()
		byKey := func(k string) openapi.Operation {
			m, p, _ := strings.Cut(k, " ")
			return ops[m+" "+openapi.EchoPath(p)]
		}
		checked := 0
		for _, key := range slices.Sorted(func(yield func(string) bool) {
			for k := range ops {
				if !yield(k) {
					return
				}
			}
		}) {
			o := ops[key]
			op, called := seen[key]
			if !called {
				t.Errorf("%s was never called", key)
				continue
			}
			switch {
			case op != "" && o.OperationID == op:
				checked++
			case op != "" && o.AliasOf != "" && byKey(o.AliasOf).OperationID == op:
				checked++
			case op != "":
				t.Errorf("%s sets domain.Op(%q), the document says operationId %q", key, op, o.OperationID)
			case status[key] == http.StatusUnauthorized || status[key] == http.StatusForbidden:
				t.Errorf("%s sets no domain.Op id, but answered %d: was the id never reached?", key, status[key])
			case strings.HasPrefix(o.OperationID, "v1."):
				t.Errorf("%s sets no domain.Op id; its operationId %q claims one (v1. ids are the handlers')", key, o.OperationID)
			}
		}
		if checked < 60 {
			t.Errorf("only %d operation ids checked against domain.Op", checked)
		}
		excludedRoutes := 0
		for key, op := range seen {
			if _, described := ops[key]; described || excludedBy(key) < 0 {
				continue
			}
			excludedRoutes++
			if op != "" {
				t.Errorf("excluded route %s sets domain.Op(%q): an operation with an id belongs in the document", key, op)
			}
		}
		t.Logf("%d routes: %d described (%d operation ids equal to the handlers' domain.Op), %d excluded",
			len(status), len(ops), checked, excludedRoutes)
	})
}

// walkPath fills a route's parameters for the walk: the scenario's
// project, the default Pusher app, and ids that exist or not (either way
// the answer must be documented).
func walkPath(p string) string {
	p = strings.ReplaceAll(p, "*", "index.html")
	return walkParamRE.ReplaceAllStringFunc(p, func(s string) string {
		switch s {
		case ":slug":
			return "demo"
		case ":app_id":
			return "app-id"
		case ":key":
			return url.PathEscape(testAppKey)
		}
		return "1"
	})
}

var walkParamRE = regexp.MustCompile(`:[A-Za-z0-9_]+`)
