package centrifuge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/centrifuge"
)

func TestLoadChannels(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	yml := write("c.yaml", `
namespaces:
  - name: voice
    history_size: 50
    history_ttl: 5m
    allow: ["*"]
  - name: presence
    presence: true
    join_leave: true
canonical:
  history_size: 10
  history_ttl: 30
`)
	js := write("c.json", `{"namespaces":[{"name":"voice","history_size":50,"history_ttl":"5m","allow":["*"]},
		{"name":"presence","presence":true,"join_leave":true}],"canonical":{"history_size":10,"history_ttl":30}}`)
	for _, p := range []string{yml, js} {
		c, err := centrifuge.LoadChannels(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(c.Namespaces) != 2 || c.Namespaces[0].Name != "voice" || c.Namespaces[0].History() != (gateway.HistoryOptions{Size: 50, TTL: 5 * time.Minute}) ||
			!c.Namespaces[1].JoinLeave || c.Canonical.History().TTL != 30*time.Second {
			t.Fatalf("%s: %+v", p, c)
		}
	}
	for name, tc := range map[string]struct{ file, body, want string }{
		"unknown key (typo)":      {"a.json", `{"namespaces":[{"name":"voice","presense":true}]}`, "presense"},
		"unknown yaml key":        {"a.yml", "namespaces:\n  - name: voice\n    histroy_size: 1\n", "histroy_size"},
		"bad name":                {"b.json", `{"namespaces":[{"name":"v"}]}`, "name must match"},
		"duplicate":               {"c.json", `{"namespaces":[{"name":"vo"},{"name":"vo"}]}`, "duplicate"},
		"history half-set":        {"d.json", `{"namespaces":[{"name":"vo","history_size":5}]}`, "both"},
		"join_leave w/o presence": {"e.json", `{"namespaces":[{"name":"vo","join_leave":true}]}`, "join_leave needs presence"},
		"bad duration":            {"f.json", `{"namespaces":[{"name":"vo","history_size":5,"history_ttl":"soon"}]}`, "duration"},
		"not JSON":                {"g.json", `{`, "unexpected EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := centrifuge.LoadChannels(write(tc.file, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := centrifuge.LoadChannels(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
	if err := centrifuge.DefaultChannels().Validate(); err != nil {
		t.Fatalf("default channels: %v", err)
	}
}

func TestSubscribePermissions(t *testing.T) {
	db := dbtest.SQLite(t, domain.CoreMigrations())
	e := start(t, db, func(c *centrifuge.Config, _ *gateway.Node) {
		c.Channels = centrifuge.DefaultChannels()
		c.Channels.Namespaces = append(c.Channels.Namespaces,
			centrifuge.Namespace{Name: "team", ChannelOptions: centrifuge.ChannelOptions{Allow: []string{"7"}}},
			centrifuge.Namespace{Name: "closed"})
	})
	tok := func(sub string, extra jwt.MapClaims) string {
		c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return e.token(c)
	}
	for _, tc := range []struct {
		name, token, channel string
		code                 float64 // 0 = allowed
	}{
		{"own user channel", tok("42", nil), "user:42", 0},
		{"another user's channel", tok("42", nil), "user:43", 103},
		{"namespace open to all", tok("42", nil), "voice:queue:q1", 0},
		{"allow-list member", tok("7", nil), "team:red", 0},
		{"not on the allow-list", tok("8", nil), "team:red", 103},
		{"channels claim, exact", tok("8", jwt.MapClaims{"channels": []string{"team:red"}}), "team:red", 0},
		{"channels claim, namespace pattern", tok("8", jwt.MapClaims{"channels": []string{"closed:*"}}), "closed:x", 0},
		{"closed namespace", tok("8", nil), "closed:x", 103},
		{"unknown namespace", tok("8", nil), "nope:x", 102},
		{"no namespace, not canonical", tok("8", nil), "news", 102},
		{"bad channel name", tok("8", nil), "voice:with space", 107},
		{"canonical member channel, owner", tok("42", nil), "notification-channel-42", 0},
		{"canonical member channel, other", tok("43", nil), "notification-channel-42", 103},
		{"project channel with projects claim", tok("43", jwt.MapClaims{"projects": []string{"demo"}}), "dashboard.project.demo.attendees", 0},
		{"project channel, other project", tok("43", jwt.MapClaims{"projects": []string{"expo"}}), "dashboard.project.demo.attendees", 103},
		{"project channel, admin", tok("1", jwt.MapClaims{"admin": true}), "dashboard.project.demo.attendees", 0},
		{"room without membership wiring", tok("1", jwt.MapClaims{"admin": true}), "chat-room-7-channel", 103},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			c.connect(tc.token)
			c.send(map[string]any{"subscribe": map[string]any{"channel": tc.channel}})
			r := c.read()
			if got := errCode(r); got != tc.code {
				t.Fatalf("subscribe %s: %v, want code %v", tc.channel, r, tc.code)
			}
		})
	}
}

// New validates its config and reports every problem at once.
func TestNewValidates(t *testing.T) {
	_, err := centrifuge.New(gateway.NewNode(nil, nil), centrifuge.Config{
		PingInterval: time.Second, PongTimeout: 2 * time.Second, MaxSubscriptions: -1,
		Channels: centrifuge.Channels{Namespaces: []centrifuge.Namespace{{Name: "x"}}},
	})
	for _, want := range []string{"signer is required", "database (outbox) is required", "pong timeout", "limits", "name must match"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}
