package centrifuge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/centrifuge"
)

// apiRaw calls a server API method and returns the HTTP status and body.
func apiRaw(t *testing.T, e *env, method, body string) (int, map[string]any) {
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
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func result(t *testing.T, r map[string]any) map[string]any {
	t.Helper()
	res, ok := r["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result: %v", r)
	}
	return res
}

// publish answers the offset and epoch the relay gave the publication,
// the ones subscribers see; a channel without history answers none. An
// idempotency key publishes once within its window and answers the same.
func TestServerAPIPublishOffsetsAndIdempotency(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := start(t, db, nil)
		c := e.dial()
		c.connect(e.userToken("42", time.Hour))
		c.send(map[string]any{"subscribe": map[string]any{"channel": "voice:calls"}})
		epoch := c.read()["subscribe"].(map[string]any)["epoch"]

		first := result(t, apiCall(t, e, "publish", `{"channel":"voice:calls","data":{"n":1}}`))
		if first["offset"] != 1.0 || first["epoch"] != epoch {
			t.Fatalf("first publish %v, want offset 1 in epoch %v", first, epoch)
		}
		second := result(t, apiCall(t, e, "publish", `{"channel":"voice:calls","data":{"n":2}}`))
		if second["offset"] != 2.0 || second["epoch"] != epoch {
			t.Fatalf("second publish %v", second)
		}
		for want := 1.0; want <= 2; want++ {
			if pub := c.readPush()["pub"].(map[string]any); pub["offset"] != want {
				t.Fatalf("subscriber got offset %v, want %v", pub["offset"], want)
			}
		}

		keyed := `{"channel":"voice:calls","data":{"n":3},"idempotency_key":"order-7"}`
		r1 := result(t, apiCall(t, e, "publish", keyed))
		r2 := result(t, apiCall(t, e, "publish", keyed))
		if r1["offset"] != 3.0 || r2["offset"] != 3.0 || r1["epoch"] != r2["epoch"] {
			t.Fatalf("retried publish answered %v then %v, want offset 3 twice", r1, r2)
		}
		// The key is per channel: the same key elsewhere publishes.
		if r := result(t, apiCall(t, e, "publish", `{"channel":"voice:agents","data":{},"idempotency_key":"order-7"}`)); r["offset"] != 1.0 {
			t.Fatalf("same key on another channel: %v", r)
		}
		after := result(t, apiCall(t, e, "publish", `{"channel":"voice:calls","data":{"n":4}}`))
		if after["offset"] != 4.0 {
			t.Fatalf("a publish after the retried one has offset %v, want 4 (the retry published nothing)", after["offset"])
		}
		for want := 3.0; want <= 4; want++ {
			if pub := c.readPush()["pub"].(map[string]any); pub["offset"] != want {
				t.Fatalf("subscriber got offset %v, want %v", pub["offset"], want)
			}
		}
		h := result(t, apiCall(t, e, "history", `{"channel":"voice:calls","limit":-1}`))
		if n := len(h["publications"].([]any)); n != 4 {
			t.Fatalf("history holds %d publications, want 4", n)
		}

		// No history: no offset.
		if r := result(t, apiCall(t, e, "publish", `{"channel":"presence:online","data":{}}`)); len(r) != 0 {
			t.Fatalf("publish without history answered %v, want {}", r)
		}

		// broadcast: per channel results, the key per channel.
		b := `{"channels":["tickets:a","tickets:b","nowhere:x"],"data":{"x":1},"idempotency_key":"b-1"}`
		resp1 := result(t, apiCall(t, e, "broadcast", b))["responses"].([]any)
		resp2 := result(t, apiCall(t, e, "broadcast", b))["responses"].([]any)
		for i, want := range []float64{1, 1} {
			r1 := resp1[i].(map[string]any)["result"].(map[string]any)
			r2 := resp2[i].(map[string]any)["result"].(map[string]any)
			if r1["offset"] != want || r2["offset"] != want || r1["epoch"] != r2["epoch"] {
				t.Fatalf("broadcast %d: %v then %v", i, r1, r2)
			}
		}
		if code := resp1[2].(map[string]any)["error"].(map[string]any)["code"]; code != 102.0 {
			t.Fatalf("unknown namespace in a broadcast: %v", resp1[2])
		}
	}, domain.CoreMigrations())
}

