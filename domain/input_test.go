package domain_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// bindTarget has a field of each kind module inputs use.
type bindTarget struct {
	Name  string     `json:"name"`
	Ptr   *string    `json:"ptr"`
	N     int64      `json:"n"`
	F     float64    `json:"f"`
	OK    bool       `json:"ok"`
	At    *time.Time `json:"at"`
	Tags  []string   `json:"tags"`
	Items []struct {
		Label string `json:"label"`
	} `json:"items"`
	Raw  json.RawMessage   `json:"raw"`
	Meta map[string]string `json:"meta"`
	Any  map[string]any    `json:"any"`
}

// bind runs domain.Bind on body through a real echo context.
func bind(body string, v any) error {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c := echo.New().NewContext(req, httptest.NewRecorder())
	return domain.Bind(c, v)
}

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int    // 0: accepted
		field      string // of a 422
		message    string // part of the message of an error
	}{
		{name: "valid", body: `{"name":"x","n":1,"tags":["a"]}`},
		{name: "whitespace after the value", body: "{\"name\":\"x\"} \n\t\r\n"},
		{name: "unknown fields ignored", body: `{"name":"x","later":{"deep":[1,2]}}`},
		{name: "escaped backslash then u0000 is text", body: `{"name":"\\u0000"}`},
		{name: "two escaped backslashes then u0000 is text", body: `{"name":"a\\\\u0000"}`},
		{name: "u0000 without a backslash is text", body: `{"name":"u0000"}`},
		{name: "other control escapes are fine", body: `{"name":"\u0001\t\n"}`},
		{name: "huge number in raw JSON", body: `{"raw":[1e400,"x"]}`},

		{name: "empty", body: ``, status: 400, message: "request body is empty"},
		{name: "only whitespace", body: " \n ", status: 400, message: "request body is empty"},
		{name: "trailing brace", body: `{"name":"x"}}`, status: 400, message: "trailing data"},
		{name: "trailing bracket", body: `{"name":"x"}]`, status: 400, message: "trailing data"},
		{name: "trailing brace after whitespace", body: "{\"name\":\"x\"}\n}", status: 400, message: "trailing data"},
		{name: "second value", body: `{"name":"x"} {"name":"y"}`, status: 400, message: "trailing data"},
		{name: "trailing text", body: `{"name":"x"}x`, status: 400, message: "trailing data"},
		{name: "trailing NUL byte", body: "{\"name\":\"x\"}\x00", status: 400, message: "trailing data"},
		{name: "truncated", body: `{"name":"x"`, status: 400, message: "malformed JSON body"},
		{name: "wrong type", body: `{"n":"1"}`, status: 400, message: "malformed JSON body"},
		{name: "number out of range", body: `{"n":1e400}`, status: 400, message: "malformed JSON body"},
		{name: "integer overflow", body: `{"n":9223372036854775808}`, status: 400, message: "malformed JSON body"},
		{name: "raw NUL byte in a string", body: "{\"name\":\"a\x00\"}", status: 400, message: "malformed JSON body"},
		{name: "uppercase U escape", body: `{"name":"\U0000"}`, status: 400, message: "malformed JSON body"},
		{name: "too deep", body: strings.Repeat(`{"any":`, 10001) + `1` + strings.Repeat(`}`, 10001), status: 400, message: "malformed JSON body"},
		// Malformed JSON beats NUL; NUL beats JSON that does not fit.
		{name: "NUL and malformed", body: `{"name":"\u0000",}`, status: 400, message: "malformed JSON body"},
		{name: "NUL and trailing data", body: `{"name":"\u0000"}}`, status: 400, message: "trailing data"},
		{name: "NUL and a wrong type", body: `{"n":"x","name":"\u0000"}`, status: 422, field: "name"},
		{name: "NUL in a time", body: `{"at":"2026-01-02T03:04:05Z\u0000"}`, status: 422, field: "at"},
		{name: "NUL in a number's place", body: `{"n":"\u0000"}`, status: 422, field: "n"},

		{name: "NUL in a field", body: `{"name":"a\u0000b"}`, status: 422, field: "name", message: "name: must not contain NUL characters"},
		{name: "NUL alone", body: `{"name":"\u0000"}`, status: 422, field: "name"},
		{name: "NUL after an escaped backslash", body: `{"name":"\\\u0000"}`, status: 422, field: "name"},
		{name: "NUL in a pointer field", body: `{"name":"x","ptr":"\u0000"}`, status: 422, field: "ptr"},
		{name: "NUL in a list", body: `{"tags":["a","b\u0000"]}`, status: 422, field: "tags[1]"},
		{name: "NUL in a list of objects", body: `{"items":[{"label":"a"},{"label":"b"},{"label":"\u0000"}]}`, status: 422, field: "items[2].label"},
		{name: "NUL deep in raw JSON", body: `{"raw":{"a":[0,{"b":"\u0000"}]}}`, status: 422, field: "raw.a[1].b"},
		{name: "NUL after a huge number in raw JSON", body: `{"raw":[1e400,"\u0000"]}`, status: 422, field: "raw[1]"},
		{name: "NUL in a map value", body: `{"meta":{"k":"\u0000"}}`, status: 422, field: "meta.k"},
		{name: "NUL in a map key", body: `{"meta":{"k\u0000":"v"}}`, status: 422, field: `meta.k\u0000`},
		{name: "NUL in an ignored key", body: `{"na\u0000me":"x"}`, status: 422, field: `na\u0000me`},
		{name: "NUL in an ignored field", body: `{"later":{"x":["\u0000"]}}`, status: 422, field: "later.x[0]"},
		{name: "first NUL in document order", body: `{"tags":["\u0000"],"name":"\u0000"}`, status: 422, field: "tags[0]"},
		{name: "NUL in a duplicate key's first value", body: `{"name":"\u0000","name":"x"}`, status: 422, field: "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v bindTarget
			err := bind(tc.body, &v)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("Bind(%q) = %v, want nil", tc.body, err)
				}
				return
			}
			e, ok := domain.AsError(err)
			if !ok {
				t.Fatalf("Bind(%q) = %v, want a %d", tc.body, err, tc.status)
			}
			wantCode := map[int]string{400: "bad_request", 422: "validation_failed"}[tc.status]
			if e.Status != tc.status || e.Code != wantCode || e.Field != tc.field || !strings.Contains(e.Message, tc.message) {
				t.Fatalf("Bind(%q) = %d %s field %q %q, want %d %s field %q message containing %q",
					tc.body, e.Status, e.Code, e.Field, e.Message, tc.status, wantCode, tc.field, tc.message)
			}
		})
	}
}

