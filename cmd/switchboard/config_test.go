package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestCoalesceConfig(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"default", "", 100 * time.Millisecond, false},
		{"set", "40ms", 40 * time.Millisecond, false},
		{"off", "0", 0, false},
		{"negative", "-5ms", 0, true},
		{"not a duration", "soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_FANOUT_COALESCE", tt.value)
			c, err := loadConfig("serve", nil, io.Discard)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_FANOUT_COALESCE") {
					t.Fatalf("err = %v, want it to name SWITCHBOARD_FANOUT_COALESCE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Coalesce != tt.want {
				t.Fatalf("Coalesce = %v, want %v", c.Coalesce, tt.want)
			}
		})
	}
}
