package domain_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Every request gets one access line once its response is written, with
// the status the client got (errors and panics included), the request and
// operation ids, and the path without its query; health checks and
// metrics scrapes are logged at debug level only.
func TestAccessLog(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, requestID string
		wantStatus                      int
		wantLevel, wantPath, wantOp     string
	}{
		{name: "operation", method: "POST", target: "/api/v1/things", requestID: "abc123",
			wantStatus: 201, wantLevel: "INFO", wantPath: "/api/v1/things", wantOp: "v1.things.store"},
		{name: "error rendered", method: "GET", target: "/api/v1/things/7",
			wantStatus: 403, wantLevel: "INFO", wantPath: "/api/v1/things/7", wantOp: "v1.things.show"},
		{name: "panic", method: "GET", target: "/boom",
			wantStatus: 500, wantLevel: "INFO", wantPath: "/boom"},
		{name: "not found", method: "GET", target: "/nowhere",
			wantStatus: 404, wantLevel: "INFO", wantPath: "/nowhere"},
		{name: "query left out", method: "GET", target: "/cable?token=secret",
			wantStatus: 200, wantLevel: "INFO", wantPath: "/cable"},
		{name: "health check at debug", method: "GET", target: "/healthz",
			wantStatus: 200, wantLevel: "DEBUG", wantPath: "/healthz"},
		{name: "metrics scrape at debug", method: "GET", target: "/metrics",
			wantStatus: 200, wantLevel: "DEBUG", wantPath: "/metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			e := domain.NewEcho(log)
			ok := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
			e.POST("/api/v1/things", func(c echo.Context) error { return c.NoContent(http.StatusCreated) }, domain.Op("v1.things.store"))
			e.GET("/api/v1/things/:id", func(echo.Context) error { return domain.Forbidden("not yours") }, domain.Op("v1.things.show"))
			e.GET("/boom", func(echo.Context) error { panic("boom") })
			e.GET("/cable", ok)
			e.GET("/healthz", ok)
			e.GET("/metrics", ok)

			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.requestID != "" {
				req.Header.Set(domain.HeaderRequestID, tc.requestID)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}

			var lines []map[string]any
			for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				var m map[string]any
				if json.Unmarshal(l, &m) == nil && m["msg"] == "request" {
					lines = append(lines, m)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d access lines, want 1:\n%s", len(lines), buf.Bytes())
			}
			l := lines[0]
			status, _ := l["status"].(float64)
			_, hasDuration := l["duration"].(float64)
			wantRID := rec.Header().Get(domain.HeaderRequestID)
			if l["level"] != tc.wantLevel || l["method"] != tc.method || l["path"] != tc.wantPath ||
				int(status) != tc.wantStatus || !hasDuration || l["request_id"] != wantRID || wantRID == "" ||
				l["operation_id"] != tc.wantOp {
				t.Fatalf("access line %v: want level %s, %s %s, status %d, a duration, request_id %q, operation_id %q",
					l, tc.wantLevel, tc.method, tc.wantPath, tc.wantStatus, wantRID, tc.wantOp)
			}
			if tc.requestID != "" && wantRID != tc.requestID {
				t.Fatalf("request id %q, want the client's %q", wantRID, tc.requestID)
			}
		})
	}
}
