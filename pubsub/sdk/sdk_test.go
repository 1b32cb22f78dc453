package sdk

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestServed(t *testing.T) {
	e := echo.New()
	Routes(e)
	for _, tc := range []struct {
		path, gzip, want string
	}{
		{"/sdk/pubsub.js", "", "globalThis.PubSub = PubSub"},
		{"/sdk/pubsub.js", "gzip, br", "globalThis.PubSub = PubSub"},
		{"/sdk/pubsub.mjs", "", "export default PubSub"},
		{"/sdk/pubsub.d.ts", "", "subscribe"},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Header.Set("Accept-Encoding", tc.gzip)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var body io.Reader = rec.Body
		if tc.gzip != "" {
			if rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: not gzipped", tc.path)
			}
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		if rec.Code != 200 || !strings.Contains(string(b), tc.want) || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s (%q): %d %.80q", tc.path, tc.gzip, rec.Code, b)
		}
		// Revalidation.
		req = httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		rec = httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Fatalf("%s: revalidation %d", tc.path, rec.Code)
		}
	}
}
