package centrifuge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/centrifuge"
)

func apiCall(t *testing.T, e *env, method, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/api/"+method, strings.NewReader(body))
	req.Header.Set("X-API-Key", apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil || res.StatusCode != 200 {
		t.Fatalf("%s: %d %s", method, res.StatusCode, b)
	}
	return out
}

// reply returns the reply to command id, skipping pushes.
func (c *client) reply(id uint32) map[string]any {
	c.t.Helper()
	for {
		if r := c.read(); r["id"] == float64(id) {
			return r
		}
	}
}

// readPush skips replies until a push arrives.
func (c *client) readPush() map[string]any {
	c.t.Helper()
	for {
		if r := c.read(); r["push"] != nil {
			return r["push"].(map[string]any)
		}
	}
}

func TestClientPublishPresenceHistoryAndRevoke(t *testing.T) {
	db := dbtest.SQLite(t, domain.CoreMigrations())
	e := start(t, db, func(c *centrifuge.Config, _ *gateway.Node) {
		c.Channels = centrifuge.DefaultChannels()
		c.Channels.Namespaces = append(c.Channels.Namespaces, centrifuge.Namespace{Name: "chat", ChannelOptions: centrifuge.ChannelOptions{
			Allow: []string{"*"}, AllowPublish: true, Presence: true, HistorySize: 10, HistoryTTL: centrifuge.Duration(time.Minute),
		}})
	})
	a, b := e.dial(), e.dial()
	a.connect(e.userToken("1", time.Hour))
	b.connect(e.userToken("2", time.Hour))
	for _, c := range []*client{a, b} {
		c.send(map[string]any{"subscribe": map[string]any{"channel": "chat:lobby"}})
		if r := c.read(); r["subscribe"] == nil {
			t.Fatalf("subscribe: %v", r)
		}
	}

	t.Run("client publish goes through the outbox and carries the publisher", func(t *testing.T) {
		id := a.send(map[string]any{"publish": map[string]any{"channel": "chat:lobby", "data": map[string]any{"text": "hi"}}})
		push := b.readPush()
		pub := push["pub"].(map[string]any)
		info := pub["info"].(map[string]any)
		if push["channel"] != "chat:lobby" || pub["data"].(map[string]any)["text"] != "hi" || info["user"] != "1" ||
			info["conn_info"].(map[string]any)["name"] != "U1" || pub["offset"] != 1.0 {
			t.Fatalf("push %v", push)
		}
		if r := a.reply(id); r["publish"] == nil {
			t.Fatalf("publish reply %v", r)
		}
		// voice has no allow_publish.
		id = a.send(map[string]any{"publish": map[string]any{"channel": "voice:calls", "data": map[string]any{}}})
		if r := a.reply(id); errCode(r) != 103 {
			t.Fatalf("publish without permission: %v", r)
		}
	})

	t.Run("server API presence, presence_stats and history", func(t *testing.T) {
		p := apiCall(t, e, "presence", `{"channel":"chat:lobby"}`)["result"].(map[string]any)["presence"].(map[string]any)
		if len(p) != 2 {
			t.Fatalf("presence %v", p)
		}
		st := apiCall(t, e, "presence_stats", `{"channel":"chat:lobby"}`)["result"].(map[string]any)
		if st["num_clients"] != 2.0 || st["num_users"] != 2.0 {
			t.Fatalf("stats %v", st)
		}
		h := apiCall(t, e, "history", `{"channel":"chat:lobby","limit":-1}`)["result"].(map[string]any)
		pubs := h["publications"].([]any)
		if len(pubs) != 1 || h["offset"] != 1.0 || h["epoch"] == "" {
			t.Fatalf("history %v", h)
		}
		if r := apiCall(t, e, "history", `{"channel":"presence:online"}`); r["error"].(map[string]any)["code"] != 108.0 {
			t.Fatalf("history without history: %v", r)
		}
		// The client history command reads the same stream.
		id := a.send(map[string]any{"history": map[string]any{"channel": "chat:lobby", "limit": 5, "reverse": true}})
		if r := a.reply(id); len(r["history"].(map[string]any)["publications"].([]any)) != 1 {
			t.Fatalf("client history %v", r)
		}
	})

	t.Run("revocation unsubscribes with 2000 and leaves presence", func(t *testing.T) {
		e.node.Revoke("2", "centrifugo:chat:lobby")
		push := b.readPush()
		if push["channel"] != "chat:lobby" || push["unsubscribe"].(map[string]any)["code"] != 2000.0 {
			t.Fatalf("push %v", push)
		}
		if clients, _ := e.node.Presence.Count("centrifugo:chat:lobby"); clients != 1 {
			t.Fatalf("presence after revoke: %d clients", clients)
		}
	})
}
