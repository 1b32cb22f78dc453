package pusher_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway/pusher"
)

func outboxRows(t *testing.T, db *domain.DB) int {
	t.Helper()
	var n int
	table := `"watermill_events"`
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count outbox: %v", err)
	}
	return n
}

func TestHTTPAPI(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		f := newFull(t, fullOpts{db: db})
		const secret = "app-secret"
		// 100 subscribers on 100 channels; one event to all of them.
		c, sid := f.dial(t)
		other, _ := f.dial(t)
		chans := make([]string, 100)
		for i := range chans {
			chans[i] = "ch-" + strconv.Itoa(i)
			c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": chans[i]}})
			c.read()
		}
		other.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "ch-0"}})
		other.read()
		before := outboxRows(t, db)
		st, body := f.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "tick", "channels": chans, "data": `{"n":1}`}, secret)
		if st != 200 || len(body) != 0 {
			t.Fatalf("trigger 100: %d %v", st, body)
		}
		seen := map[string]bool{}
		for len(seen) < 100 {
			got := c.readUntil("tick")
			if string(got.Data) != `"{\"n\":1}"` {
				t.Fatalf("data %s", got.Data)
			}
			seen[got.Channel] = true
		}
		other.readUntil("tick")

		// socket_id exclusion: the excluded socket gets nothing, the other does.
		if st, _ := f.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "ex", "channel": "ch-0", "data": "x", "socket_id": sid}, secret); st != 200 {
			t.Fatalf("exclusion trigger %d", st)
		}
		if got := other.readUntil("ex"); string(got.Data) != `"x"` {
			t.Fatalf("%s", got.Data)
		}
		c.quiet()

		// info: counts after the publish.
		st, body = f.api(t, "POST", "/apps/app-id/events", nil, map[string]any{"name": "i", "channels": []string{"ch-0"}, "data": "{}", "info": "subscription_count"}, secret)
		if st != 200 || body["channels"].(map[string]any)["ch-0"].(map[string]any)["subscription_count"].(float64) != 2 {
			t.Fatalf("info %d %v", st, body)
		}
		c.readUntil("i")
		other.readUntil("i")
		afterGood := outboxRows(t, db)
		if afterGood-before != 3 {
			t.Fatalf("outbox rows %d → %d, want one row per accepted call", before, afterGood)
		}

		// Refusals: documented 4xx JSON error and nothing written.
		tooMany := append(append([]string{}, chans...), "ch-100")
		big := strings.Repeat("x", 10*1024+1)
		batch11 := make([]map[string]any, 11)
		for i := range batch11 {
			batch11[i] = map[string]any{"name": "b", "channel": "ch-0", "data": "{}"}
		}
		for _, tc := range []struct {
			name, method, path, secret string
			body                       any
			status                     int
		}{
			{"wrong secret", "POST", "/apps/app-id/events", "nope", map[string]any{"name": "e", "channel": "ch-0", "data": "{}"}, 401},
			{"101 channels", "POST", "/apps/app-id/events", secret, map[string]any{"name": "e", "channels": tooMany, "data": "{}"}, 400},
			{"data over 10 KB", "POST", "/apps/app-id/events", secret, map[string]any{"name": "e", "channel": "ch-0", "data": big}, 413},
			{"no name", "POST", "/apps/app-id/events", secret, map[string]any{"channel": "ch-0", "data": "{}"}, 400},
			{"bad channel", "POST", "/apps/app-id/events", secret, map[string]any{"name": "e", "channel": "a b", "data": "{}"}, 400},
			{"bad socket id", "POST", "/apps/app-id/events", secret, map[string]any{"name": "e", "channel": "ch-0", "data": "{}", "socket_id": "x"}, 400},
			{"encrypted with others", "POST", "/apps/app-id/events", secret, map[string]any{"name": "e", "channels": []string{"private-encrypted-a", "b"}, "data": "{}"}, 400},
			{"11 in a batch", "POST", "/apps/app-id/batch_events", secret, map[string]any{"batch": batch11}, 400},
			{"one bad in a batch", "POST", "/apps/app-id/batch_events", secret, map[string]any{"batch": []map[string]any{
				{"name": "b", "channel": "ch-0", "data": "{}"}, {"name": "b", "channel": "ch-0", "data": big}}}, 413},
			{"unknown app", "POST", "/apps/nope/events", secret, map[string]any{"name": "e", "channel": "ch-0", "data": "{}"}, 404},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, body := f.api(t, tc.method, tc.path, nil, tc.body, tc.secret)
				e, _ := body["error"].(map[string]any)
				if st != tc.status || e["code"] == nil || e["message"] == nil {
					t.Fatalf("%d %v, want %d with an error body", st, body, tc.status)
				}
			})
		}
		// A stale timestamp is refused even with a correct signature.
		q := url.Values{}
		st, body = f.apiAt(t, "GET", "/apps/app-id/channels", q, time.Now().Add(-11*time.Minute), secret)
		if st != 401 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "Timestamp expired") {
			t.Fatalf("stale: %d %v", st, body)
		}
		if n := outboxRows(t, db); n != afterGood {
			t.Fatalf("refused calls wrote %d outbox rows", n-afterGood)
		}
		c.quiet()
		other.quiet()

		// batch_events.
		st, body = f.api(t, "POST", "/apps/app-id/batch_events", nil, map[string]any{"batch": []map[string]any{
			{"name": "b1", "channel": "ch-0", "data": "1"}, {"name": "b2", "channel": "ch-1", "data": "2", "info": "subscription_count"}}}, secret)
		if st != 200 || len(body["batch"].([]any)) != 2 || body["batch"].([]any)[1].(map[string]any)["subscription_count"].(float64) != 1 {
			t.Fatalf("batch %d %v", st, body)
		}
		c.readUntil("b1")
		c.readUntil("b2")
	})
}

