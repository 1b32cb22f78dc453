package apitest

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"switchboard/domain/dbtest"
)

// For returns a copy of a that reports to t. A fuzz target builds its API
// once with its *testing.F (one server and store per fuzz process, not per
// input) and calls it through For(t) with each input's *testing.T: the
// methods of F may not be called inside the fuzz function.
func (a *API) For(t testing.TB) *API {
	b := *a
	b.t = t
	return &b
}

// Endpoint is one write route a body fuzz target drives.
type Endpoint struct {
	Method, Path string // Path is below /api/v1, with real ids
	Token        string
}

// FuzzBodies fuzzes the bodies of eps: each input is an endpoint (op, taken
// modulo len(eps)) and a raw body, sent over HTTP to the module's real
// handler on a's store. It asserts what every REST write promises whatever
// the body: never a 5xx (a panic in a handler is one, through NewEcho's
// recoverer), a JSON answer, the {"error":{code,message}} shape on a 4xx, no
// row added or removed by a 4xx (the outbox included: no event for a
// refused write), and no NUL character stored by a 2xx. The seed corpus of
// the calling target (testdata/fuzz/<FuzzName>/) runs with plain go test.
func FuzzBodies(f *testing.F, a *API, eps []Endpoint) {
	f.Helper()
	if len(eps) == 0 {
		f.Fatal("no endpoints")
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		ep := eps[int(op)%len(eps)]
		before := dbtest.RowCounts(t, a.DB)
		r := a.For(t).Do(ep.Method, ep.Path, ep.Token, body)
		t.Logf("%s %s: %d %.200s", ep.Method, ep.Path, r.Status, r.Body)
		CheckResponse(t, ep.Method+" "+ep.Path, r)
		if r.Status >= 400 {
			if after := dbtest.RowCounts(t, a.DB); !maps.Equal(before, after) {
				t.Fatalf("%s %s answered %d but changed rows: %v -> %v\nbody: %q", ep.Method, ep.Path, r.Status, before, after, body)
			}
			return
		}
		if HasNUL(body) {
			t.Fatalf("%s %s answered %d to a body with a NUL character: %q", ep.Method, ep.Path, r.Status, body)
		}
	})
}

// CheckResponse fails t unless r is an answer the REST conventions allow:
// below 500, JSON (or empty for 204), and on 4xx an error body with a code
// and a message, plus the field at fault on a validation error.
func CheckResponse(t testing.TB, what string, r Response) {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("%s answered %d: %s", what, r.Status, r.Body)
	}
	if r.Status == http.StatusNoContent && len(r.Body) == 0 {
		return
	}
	if !json.Valid(r.Body) {
		t.Fatalf("%s answered %d with a body that is not JSON: %q", what, r.Status, r.Body)
	}
	if r.Status < 400 {
		return
	}
	var b struct {
		Error *struct {
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Field   *string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Error == nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("%s answered %d without the error shape: %s", what, r.Status, r.Body)
	}
	if b.Error.Code == "validation_failed" && (b.Error.Field == nil || *b.Error.Field == "") {
		t.Fatalf("%s answered %d validation_failed without a field: %s", what, r.Status, r.Body)
	}
}

// HasNUL reports whether any string of the JSON text b, member names
// included, holds a NUL character; false when b is not JSON. It reads every
// token rather than decoding into maps so a duplicate key cannot hide one.
func HasNUL(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF at the end, or not JSON
			return false
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return true
		}
	}
}

// ID creates something with a POST that must answer 201 and returns the
// "id" of the answer: fixtures of fuzz targets in one line each.
func (a *API) ID(path, token string, body any) int64 {
	a.t.Helper()
	var out struct {
		ID int64 `json:"id"`
	}
	a.MustDo(http.MethodPost, path, token, body, http.StatusCreated, &out)
	return out.ID
}
