package domain

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestCORS(t *testing.T) {
	o, _ := ParseOrigins([]string{"http://localhost:*"})
	e := echo.New()
	e.Pre(CORS(o))
	// A route behind auth: preflights must never reach it.
	e.POST("/api/v1/thing", func(c echo.Context) error { return c.String(200, "ok") },
		func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error { return c.NoContent(http.StatusUnauthorized) }
		})
	for _, tc := range []struct {
		name, method, origin string
		preflight            bool
		status               int
		acao                 string
	}{
		{"preflight, allowed", "OPTIONS", "http://localhost:5173", true, 204, "http://localhost:5173"},
		{"preflight, refused", "OPTIONS", "http://evil.example", true, 403, ""},
		{"request, allowed", "POST", "http://localhost:5173", false, 401, "http://localhost:5173"},
		{"request, refused origin", "POST", "http://evil.example", false, 401, ""},
		{"no Origin", "POST", "", false, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/api/v1/thing", nil)
			req.Host = "127.0.0.1:8080"
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.preflight {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.status || rec.Header().Get("Access-Control-Allow-Origin") != tc.acao {
				t.Fatalf("%d ACAO %q, want %d %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tc.status, tc.acao)
			}
			if tc.preflight && tc.status == 204 && rec.Header().Get("Access-Control-Allow-Headers") != "authorization, content-type" {
				t.Fatalf("allow headers %q", rec.Header().Get("Access-Control-Allow-Headers"))
			}
		})
	}
}