func TestHTTPAPIChannelsAndUsers(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		f := newFull(t, fullOpts{db: db})
		const secret = "app-secret"
		tok1, tok2 := f.token(t, "1", "A"), f.token(t, "2", "B")
		for _, tok := range []string{tok1, tok1, tok2} {
			c, sid := f.dial(t)
			f.subscribeAuthed(t, c, sid, tok, "presence-chat.lobby")
		}
		c, _ := f.dial(t)
		c.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
		c.read()

		st, body := f.api(t, "GET", "/apps/app-id/channels", nil, nil, secret)
		chans, _ := body["channels"].(map[string]any)
		if st != 200 || len(chans) != 2 || chans["news"] == nil || chans["presence-chat.lobby"] == nil {
			t.Fatalf("channels %d %v", st, body)
		}
		st, body = f.api(t, "GET", "/apps/app-id/channels", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}, nil, secret)
		chans, _ = body["channels"].(map[string]any)
		if st != 200 || len(chans) != 1 || chans["presence-chat.lobby"].(map[string]any)["user_count"].(float64) != 2 {
			t.Fatalf("presence channels %d %v", st, body)
		}
		if st, _ := f.api(t, "GET", "/apps/app-id/channels", url.Values{"info": {"user_count"}}, nil, secret); st != 400 {
			t.Fatalf("user_count without presence prefix: %d", st)
		}
		st, body = f.api(t, "GET", "/apps/app-id/channels/presence-chat.lobby", url.Values{"info": {"user_count"}}, nil, secret)
		if st != 200 || body["occupied"] != true || body["user_count"].(float64) != 2 {
			t.Fatalf("channel %d %v", st, body)
		}
		st, body = f.api(t, "GET", "/apps/app-id/channels/empty", nil, nil, secret)
		if st != 200 || body["occupied"] != false {
			t.Fatalf("empty channel %d %v", st, body)
		}
		if st, _ := f.api(t, "GET", "/apps/app-id/channels/news", url.Values{"info": {"user_count"}}, nil, secret); st != 400 {
			t.Fatalf("user_count on a public channel: %d", st)
		}
		st, body = f.api(t, "GET", "/apps/app-id/channels/presence-chat.lobby/users", nil, nil, secret)
		users, _ := body["users"].([]any)
		if st != 200 || len(users) != 2 || users[0].(map[string]any)["id"] != "1" || users[1].(map[string]any)["id"] != "2" {
			t.Fatalf("users %d %v", st, body)
		}
		if st, _ := f.api(t, "GET", "/apps/app-id/channels/news/users", nil, nil, secret); st != 400 {
			t.Fatalf("users of a public channel: %d", st)
		}
	})
}

// Apps are isolated: another app's secret does not sign for this one, and
// another app's channel named like a Switchboard channel never reaches the
// default app's (canonical) subscribers.
func TestAppsAreIsolated(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		f := newFull(t, fullOpts{db: db, apps: []pusher.App{
			{ID: "app-id", Key: "app-key", Secret: "app-secret"},
			{ID: "tenant", Key: "tenant-key", Secret: "tenant-secret"},
		}})
		const dash = "private-dashboard.project.demo.attendees"
		mine, sid := f.dial(t)
		f.subscribeAuthed(t, mine, sid, f.token(t, "7", "Ann", "demo"), dash)
		tenant := (&fixture{srv: f.srv}).dial(t, "tenant-key")
		tsid := tenant.established()
		tenantApp := &pusher.App{Key: "tenant-key", Secret: "tenant-secret"}
		tenant.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": dash, "auth": tenantApp.ChannelAuth(tsid, dash, "")}})
		if got := tenant.read(); got.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("tenant subscribe: %+v", got)
		}
		tf := &full{srv: f.srv, app: &pusher.App{ID: "tenant", Key: "tenant-key"}}
		if st, body := tf.api(t, "POST", "/apps/tenant/events", nil, map[string]any{"name": "Injected", "channel": dash, "data": "{}"}, "tenant-secret"); st != 200 {
			t.Fatalf("tenant trigger: %d %v", st, body)
		}
		if got := tenant.readUntil("Injected"); got.Channel != dash {
			t.Fatalf("%+v", got)
		}
		mine.quiet() // the default app's dashboard subscriber saw nothing
		if st, _ := tf.api(t, "POST", "/apps/tenant/events", nil, map[string]any{"name": "x", "channel": "c", "data": "{}"}, "app-secret"); st != 401 {
			t.Fatalf("default app's secret on the tenant: %d", st)
		}
		if st, _ := f.api(t, "POST", "/apps/tenant/events", nil, map[string]any{"name": "x", "channel": "c", "data": "{}"}, "app-secret"); st != 401 {
			t.Fatalf("default app's key on the tenant: %d", st)
		}
	})
}
