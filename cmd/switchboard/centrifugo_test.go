package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCentrifugoConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantTTL time.Duration
		wantErr string
	}{
		{name: "defaults", wantTTL: time.Hour},
		{name: "token ttl", env: map[string]string{"SWITCHBOARD_REALTIME_TOKEN_TTL": "90s"}, wantTTL: 90 * time.Second},
		{name: "bad token ttl", env: map[string]string{"SWITCHBOARD_REALTIME_TOKEN_TTL": "soon"}, wantErr: "SWITCHBOARD_REALTIME_TOKEN_TTL"},
		{name: "negative token ttl", env: map[string]string{"SWITCHBOARD_REALTIME_TOKEN_TTL": "-1s"}, wantErr: "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := loadConfig("serve", nil, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.RealtimeTokenTTL != tc.wantTTL {
				t.Fatalf("ttl %v err %v, want %v", c.RealtimeTokenTTL, err, tc.wantTTL)
			}
		})
	}
}

// A broken namespaces file stops `serve` before it listens, naming the problem.
func TestServeRefusesBadCentrifugoConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(`{"namespaces":[{"name":"voice","presense":true}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_ADDR", freeAddr(t))
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("SWITCHBOARD_JWT_SECRET", "s")
	t.Setenv("SWITCHBOARD_CENTRIFUGO_CONFIG", path)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := serve(ctx, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "presense") {
		t.Fatalf("serve = %v, want the config error", err)
	}
}
