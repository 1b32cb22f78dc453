package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&HTTPError{Status: 503, Body: []byte(`{"error":{"status":503,"code":"database_unavailable","message":"m"}}`)}, "HTTP 503 database_unavailable"},
		{&HTTPError{Status: 502, Body: []byte("bad gateway")}, "HTTP 502"},
		{fmt.Errorf("Post %q: %w", "http://x", errors.New("read: connection reset by peer")), "read: connection reset by peer"},
	}
	for _, tc := range tests {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestPublisherCountsErrorsByKind(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"database_unavailable"}}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	p := &Publisher{URL: srv.URL, Client: srv.Client(), Body: func(s string) []byte { return []byte(s) }}
	rec := NewRecorder(8)
	for i := range 4 {
		p.One(context.Background(), rec, i)
	}
	if p.Errors.Load() != 2 || p.FirstErrAt().IsZero() {
		t.Fatalf("errors %d, first at %v", p.Errors.Load(), p.FirstErrAt())
	}
	if k := p.ErrorKinds(); k != "2× HTTP 503 database_unavailable" {
		t.Errorf("kinds %q", k)
	}
	if !strings.Contains(p.FirstErr().Error(), "HTTP 503: {") {
		t.Errorf("first error %q", p.FirstErr())
	}
}
