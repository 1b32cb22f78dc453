package domain_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/internal/apitest"
)

// FuzzBind checks domain.Bind against encoding/json itself, through a real
// echo context. Bind's contract, in order: a body that is not one JSON value
// (json.Valid, which allows surrounding whitespace) is a 400; a NUL in any
// string of it is a 422 naming a field; a value json.Unmarshal cannot put
// into the target is a 400; anything else is accepted and decodes to what
// json.Unmarshal makes of it. Nothing else (no 500, no panic).
func FuzzBind(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","n":1,"tags":["a"],"items":[{"label":"l"}],"raw":{"a":[1,"b"]},"meta":{"k":"v"}}`,
		`{"name":"a\u0000b"}`,
		`{"name":"\\u0000"}`,
		`{"name":"x"}}`,
		`{"name":"x"}]`,
		`{"n":1e400}`,
	} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		c := e.NewContext(req, httptest.NewRecorder())
		var got bindTarget
		err := domain.Bind(c, &got)

		valid := json.Valid(body)
		nul := valid && apitest.HasNUL(body)
		var want bindTarget
		decodes := valid && json.Unmarshal(body, &want) == nil
		wantStatus := 0
		switch {
		case !valid:
			wantStatus = http.StatusBadRequest
		case nul:
			wantStatus = http.StatusUnprocessableEntity
		case !decodes:
			wantStatus = http.StatusBadRequest
		}
		if err == nil {
			if wantStatus != 0 {
				t.Fatalf("Bind accepted %q, want %d (valid %v, NUL %v, fits %v)", body, wantStatus, valid, nul, decodes)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Bind decoded %q to %+v, json.Unmarshal to %+v", body, got, want)
			}
			return
		}
		de, ok := domain.AsError(err)
		if !ok {
			t.Fatalf("Bind(%q) = %v: not a client error", body, err)
		}
		if de.Status != wantStatus {
			t.Fatalf("Bind(%q) = %+v, want %d (valid %v, NUL %v, fits %v)", body, de, wantStatus, valid, nul, decodes)
		}
		switch de.Status {
		case http.StatusBadRequest:
			if de.Code != "bad_request" {
				t.Fatalf("Bind(%q) = %+v", body, de)
			}
		case http.StatusUnprocessableEntity:
			if de.Code != "validation_failed" || de.Field == "" || !strings.Contains(de.Message, "NUL") {
				t.Fatalf("Bind(%q) = %+v", body, de)
			}
		}
	})
}
