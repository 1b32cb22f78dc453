// Package openapitest validates the OpenAPI document and real traffic
// against it with a real OpenAPI 3.1 validator (pb33f/libopenapi-validator),
// for tests only: the binary does not link it.
package openapitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/errors"

	"switchboard/openapi"
)

// Validator parses the document the binary serves and returns a validator
// of requests and responses that asserts formats (date-time, ...) too.
func Validator(t testing.TB) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(openapi.Document())
	if err != nil {
		t.Fatalf("openapi: parse: %v", err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithURLEncodedBodyValidation())
	if len(errs) > 0 {
		t.Fatalf("openapi: build: %v", errs)
	}
	return v
}

// Describe renders validation errors one a line, with the schema failures.
func Describe(errs []*errors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    at %s: %s", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// Exchange is one real request and the response the server gave.
type Exchange struct {
	Request  *http.Request
	Response *http.Response
	Body     []byte // the response body, also readable from Response
}

// Do sends req (whose body is body) with client and returns the exchange,
// the request body kept so it can be validated too.
func Do(client *http.Client, req *http.Request, body []byte) (Exchange, error) {
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	res, err := client.Do(req)
	if err != nil {
		return Exchange{}, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return Exchange{}, err
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return Exchange{Request: req, Response: res, Body: b}, nil
}

// ValidateResponse checks the response (status, headers, body) against the
// document; the request only locates the operation.
func (x Exchange) ValidateResponse(v validator.Validator) []*errors.ValidationError {
	x.Response.Body = io.NopCloser(bytes.NewReader(x.Body))
	_, errs := v.ValidateHttpResponse(x.Request, x.Response)
	return errs
}

// ValidateBoth checks the request (parameters, security, body) and the
// response against the document.
func (x Exchange) ValidateBoth(v validator.Validator, requestBody []byte) []*errors.ValidationError {
	x.Response.Body = io.NopCloser(bytes.NewReader(x.Body))
	if requestBody != nil {
		x.Request.Body = io.NopCloser(bytes.NewReader(requestBody))
	}
	_, errs := v.ValidateHttpRequestResponse(x.Request, x.Response)
	return errs
}
