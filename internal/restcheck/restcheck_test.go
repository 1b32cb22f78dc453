package restcheck_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/access"
	"switchboard/attendees"
	"switchboard/chat"
	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/forms"
	"switchboard/games"
	"switchboard/internal/apitest"
	"switchboard/notifications"
	"switchboard/social"
)

func migrations() [][]domain.Migration {
	return [][]domain.Migration{attendees.Migrations(), access.Migrations(), social.Migrations(), games.Migrations(),
		forms.Migrations(), chat.Migrations(), notifications.Migrations()}
}

// modules registers every module's routes as cmd/switchboard does.
func modules(db *domain.DB) func(g *echo.Group) {
	return func(g *echo.Group) {
		attendeeStore := attendees.NewStore(db)
		attendees.Routes(g, attendeeStore, db)
		access.Routes(g, access.NewStore(db, attendeeStore), db)
		social.Routes(g, social.NewStore(db), db)
		games.Routes(g, games.NewStore(db, attendeeStore), db)
		forms.Routes(g, forms.NewStore(db, attendeeStore), db)
		chat.Routes(g, chat.NewStore(db), db)
		notifications.Routes(g, notifications.NewStore(db), db)
	}
}

// routes is the router's own list of the REST routes apitest serves
// (domain.ProjectRoutes and every module, below /api/v1), sorted.
func routes(db *domain.DB) []*echo.Route {
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	g := e.Group("/api/v1")
	domain.ProjectRoutes(g, db)
	modules(db)(g)
	var out []*echo.Route
	for _, r := range e.Routes() {
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *echo.Route) int { return strings.Compare(a.Method+" "+a.Path, b.Method+" "+b.Path) })
	return out
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// write is how to call one write route successfully.
type write struct {
	path   string // below /api/v1, with real ids
	token  string
	body   map[string]any // nil: the route reads no body
	status int
}