// Bodies that are not objects: the path of a NUL starts at the element, and
// a NUL in a body that is one string names the whole body "$".
func TestBindNULOutsideObjects(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
		v                 any
	}{
		{"array", `["a","\u0000"]`, "[1]", new([]string)},
		{"string", `"\u0000"`, "$", new(string)},
		{"raw", `{"a":[[{"b":"\u0000"}]]}`, "a[0][0].b", new(json.RawMessage)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := domain.AsError(bind(tc.body, tc.v))
			if !ok || e.Status != 422 || e.Field != tc.field {
				t.Fatalf("Bind(%q) = %+v, want 422 field %q", tc.body, e, tc.field)
			}
		})
	}
}

// A body over the cap without a Content-Length (chunked) is refused as too
// large, like one whose Content-Length says so.
func TestBindBodyTooLarge(t *testing.T) {
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.POST("/x", func(c echo.Context) error {
		var v map[string]any
		if err := domain.Bind(c, &v); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	big := `{"a":"` + strings.Repeat("x", 1<<20) + `"}`
	req := httptest.NewRequest(http.MethodPost, "/x", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "payload_too_large") {
		t.Fatalf("answered %d %s", rec.Code, rec.Body)
	}
}

// Path and query parameters go to the database as text: NUL and invalid
// UTF-8 are refused before any route middleware (auth, idempotency) or
// handler runs.
func TestParamsRefuseNULAndInvalidUTF8(t *testing.T) {
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ran := false
	ok := func(c echo.Context) error {
		ran = true
		return c.JSON(http.StatusOK, map[string]string{"slug": c.Param("slug")})
	}
	// The route middleware would answer 401: the parameter check runs first.
	deny := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { return domain.ErrUnauthorized }
	}
	e.GET("/p/:slug/x", ok)
	e.POST("/p/:slug/x", ok, deny)
	e.GET("/q", ok)
	for _, tc := range []struct {
		name, method, target string
		status               int
		field, message       string
	}{
		{"plain", "GET", "/p/demo/x", 200, "", ""},
		{"valid UTF-8", "GET", "/p/caf%C3%A9/x", 200, "", ""},
		{"escaped slash", "GET", "/p/a%2Fb/x", 200, "", ""},
		{"NUL in a path parameter", "GET", "/p/%00/x", 422, "slug", "must not contain NUL characters"},
		{"NUL inside a path parameter", "GET", "/p/de%00mo/x", 422, "slug", "NUL"},
		{"NUL before route middleware", "POST", "/p/%00/x", 422, "slug", "NUL"},
		{"NUL next to an escaped slash", "GET", "/p/a%2F%00/x", 422, "slug", "NUL"},
		{"invalid UTF-8 in a path parameter", "GET", "/p/%FF/x", 422, "slug", "must be valid UTF-8"},
		{"truncated UTF-8 in a path parameter", "GET", "/p/caf%C3/x", 422, "slug", "UTF-8"},
		{"invalid UTF-8 next to an escaped slash", "GET", "/p/a%2F%FE/x", 422, "slug", "UTF-8"},
		{"NUL in an unrouted path", "GET", "/nowhere%00", 422, "path", "NUL"},
		{"query", "GET", "/q?limit=5&cursor=abc", 200, "", ""},
		{"NUL in a query value", "GET", "/q?cursor=%00", 422, "cursor", "must not contain NUL characters"},
		{"NUL in a later value", "GET", "/q?cursor=a&cursor=b%00", 422, "cursor", "NUL"},
		{"invalid UTF-8 in a query value", "GET", "/q?limit=%FF", 422, "limit", "must be valid UTF-8"},
		{"NUL in a query name", "GET", "/q?a%00=1", 422, `a\u0000`, "the parameter's name must not contain NUL"},
		{"invalid UTF-8 in a query name", "GET", "/q?%FF=1", 422, "\uFFFD", "name must be valid UTF-8"},
		{"first bad parameter by name", "GET", "/q?b=%00&a=%FF", 422, "a", "UTF-8"},
		{"NUL in the query of a parameterised route", "GET", "/p/demo/x?x=%00", 422, "x", "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = false
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			if rec.Code != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.target, rec.Code, rec.Body, tc.status)
			}
			if tc.status == 200 {
				return
			}
			if ran {
				t.Fatal("the handler ran")
			}
			var b domain.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error == nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if b.Error.Code != "validation_failed" || b.Error.Field != tc.field || !strings.Contains(b.Error.Message, tc.message) {
				t.Fatalf("%s %s = %+v, want field %q message containing %q", tc.method, tc.target, b.Error, tc.field, tc.message)
			}
		})
	}
}
