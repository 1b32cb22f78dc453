package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestServeActionCable proves the wiring: /cable speaks actioncable-v1-json,
// a domain event reaches a DashboardChannel subscriber, a class from
// SWITCHBOARD_CABLE_CHANNELS works, and shutdown says "reconnect".
func TestServeActionCable(t *testing.T) {
	classes := filepath.Join(t.TempDir(), "cable.json")
	if err := os.WriteFile(classes, []byte(`{"channels":[{"channel":"AttendeesChannel","stream":"dashboard.project.{project}.attendees"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_CABLE_CHANNELS", classes)
	addr, stop := startServe(t, "")
	base := "http://" + addr
	if st, b := post(t, base+"/api/v1/projects", mint(t, "1", nil, true), `{"slug":"demo","name":"Demo"}`); st != 201 {
		t.Fatalf("project: %d %s", st, b)
	}
	jane := mint(t, "42", []string{"demo"}, false)

	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-json", "actioncable-unsupported"}}
	ws, res, err := d.Dial("ws://"+addr+"/cable?token="+jane, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if p := res.Header.Get("Sec-WebSocket-Protocol"); p != "actioncable-v1-json" {
		t.Fatalf("subprotocol %q", p)
	}
	read := func() map[string]any {
		t.Helper()
		for {
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("read: %v", err)
			}
			if m["type"] != "ping" {
				return m
			}
		}
	}
	if m := read(); m["type"] != "welcome" {
		t.Fatalf("first message %v", m)
	}
	ids := []string{`{"channel":"DashboardChannel","project":"demo","family":"attendees"}`, `{"channel":"AttendeesChannel","project":"demo"}`}
	for _, id := range ids {
		_ = ws.WriteJSON(map[string]string{"command": "subscribe", "identifier": id})
		if m := read(); m["type"] != "confirm_subscription" || m["identifier"] != id {
			t.Fatalf("subscribe %s: %v", id, m)
		}
	}
	st, b := post(t, base+"/api/v1/projects/demo/attendees", jane,
		`{"first_name":"Jane","last_name":"Smith","email":"jane@example.com","attendee_type_id":1}`)
	if st != 201 {
		t.Fatalf("create attendee: %d %s", st, b)
	}
	got := map[string]bool{}
	for range ids {
		m := read()
		msg, _ := m["message"].(map[string]any)
		data, _ := msg["data"].(map[string]any)
		if msg["event"] != "AttendeeCreated" || data["email"] != "jane@example.com" {
			t.Fatalf("broadcast %v", m)
		}
		got[m["identifier"].(string)] = true
	}
	if len(got) != 2 {
		t.Fatalf("identifiers reached: %v", got)
	}

	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	m := read()
	if raw, _ := json.Marshal(m); string(raw) != `{"reason":"server_restart","reconnect":true,"type":"disconnect"}` {
		t.Fatalf("after shutdown: %s", raw)
	}
}

func TestServeRejectsBadCableChannels(t *testing.T) {
	classes := filepath.Join(t.TempDir(), "cable.json")
	if err := os.WriteFile(classes, []byte(`{"channels":[{"channel":"X","stream":"not-ours"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_ADDR", freeAddr(t))
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("SWITCHBOARD_CABLE_CHANNELS", classes)
	t.Setenv("SWITCHBOARD_JWT_SECRET", testJWTSecret)
	err := serve(t.Context(), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not a canonical") {
		t.Fatalf("serve with a bad channel file: %v", err)
	}
}

func TestCableConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		origins []string
		maxSubs int
		wantErr string
	}{
		{"defaults", nil, nil, 100, ""},
		{"origins trimmed", map[string]string{"SWITCHBOARD_CABLE_ALLOWED_ORIGINS": " https://a.example, ,https://b.example "}, []string{"https://a.example", "https://b.example"}, 100, ""},
		{"max subscriptions", map[string]string{"SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS": "20"}, nil, 20, ""},
		{"bad max subscriptions", map[string]string{"SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS": "lots"}, nil, 0, "SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS"},
		{"zero max subscriptions", map[string]string{"SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS": "0"}, nil, 0, "SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"SWITCHBOARD_CABLE_ALLOWED_ORIGINS", "SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS", "SWITCHBOARD_CABLE_CHANNELS"} {
				t.Setenv(k, tt.env[k])
			}
			c, err := loadConfig("serve", nil, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to name %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.CableAllowedOrigins, ",") != strings.Join(tt.origins, ",") || c.CableMaxSubscriptions != tt.maxSubs {
				t.Fatalf("origins %q max %d", c.CableAllowedOrigins, c.CableMaxSubscriptions)
			}
		})
	}
}