// fixtures creates one of everything the write routes need and returns a
// working call per route, keyed "METHOD /api/v1/pattern".
func fixtures(t *testing.T, api *apitest.API) map[string]write {
	t.Helper()
	A, U := api.Admin, api.User
	id := func(method, path, token string, body any) int64 {
		t.Helper()
		var out map[string]any
		api.MustDo(method, path, token, body, http.StatusCreated, &out)
		return int64(out["id"].(float64))
	}
	att, att2 := api.Attendee("Jane", "Smith", nil), api.Attendee("John", "Doe", nil)
	p := "/projects/demo"
	zone := id("POST", p+"/access/zones", A, map[string]any{"name": "Hall"})
	point := id("POST", p+"/access/points", A, map[string]any{"name": "Gate", "access_zone_id": zone})
	id("POST", p+"/access/credentials", A, map[string]any{"attendee_id": att, "value": "BADGE-1"})
	cred2 := id("POST", p+"/access/credentials", A, map[string]any{"attendee_id": att, "value": "BADGE-2"})
	stream := id("POST", p+"/social/streams", A, map[string]any{"name": "Main"})
	post := id("POST", fmt.Sprintf("%s/social/streams/%d/posts", p, stream), U, map[string]any{"content": "hi"})
	game := id("POST", p+"/games", A, map[string]any{"name": "Quest"})
	form := id("POST", p+"/forms", A, map[string]any{"title": "Feedback", "fields": []any{
		map[string]any{"key": "comment", "label": "Comments", "type": "text"},
		map[string]any{"key": "track", "label": "Track", "type": "choice", "options": []string{"dev", "ops"}}}})
	resp := id("POST", fmt.Sprintf("%s/forms/%d/responses", p, form), U,
		map[string]any{"attendee_id": att, "answers": map[string]any{"comment": "ok", "track": "dev"}})
	room := id("POST", "/chat/rooms", U, map[string]any{"name": "Crew", "participant_ids": []string{"1"}})
	msg := id("POST", fmt.Sprintf("/chat/rooms/%d/messages", room), U, map[string]any{"body": "hi"})
	var reply map[string]any
	api.MustDo("POST", fmt.Sprintf("/chat/rooms/%d/messages", room), U, map[string]any{"body": "re", "parent_message_id": msg},
		http.StatusCreated, &reply)
	thread := int64(reply["chat_thread_id"].(float64))
	note := id("POST", "/members/12345/notifications", A, map[string]any{"type": "mention", "title": "t", "body": "b"})

	f := fmt.Sprintf
	return map[string]write{
		"POST /api/v1/projects": {"/projects", A, map[string]any{"slug": "expo", "name": "Expo"}, 201},

		"POST /api/v1/projects/:slug/attendees": {p + "/attendees", A,
			map[string]any{"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}, 201},
		"PATCH /api/v1/projects/:slug/attendees/:id": {f("%s/attendees/%d", p, att), A,
			map[string]any{"first_name": "Janet", "email": "janet@example.com"}, 200},

		"POST /api/v1/projects/:slug/access/zones": {p + "/access/zones", A, map[string]any{"name": "Hall B"}, 201},
		"POST /api/v1/projects/:slug/access/points": {p + "/access/points", A,
			map[string]any{"access_zone_id": zone, "name": "Gate B"}, 201},
		"POST /api/v1/projects/:slug/access/credentials": {p + "/access/credentials", A,
			map[string]any{"attendee_id": att2, "value": "BADGE-3"}, 201},
		"POST /api/v1/projects/:slug/access/credentials/:id/revoke": {f("%s/access/credentials/%d/revoke", p, cred2), A, nil, 200},
		"POST /api/v1/projects/:slug/access/rules": {p + "/access/rules", A, map[string]any{"access_zone_id": zone,
			"attendee_id": att, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}, 201},
		"POST /api/v1/projects/:slug/access/scans": {p + "/access/scans", A,
			map[string]any{"credential_value": "BADGE-1", "access_point_id": point, "direction": "in"}, 201},

		"POST /api/v1/projects/:slug/social/streams": {p + "/social/streams", A, map[string]any{"name": "Side"}, 201},
		"POST /api/v1/projects/:slug/social/streams/:stream/posts": {f("%s/social/streams/%d/posts", p, stream), U,
			map[string]any{"content": "hello"}, 201},
		"POST /api/v1/projects/:slug/social/streams/:stream/posts/:post/hide": {f("%s/social/streams/%d/posts/%d/hide", p, stream, post), A, nil, 200},

		"POST /api/v1/projects/:slug/games": {p + "/games", A, map[string]any{"name": "Quest 2"}, 201},
		"POST /api/v1/projects/:slug/games/:id/awards": {f("%s/games/%d/awards", p, game), A,
			map[string]any{"attendee_id": att, "points": 5, "reason": "booth_visit"}, 201},

		"POST /api/v1/projects/:slug/forms": {p + "/forms", A, map[string]any{"title": "Survey", "fields": []any{
			map[string]any{"key": "q", "label": "Q", "type": "choice", "options": []any{"a", "b"}}}}, 201},
		"POST /api/v1/projects/:slug/forms/:id/responses": {f("%s/forms/%d/responses", p, form), U,
			map[string]any{"attendee_id": att2, "answers": map[string]any{"comment": "great", "track": "ops"}}, 201},
		"PATCH /api/v1/projects/:slug/forms/:id/responses/:response": {f("%s/forms/%d/responses/%d", p, form, resp), U,
			map[string]any{"answers": map[string]any{"comment": "better", "track": "dev"}}, 200},

		"POST /api/v1/chat/rooms": {"/chat/rooms", U, map[string]any{"name": "Crew 2", "kind": "group_chat",
			"description": "d", "identifier": "crew-2", "participant_ids": []any{"1"}}, 201},
		"PATCH /api/v1/chat/rooms/:room":             {f("/chat/rooms/%d", room), U, map[string]any{"name": "Crew!", "description": "desc"}, 200},
		"POST /api/v1/chat/rooms/:room/participants": {f("/chat/rooms/%d/participants", room), U, map[string]any{"member_id": "44"}, 201},
		"POST /api/v1/chat/rooms/:room/read":         {f("/chat/rooms/%d/read", room), U, nil, 204},
		"POST /api/v1/chat/rooms/:room/pin":          {f("/chat/rooms/%d/pin", room), U, nil, 200},
		"POST /api/v1/chat/rooms/:room/messages": {f("/chat/rooms/%d/messages", room), U, map[string]any{"body": "hello",
			"rich_text_body": map[string]any{"type": "doc", "text": "hello"}, "creation_uuid": "u-1"}, 201},
		"PATCH /api/v1/chat/rooms/:room/messages/:id": {f("/chat/rooms/%d/messages/%d", room, msg), U,
			map[string]any{"body": "edited", "rich_text_body": map[string]any{"type": "doc"}}, 200},
		"POST /api/v1/chat/threads/:thread/read": {f("/chat/threads/%d/read", thread), U, nil, 204},

		"POST /api/v1/members/:member/notifications": {"/members/12345/notifications", A, map[string]any{"type": "mention",
			"title": "Hi", "body": "there", "link": "/x", "actor": map[string]any{"id": "7", "name": "Jane"}}, 201},
		"POST /api/v1/notifications/read-all": {"/notifications/read-all", U, nil, 200},
		"POST /api/v1/notifications/:id/read": {f("/notifications/%d/read", note), U, nil, 200},
	}
}

// A NUL character in any string of any write body is a 422 naming the field
// and writes nothing; data after the JSON body is a 400 and writes nothing;
// the valid body is still accepted. On both stores, for every POST, PUT and
// PATCH route the router holds.
func TestWriteBodiesRefuseNULAndTrailingData(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api := apitest.New(t, db, modules(db))
		calls := fixtures(t, api)
		seen := map[string]bool{}
		for _, r := range routes(db) {
			if !isWrite(r.Method) {
				continue
			}
			key := r.Method + " " + r.Path
			seen[key] = true
			w, ok := calls[key]
			if !ok {
				t.Errorf("%s: no call described in fixtures(): add one so this route is checked", key)
				continue
			}
			t.Run(key, func(t *testing.T) {
				if w.body == nil {
					// The handler reads no body; nothing to refuse.
					api.MustDo(r.Method, w.path, w.token, nil, w.status, nil)
					return
				}
				valid, err := json.Marshal(w.body)
				if err != nil {
					t.Fatal(err)
				}
				before := dbtest.Snapshot(t, db)
				for _, v := range nulVariants(t, valid) {
					res := api.Do(r.Method, w.path, w.token, v.body)
					e := res.Error()
					if res.Status != http.StatusUnprocessableEntity || e.Code != "validation_failed" || e.Field != v.field ||
						!strings.Contains(e.Message, "NUL") {
						t.Errorf("NUL in %s: %d %s, want 422 validation_failed field %q", v.field, res.Status, res.Body, v.field)
					}
				}
				for _, tail := range []string{"}", "]", " }", "\n]", "{}", `"x"`} {
					res := api.Do(r.Method, w.path, w.token, append(slices.Clip(valid), tail...))
					if e := res.Error(); res.Status != http.StatusBadRequest || e.Code != "bad_request" || !strings.Contains(e.Message, "trailing data") {
						t.Errorf("body + %q: %d %s, want 400 bad_request about trailing data", tail, res.Status, res.Body)
					}
				}
				if after := dbtest.Snapshot(t, db); !reflect.DeepEqual(before, after) {
					t.Errorf("refused requests changed the database:\n%s", diff(before, after))
				}
				// Trailing whitespace is not data.
				api.MustDo(r.Method, w.path, w.token, append(slices.Clip(valid), " \r\n\t"...), w.status, nil)
			})
		}
		for key := range calls {
			if !seen[key] {
				t.Errorf("fixtures() describes %s, which the router does not hold", key)
			}
		}
	}, migrations()...)
}

