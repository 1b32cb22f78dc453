// Package apitest serves module routes the way cmd/switchboard does (NewEcho,
// Authn, real tokens) so module tests exercise status codes, operation ids
// and x-triggered-by end to end over HTTP.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Project is the slug every API test works in.
const Project = "demo"

// API is a test server with a project and two callers.
type API struct {
	t      testing.TB
	srv    *httptest.Server
	DB     *domain.DB
	Signer *domain.Signer
	// Admin is staff (admin claim); User may use Project only.
	Admin, User string
	// ProjectID is the id of Project.
	ProjectID int64
}

// New serves routes under /api/v1 and creates Project.
func New(t testing.TB, db *domain.DB, routes func(g *echo.Group)) *API {
	t.Helper()
	signer, err := domain.NewSigner("test-secret")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := domain.NewEcho(log)
	g := e.Group("/api/v1", domain.Authn(signer, true))
	domain.ProjectRoutes(g, db)
	routes(g)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	a := &API{t: t, srv: srv, DB: db, Signer: signer}
	a.Admin = a.Token(domain.Claims{Name: "Staff", Admin: true}, "1")
	a.User = a.Token(domain.Claims{Name: "Jane Smith", Projects: []string{Project}}, "12345")
	var p domain.Project
	a.MustDo(http.MethodPost, "/projects", a.Admin, map[string]string{"slug": Project, "name": "Demo"}, http.StatusCreated, &p)
	a.ProjectID = p.ID
	return a
}

// Token mints a bearer for sub with claims c.
func (a *API) Token(c domain.Claims, sub string) string {
	c.Subject = sub
	tok, err := a.Signer.Mint(c, time.Hour)
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// Response is what a call returned.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Error decodes an error body.
func (r Response) Error() *domain.Error {
	var b struct {
		Error *domain.Error `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	if b.Error == nil {
		return &domain.Error{}
	}
	return b.Error
}

// Do calls path (below /api/v1) with a JSON body (nil for none; a string or
// []byte is sent as is) and optional header pairs.
func (a *API) Do(method, path, token string, body any, header ...string) Response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, a.srv.URL+"/api/v1"+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// MustDo is Do that fails the test unless the status is want, and decodes
// the body into out (when not nil).
func (a *API) MustDo(method, path, token string, body any, want int, out any, header ...string) Response {
	a.t.Helper()
	r := a.Do(method, path, token, body, header...)
	if r.Status != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, r.Body, err)
		}
	}
	return r
}

// Attendee inserts an attendee row of Project directly and returns its id.
func (a *API) Attendee(first, last string, typeID *int64) int64 {
	a.t.Helper()
	now := time.Now().UTC()
	var id int64
	err := a.DB.QueryRowContext(context.Background(), `INSERT INTO attendees (project_id, first_name, last_name, email, attendee_type_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, a.ProjectID, first, last, first+"@example.com", typeID, now).Scan(&id)
	if err != nil {
		a.t.Fatalf("insert attendee: %v", err)
	}
	return id
}