// Two publishes with the same key at the same time publish once.
func TestServerAPIConcurrentIdempotentPublish(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	var wg sync.WaitGroup
	got := make([]map[string]any, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, r := apiRaw(t, e, "publish", `{"channel":"voice:race","data":{},"idempotency_key":"same"}`)
			got[i] = r
		}()
	}
	wg.Wait()
	for _, r := range got {
		res := result(t, r)
		if res["offset"] != 1.0 {
			t.Fatalf("answers %v, want offset 1 for every one", got)
		}
	}
	h := result(t, apiCall(t, e, "history", `{"channel":"voice:race","limit":-1}`))
	if n := len(h["publications"].([]any)); n != 1 {
		t.Fatalf("%d publications, want 1", n)
	}
}

// Server-side subscriptions: a subscribe push, then the channel's
// publications; channels counts them; unsubscribe ends them with 2000.
func TestServerAPISubscribeUnsubscribeChannels(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	c := e.dial()
	c.connect(e.userToken("7", time.Hour))
	other := e.dial()
	other.connect(e.userToken("8", time.Hour))

	apiCall(t, e, "subscribe", `{"user":"7","channel":"tickets:42","data":{"why":"assigned"}}`)
	push := c.readPush()
	sub, _ := push["subscribe"].(map[string]any)
	if push["channel"] != "tickets:42" || sub == nil || sub["recoverable"] != true || sub["epoch"] == "" ||
		sub["data"].(map[string]any)["why"] != "assigned" {
		t.Fatalf("subscribe push %v", push)
	}
	// Again: already subscribed, nothing happens.
	apiCall(t, e, "subscribe", `{"user":"7","channel":"tickets:42"}`)
	if r := result(t, apiCall(t, e, "publish", `{"channel":"tickets:42","data":{"n":1}}`)); r["offset"] != 1.0 {
		t.Fatalf("publish %v", r)
	}
	if pub := c.readPush(); pub["channel"] != "tickets:42" || pub["pub"].(map[string]any)["offset"] != 1.0 {
		t.Fatalf("publication push %v", pub)
	}

	chans := result(t, apiCall(t, e, "channels", `{}`))["channels"].(map[string]any)
	if ci, _ := chans["tickets:42"].(map[string]any); ci == nil || ci["num_clients"] != 1.0 {
		t.Fatalf("channels %v", chans)
	}
	for pattern, n := range map[string]int{"tickets:*": 1, "tickets:4?": 1, "voice:*": 0, "*": 1, `tickets\:42`: 1} {
		got := result(t, apiCall(t, e, "channels", `{"pattern":`+quoteJSON(pattern)+`}`))["channels"].(map[string]any)
		if len(got) != n {
			t.Fatalf("pattern %q: %v, want %d channels", pattern, got, n)
		}
	}

	info := result(t, apiCall(t, e, "info", `{}`))["nodes"].([]any)[0].(map[string]any)
	if info["num_clients"] != 2.0 || info["num_users"] != 2.0 || info["num_subs"] != 1.0 || info["num_channels"] != 1.0 || info["uid"] == "" {
		t.Fatalf("info %v", info)
	}

	apiCall(t, e, "unsubscribe", `{"user":"7","channel":"tickets:42"}`)
	push = c.readPush()
	if push["channel"] != "tickets:42" || push["unsubscribe"].(map[string]any)["code"] != 2000.0 {
		t.Fatalf("unsubscribe push %v", push)
	}
	if chans := result(t, apiCall(t, e, "channels", `{}`))["channels"].(map[string]any); len(chans) != 0 {
		t.Fatalf("channels after unsubscribe %v", chans)
	}
	// A client-side subscription is ended the same way.
	other.send(map[string]any{"subscribe": map[string]any{"channel": "voice:calls"}})
	other.read()
	apiCall(t, e, "unsubscribe", `{"user":"8","channel":"voice:calls"}`)
	if push := other.readPush(); push["unsubscribe"] == nil {
		t.Fatalf("push %v", push)
	}
}