// A NUL character or invalid UTF-8 in any path parameter of any route is a
// 422 naming the parameter, before authentication, idempotency or the
// handler touch the database; so are query parameters. On both stores.
func TestParamsRefuseNULAndInvalidUTF8(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api := apitest.New(t, db, modules(db))
		fixtures(t, api)
		before := dbtest.Snapshot(t, db)
		type call struct{ method, path, field, message string }
		calls := []call{
			// The report: a 500 on PostgreSQL.
			{"GET", "/projects/%00/attendees", "slug", "must not contain NUL characters"},
			{"GET", "/projects/demo/attendees?cursor=%00", "cursor", "must not contain NUL characters"},
			{"GET", "/projects/demo/attendees?limit=%FF", "limit", "must be valid UTF-8"},
			{"GET", "/chat/rooms/1/messages?parent_message_id=1%00", "parent_message_id", "NUL"},
		}
		n := 0
		for _, r := range routes(db) {
			names := params(r.Path)
			for _, name := range names {
				n++
				for bad, message := range map[string]string{"%00": "must not contain NUL characters", "x%00y": "NUL",
					"%FF": "must be valid UTF-8", "%C3": "UTF-8"} {
					path := r.Path
					for _, other := range names {
						v := "1"
						if other == name {
							v = bad
						} else if other == "slug" {
							v = apitest.Project
						}
						path = strings.Replace(path, ":"+other, v, 1)
					}
					calls = append(calls, call{r.Method, strings.TrimPrefix(path, "/api/v1"), name, message})
				}
			}
		}
		if n < 40 {
			t.Fatalf("only %d path parameters found: is routes() right?", n)
		}
		for _, c := range calls {
			// Idempotency-Key: the key's row is written before the handler
			// runs, with the path in it; it must not get that far.
			res := api.Do(c.method, c.path, api.Admin, nil, domain.HeaderIdempotencyKey, "k-"+c.path)
			e := res.Error()
			if res.Status != http.StatusUnprocessableEntity || e.Code != "validation_failed" || e.Field != c.field ||
				!strings.Contains(e.Message, c.message) {
				t.Errorf("%s %s: %d %s, want 422 field %q message containing %q", c.method, c.path, res.Status, res.Body, c.field, c.message)
			}
		}
		if after := dbtest.Snapshot(t, db); !reflect.DeepEqual(before, after) {
			t.Errorf("refused requests changed the database:\n%s", diff(before, after))
		}
		// Good parameters still work.
		api.MustDo("GET", "/projects/demo/attendees?limit=1", api.User, nil, http.StatusOK, nil)
	}, migrations()...)
}

