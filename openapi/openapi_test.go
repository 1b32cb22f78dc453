package openapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"switchboard/openapi"
	"switchboard/openapi/openapitest"
)

// The document is valid OpenAPI 3.1 by the specification's own schema.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := libopenapi.NewDocument(openapi.Document())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("version %q", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("build: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("the document is not valid OpenAPI 3.1:%s", openapitest.Describe(verrs))
	}
	openapitest.Validator(t) // compiles every schema, formats asserted
}

// Every $ref points at something the document has.
func TestReferencesResolve(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, at string)
	n := 0
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				if !resolves(doc, ref) {
					t.Errorf("%s: $ref %s does not resolve", at, ref)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for _, x := range v {
				walk(x, at+"/[]")
			}
		}
	}
	walk(doc, "#")
	if n < 100 {
		t.Fatalf("only %d references: is the walk right?", n)
	}
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// Operation ids are unique, and each alias names a described operation.
func TestOperationsTable(t *testing.T) {
	ids := map[string]bool{}
	keys := map[string]bool{}
	for _, o := range openapi.Operations() {
		if ids[o.OperationID] {
			t.Errorf("operationId %s twice", o.OperationID)
		}
		ids[o.OperationID] = true
		keys[o.Method+" "+o.Path] = true
	}
	for _, o := range openapi.Operations() {
		if o.AliasOf != "" && !keys[o.AliasOf] {
			t.Errorf("%s %s is an alias of %s, which is not described", o.Method, o.Path, o.AliasOf)
		}
	}
	if got := openapi.EchoPath("/api/v1/projects/{slug}/forms/{id}/responses/{response}"); got != "/api/v1/projects/:slug/forms/:id/responses/:response" {
		t.Fatalf("EchoPath: %s", got)
	}
}

// The validator the router test relies on does catch a wrong body, an
// undocumented status and a wrong format, so its silence means something.
func TestValidatorCatchesMismatches(t *testing.T) {
	v := openapitest.Validator(t)
	good := `{"id":1,"project_id":1,"first_name":"J","last_name":"S","email":"j@example.com","attendee_type_id":null,` +
		`"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"the real shape", 200, good, true},
		{"a field of the wrong type", 200, strings.Replace(good, `"id":1`, `"id":"1"`, 1), false},
		{"a required field missing", 200, strings.Replace(good, `"email":"j@example.com",`, ``, 1), false},
		{"a time that is not RFC 3339", 200, strings.Replace(good, `"2026-01-02T03:04:05Z"`, `"yesterday"`, 1), false},
		{"an undocumented status", 418, good, false},
		{"the error body", 404, `{"error":{"code":"not_found","message":"attendee 1 not found"}}`, true},
		{"an error body without its code", 404, `{"error":{"message":"attendee 1 not found"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/projects/demo/attendees/1", nil)
			req.Header.Set("Authorization", "Bearer x")
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(tc.status)
			rec.WriteString(tc.body)
			x := openapitest.Exchange{Request: req, Response: rec.Result(), Body: rec.Body.Bytes()}
			errs := x.ValidateResponse(v)
			if (len(errs) == 0) != tc.ok {
				t.Fatalf("ok = %v, want %v:%s", len(errs) == 0, tc.ok, openapitest.Describe(errs))
			}
		})
	}
}