// disconnect closes with 3503 by default or the given code, spares the
// whitelist and other users; refresh expires connections now (3005).
func TestServerAPIDisconnectAndRefresh(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	connected := func(user string) (*client, string) {
		c := e.dial()
		r := c.connect(e.userToken(user, time.Hour))
		return c, r["connect"].(map[string]any)["client"].(string)
	}
	a1, _ := connected("1")
	a2, keep := connected("1")
	b, _ := connected("2")
	apiCall(t, e, "disconnect", `{"user":"1","whitelist":["`+keep+`"]}`)
	if code := a1.closeCode(); code != 3503 {
		t.Fatalf("disconnect: close %d, want 3503", code)
	}
	apiCall(t, e, "disconnect", `{"user":"1","client":"`+keep+`","disconnect":{"code":4500,"reason":"banned"}}`)
	if code := a2.closeCode(); code != 4500 {
		t.Fatalf("custom disconnect: close %d, want 4500", code)
	}
	apiCall(t, e, "refresh", `{"user":"2","expired":true}`)
	if code := b.closeCode(); code != 3005 {
		t.Fatalf("refresh expired: close %d, want 3005", code)
	}
}

// refresh with expire_at moves the expiry: the connection is closed with
// 3005 once it passes (plus the grace), not when its token says.
func TestServerAPIRefreshExpireAt(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), func(c *centrifuge.Config, _ *gateway.Node) {
		c.ExpiredCloseDelay = 100 * time.Millisecond
	})
	c := e.dial()
	c.connect(e.userToken("3", time.Hour))
	at := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	apiCall(t, e, "refresh", `{"user":"3","expire_at":`+jsonInt(at.Unix())+`}`)
	start := time.Now()
	if code := c.closeCode(); code != 3005 {
		t.Fatalf("close %d, want 3005", code)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// Bad requests get Centrifugo's codes and change nothing; none is a 500.
func TestServerAPIRefusals(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	for _, tc := range []struct {
		method, body string
		code         float64
	}{
		{"subscribe", `{"channel":"tickets:1"}`, 107},
		{"subscribe", `{"user":"1","channel":"nowhere:1"}`, 102},
		{"subscribe", `{"user":"1","channel":""}`, 107},
		{"subscribe", `{"user":1,"channel":"tickets:1"}`, 107},
		{"unsubscribe", `{"channel":"tickets:1"}`, 107},
		{"unsubscribe", `{"user":"1","channel":"nowhere:1"}`, 102},
		{"disconnect", `{}`, 107},
		{"disconnect", `{"user":"1","disconnect":{"code":1000,"reason":"x"}}`, 107},
		{"disconnect", `{"user":"1","disconnect":{"reason":"x"}}`, 107},
		{"disconnect", `{"user":"1","disconnect":{"code":4000,"reason":"` + strings.Repeat("r", 200) + `"}}`, 107},
		{"refresh", `{}`, 107},
		{"refresh", `{"user":"1","expire_at":1}`, 107},
		{"publish", `{"channel":"voice:calls","data":{},"idempotency_key":"` + strings.Repeat("k", 300) + `"}`, 107},
		{"publish", `{"channel":"voice:calls","data":null}`, 107},
		{"publish", `{"channel":"voice:calls","data":{},"idempotency_key":5}`, 107},
		{"publish", `{"channel":"notification-channel-42","data":{}}`, 103},
		{"history_remove", `{"channel":"presence:online"}`, 108},
		{"history_remove", `{"channel":"nowhere:x"}`, 102},
		{"channels", `{"pattern":7}`, 107},
		{"broadcast", `{"channels":["voice:a","voice:a"],"data":{}}`, 0}, // per-channel error, below
	} {
		t.Run(tc.method+" "+tc.body, func(t *testing.T) {
			status, r := apiRaw(t, e, tc.method, tc.body)
			if status != 200 {
				t.Fatalf("HTTP %d %v", status, r)
			}
			if tc.code == 0 {
				resp := result(t, r)["responses"].([]any)
				if errCode(resp[1].(map[string]any)) != 107 || resp[0].(map[string]any)["result"] == nil {
					t.Fatalf("duplicate channel in a broadcast: %v", resp)
				}
				return
			}
			if errCode(r) != tc.code {
				t.Fatalf("got %v, want error %v", r, tc.code)
			}
		})
	}
	if status, _ := apiRaw(t, e, "disconnect", `{"user":`); status != 400 {
		t.Fatalf("malformed JSON: HTTP %d, want 400", status)
	}
}

// history_remove drops the publications and keeps the stream position.
func TestServerAPIHistoryRemove(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	for range 3 {
		apiCall(t, e, "publish", `{"channel":"voice:calls","data":{}}`)
	}
	before := result(t, apiCall(t, e, "history", `{"channel":"voice:calls","limit":-1}`))
	if len(before["publications"].([]any)) != 3 {
		t.Fatalf("history %v", before)
	}
	if r := apiCall(t, e, "history_remove", `{"channel":"voice:calls"}`); r["error"] != nil {
		t.Fatalf("history_remove %v", r)
	}
	after := result(t, apiCall(t, e, "history", `{"channel":"voice:calls","limit":-1}`))
	if len(after["publications"].([]any)) != 0 || after["offset"] != before["offset"] || after["epoch"] != before["epoch"] {
		t.Fatalf("after history_remove %v (before %v): want no publications, the same offset and epoch", after, before)
	}
	if r := result(t, apiCall(t, e, "publish", `{"channel":"voice:calls","data":{}}`)); r["offset"] != 4.0 {
		t.Fatalf("the stream went on from %v", r)
	}
}

// batch runs its commands in order and answers one reply per command.
func TestServerAPIBatch(t *testing.T) {
	e := start(t, dbtest.SQLite(t, domain.CoreMigrations()), nil)
	status, r := apiRaw(t, e, "batch", `{"commands":[
		{"publish":{"channel":"voice:calls","data":{"n":1}}},
		{"publish":{"channel":"nowhere:x","data":{}}},
		{"history":{"channel":"voice:calls","limit":-1}},
		{"teleport":{}},
		{"publish":{},"info":{}}
	]}`)
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	replies, _ := r["replies"].([]any)
	if len(replies) != 5 {
		t.Fatalf("replies %v", r)
	}
	get := func(i int) map[string]any { return replies[i].(map[string]any) }
	if get(0)["publish"].(map[string]any)["offset"] != 1.0 {
		t.Fatalf("reply 0 %v", get(0))
	}
	if errCode(get(1)) != 102 || errCode(get(3)) != 104 || errCode(get(4)) != 107 {
		t.Fatalf("error replies %v", replies)
	}
	if pubs := get(2)["history"].(map[string]any)["publications"].([]any); len(pubs) != 1 {
		t.Fatalf("the history command saw %d publications: commands run in order", len(pubs))
	}
	for _, body := range []string{`{"commands":[]}`, `{}`, `{"commands":[` + strings.TrimSuffix(strings.Repeat(`{"info":{}},`, 101), ",") + `]}`} {
		if _, r := apiRaw(t, e, "batch", body); errCode(r) != 107 {
			t.Fatalf("batch %s: %v", body[:min(len(body), 40)], r)
		}
	}
}

func quoteJSON(s string) string { b, _ := json.Marshal(s); return string(b) }

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