// params lists the names of the :parameters of an echo route path.
func params(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, ":") {
			out = append(out, seg[1:])
		}
	}
	return out
}

// variant is a body with one NUL planted, and the field Bind must name.
type variant struct {
	field string
	body  []byte
}

// nulVariants plants a NUL at the end of each string of body in turn
// (member names too, with one unknown member), naming it the way Bind does:
// members joined by ".", elements as "[i]".
func nulVariants(t *testing.T, body []byte) []variant {
	t.Helper()
	var out []variant
	var walk func(v any, field string)
	walk = func(v any, field string) {
		switch x := v.(type) {
		case string:
			out = append(out, variant{field, marshal(t, root(t, body, field, x+"\x00"))})
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				f := k
				if field != "" {
					f = field + "." + k
				}
				walk(x[k], f)
			}
		case []any:
			for i := range x {
				walk(x[i], field+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	var doc any
	decode(t, body, &doc)
	walk(doc, "")
	if len(out) == 0 {
		t.Fatalf("no string in %s to plant a NUL in", body)
	}
	// An unknown member is ignored by the handler, but its name is text.
	extra := map[string]any{}
	decode(t, body, &extra)
	extra["note\x00"] = 1
	return append(out, variant{`note\u0000`, marshal(t, extra)})
}

// root decodes body again and sets the string at field to s: each variant
// gets its own copy of the document.
func root(t *testing.T, body []byte, field, s string) any {
	t.Helper()
	var doc any
	decode(t, body, &doc)
	var walk func(v any, at string, set func(any)) bool
	walk = func(v any, at string, set func(any)) bool {
		if at == field {
			if _, ok := v.(string); ok {
				set(s)
				return true
			}
		}
		switch x := v.(type) {
		case map[string]any:
			for k := range x {
				f := k
				if at != "" {
					f = at + "." + k
				}
				if walk(x[k], f, func(nv any) { x[k] = nv }) {
					return true
				}
			}
		case []any:
			for i := range x {
				if walk(x[i], at+"["+strconv.Itoa(i)+"]", func(nv any) { x[i] = nv }) {
					return true
				}
			}
		}
		return false
	}
	if !walk(doc, "", func(any) {}) {
		t.Fatalf("no string at %s in %s", field, body)
	}
	return doc
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // ids stay integers
	if err := dec.Decode(v); err != nil {
		t.Fatal(err)
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diff lists the tables whose rows differ between two snapshots.
func diff(before, after map[string][]string) string {
	var b strings.Builder
	for table, rows := range after {
		if !slices.Equal(before[table], rows) {
			fmt.Fprintf(&b, "%s:\n  before %q\n  after  %q\n", table, before[table], rows)
		}
	}
	return b.String()
}
