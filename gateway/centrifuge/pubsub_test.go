package centrifuge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/centrifuge"
)

// roomToken is a PubSub room token (pubsub.MintRoomToken's claims).
func (e *env) roomToken(sub, org, event, session string) string {
	return e.token(jwt.MapClaims{"sub": sub, "name": "N" + sub, "exp": time.Now().Add(time.Hour).Unix(),
		"pubsub": map[string]string{"organization_id": org, "event_id": event, "session_id": session}})
}

// TestPubSubRooms: room tokens read their three scope channels only, and
// participants publish into their own session room, within the limits.
func TestPubSubRooms(t *testing.T) {
	db := dbtest.SQLite(t, domain.CoreMigrations())
	e := start(t, db, func(c *centrifuge.Config, _ *gateway.Node) {
		c.RoomPublishRate = 3
		c.RoomMaxPayload = 200
	})
	join := func(sub, org, event, session string) (*client, string) {
		c := e.dial()
		r := c.connect(e.roomToken(sub, org, event, session))
		client, _ := r["connect"].(map[string]any)["client"].(string)
		for _, ch := range []string{"pubsub." + org, "pubsub." + org + "." + event, "pubsub." + org + "." + event + "." + session} {
			if r := c.reply(c.send(map[string]any{"subscribe": map[string]any{"channel": ch}})); r["subscribe"] == nil {
				t.Fatalf("%s subscribe %s: %v", sub, ch, r)
			}
		}
		return c, client
	}
	p1, p1id := join("p1", "acme", "ev1", "s1")
	p2, _ := join("p2", "acme", "ev1", "s1")
	p3, _ := join("p3", "acme", "ev1", "s2")

	t.Run("room tokens open their own scopes only", func(t *testing.T) {
		for _, ch := range []string{"pubsub.acme.ev1.s2", "pubsub.acme.ev2", "pubsub.globex", "pubsub.globex.ev1.s1",
			"voice:calls", "dashboard.project.demo.attendees", "notification-channel-p1"} {
			if r := p1.reply(p1.send(map[string]any{"subscribe": map[string]any{"channel": ch}})); errCode(r) != 103 {
				t.Errorf("subscribe %s: %v, want 103", ch, r)
			}
		}
	})

	pub := func(c *client, ch string, data any) map[string]any {
		return c.reply(c.send(map[string]any{"publish": map[string]any{"channel": ch, "data": data}}))
	}
	t.Run("a publish reaches the room, with the publisher", func(t *testing.T) {
		if r := pub(p1, "pubsub.acme.ev1.s1", map[string]any{"type": "say-hello", "data": map[string]any{"n": 1}}); r["publish"] == nil {
			t.Fatalf("publish: %v", r)
		}
		push := p2.readPush()
		p := push["pub"].(map[string]any)
		if push["channel"] != "pubsub.acme.ev1.s1" || p["data"].(map[string]any)["type"] != "say-hello" ||
			p["info"].(map[string]any)["client"] != p1id || p["info"].(map[string]any)["user"] != "p1" {
			t.Fatalf("push %v", push)
		}
	})

	t.Run("refused publishes", func(t *testing.T) {
		for _, tc := range []struct {
			name, ch string
			data     any
			code     float64
		}{
			{"event scope", "pubsub.acme.ev1", map[string]any{"type": "x", "data": 1}, 103},
			{"organization scope", "pubsub.acme", map[string]any{"type": "x", "data": 1}, 103},
			{"another room", "pubsub.acme.ev1.s2", map[string]any{"type": "x", "data": 1}, 103},
			{"no type", "pubsub.acme.ev1.s1", map[string]any{"data": 1}, 107},
			{"not an object", "pubsub.acme.ev1.s1", []int{1}, 107},
			{"too large", "pubsub.acme.ev1.s1", map[string]any{"type": "x", "data": strings.Repeat("a", 300)}, 106},
		} {
			if r := pub(p1, tc.ch, tc.data); errCode(r) != tc.code {
				t.Errorf("%s: %v, want %v", tc.name, r, tc.code)
			}
		}
	})

	t.Run("rate limit per participant", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // a fresh window
		ok, limited := 0, 0
		for i := 0; i < 5; i++ {
			switch r := pub(p2, "pubsub.acme.ev1.s1", map[string]any{"type": "tick", "data": i}); {
			case r["publish"] != nil:
				ok++
			case errCode(r) == 111:
				limited++
			default:
				t.Fatalf("publish %d: %v", i, r)
			}
		}
		if ok != 3 || limited != 2 {
			t.Fatalf("%d accepted, %d limited; want 3 and 2", ok, limited)
		}
		// Exactly the accepted ones reach the others, in order.
		for i := 0; i < 3; i++ {
			push := p1.readPush()
			if d := push["pub"].(map[string]any)["data"].(map[string]any); d["data"] != float64(i) {
				t.Fatalf("push %d: %v", i, push)
			}
		}
	})

	// p3 (session s2) saw none of s1's publications: its first push is
	// one published on its own channel now.
	if r := pub(p3, "pubsub.acme.ev1.s2", map[string]any{"type": "own", "data": 0}); r["publish"] == nil {
		t.Fatalf("p3 publish: %v", r)
	}
	_ = p3.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if push := p3.readPush(); push["channel"] != "pubsub.acme.ev1.s2" {
		t.Fatalf("p3 got %v", push)
	}
}
