package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
)

func TestJWTMaxTTLConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{name: "default is 30 days", want: 720 * time.Hour},
		{name: "set", env: map[string]string{"SWITCHBOARD_JWT_MAX_TTL": "12h"}, want: 12 * time.Hour},
		{name: "not a duration", env: map[string]string{"SWITCHBOARD_JWT_MAX_TTL": "a month"}, wantErr: "SWITCHBOARD_JWT_MAX_TTL"},
		// Zero must not mean "no limit": that is what the variable removes.
		{name: "zero", env: map[string]string{"SWITCHBOARD_JWT_MAX_TTL": "0s"}, wantErr: "SWITCHBOARD_JWT_MAX_TTL: must be positive"},
		{name: "negative", env: map[string]string{"SWITCHBOARD_JWT_MAX_TTL": "-1h"}, wantErr: "SWITCHBOARD_JWT_MAX_TTL: must be positive"},
		{name: "below the realtime token ttl", env: map[string]string{"SWITCHBOARD_JWT_MAX_TTL": "30m"},
			wantErr: "SWITCHBOARD_REALTIME_TOKEN_TTL (1h0m0s) must not exceed SWITCHBOARD_JWT_MAX_TTL"},
		{name: "equal to the realtime token ttl", env: map[string]string{"SWITCHBOARD_JWT_MAX_TTL": "2h", "SWITCHBOARD_REALTIME_TOKEN_TTL": "2h"},
			want: 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := loadConfig("serve", nil, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.JWTMaxTTL != tt.want {
				t.Fatalf("JWTMaxTTL = %s, err %v; want %s", c.JWTMaxTTL, err, tt.want)
			}
		})
	}
}

// TestTokenCommandTTL: `switchboard token` only prints tokens the server
// accepts under the same SWITCHBOARD_JWT_MAX_TTL.
func TestTokenCommandTTL(t *testing.T) {
	const secret = "cmd-secret"
	tests := []struct {
		name    string
		maxTTL  string // SWITCHBOARD_JWT_MAX_TTL; "" = default
		args    []string
		wantTTL time.Duration
		wantErr string
	}{
		{name: "default ttl", wantTTL: 24 * time.Hour},
		{name: "explicit ttl", args: []string{"--ttl", "90m"}, wantTTL: 90 * time.Minute},
		{name: "exactly the default max", args: []string{"--ttl", "720h"}, wantTTL: 720 * time.Hour},
		{name: "above the default max", args: []string{"--ttl", "721h"}, wantErr: "SWITCHBOARD_JWT_MAX_TTL"},
		{name: "above a configured max", maxTTL: "2h", args: []string{"--ttl", "3h"}, wantErr: "--ttl 3h0m0s exceeds SWITCHBOARD_JWT_MAX_TTL (2h0m0s)"},
		// The default (24h) shrinks to a shorter max instead of failing.
		{name: "default ttl under a short max", maxTTL: "2h", wantTTL: 2 * time.Hour},
		{name: "zero (used to mean no expiry)", args: []string{"--ttl", "0"}, wantErr: "--ttl must be positive"},
		{name: "negative", args: []string{"--ttl", "-1h"}, wantErr: "--ttl must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_JWT_SECRET", secret)
			t.Setenv("SWITCHBOARD_JWT_MAX_TTL", tt.maxTTL)
			var out, errOut bytes.Buffer
			err := run(append([]string{"token", "--sub", "42"}, tt.args...), &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if out.Len() != 0 {
					t.Fatalf("printed %q despite the error", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Verified as a server with the same max would.
			maxTTL := domain.DefaultMaxTTL
			if tt.maxTTL != "" {
				maxTTL, _ = time.ParseDuration(tt.maxTTL)
			}
			s, err := domain.NewSigner(secret, domain.WithMaxTTL(maxTTL))
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.Verify(strings.TrimSpace(out.String()))
			if err != nil {
				t.Fatalf("the server would refuse the printed token: %v", err)
			}
			if left := time.Until(c.ExpiresAt.Time); left > tt.wantTTL || left < tt.wantTTL-5*time.Second {
				t.Fatalf("token expires in %s, want %s", left, tt.wantTTL)
			}
		})
	}
}
