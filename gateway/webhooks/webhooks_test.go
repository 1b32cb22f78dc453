package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway/webhooks"
)

// receiver is a webhook endpoint that fails its first failures requests.
type receiver struct {
	mu       sync.Mutex
	failures int
	got      []webhooks.Event
	ids      []string
	bodies   [][]byte
	headers  []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var b struct {
		TimeMS int64            `json:"time_ms"`
		Events []webhooks.Event `json:"events"`
	}
	_ = json.Unmarshal(body, &b)
	r.got = append(r.got, b.Events...)
	r.ids = append(r.ids, req.Header.Get(webhooks.IDHeader))
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
}

func (r *receiver) events() []webhooks.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhooks.Event(nil), r.got...)
}

func start(t *testing.T, db *domain.DB, url string) (*webhooks.Queue, *webhooks.Emitter, context.CancelFunc) {
	t.Helper()
	q := webhooks.NewQueue(db)
	s := webhooks.NewSender(q, webhooks.SenderConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Poll: 20 * time.Millisecond})
	app := webhooks.App{ID: "1", Key: "app-key", Secret: "app-secret", Hooks: []webhooks.Hook{{URL: url,
		EventTypes: []string{webhooks.ChannelOccupied, webhooks.ChannelVacated}, Headers: map[string]string{"X-Custom": "yes"},
		Filter: webhooks.Filter{ChannelNameStartsWith: "private-"}}}}
	em := webhooks.NewEmitter(q, s, func(id string) (webhooks.App, bool) { return app, id == "1" }, webhooks.EmitterConfig{MaxWait: 30 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	t.Cleanup(cancel)
	return q, em, cancel
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A receiver that fails three times then succeeds gets every event exactly
// once, in order, in Pusher's wire format and signed; the filter drops the
// channels it does not match.
func TestDeliveryRetriesInOrderExactlyOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		rcv := &receiver{failures: 3}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		_, em, _ := start(t, db, srv.URL)
		var want []string
		for i := 0; i < 120; i++ {
			ch := "private-c" + string(rune('a'+i%26))
			name := webhooks.ChannelOccupied
			if i%2 == 1 {
				name = webhooks.ChannelVacated
			}
			em.Emit("1", webhooks.Event{Name: name, Channel: ch})
			em.Emit("1", webhooks.Event{Name: name, Channel: "public-" + ch}) // filtered out
			want = append(want, name+" "+ch)
			if i%40 == 39 {
				time.Sleep(50 * time.Millisecond) // several batches
			}
		}
		eventually(t, "every event delivered", func() bool { return len(rcv.events()) >= len(want) })
		time.Sleep(200 * time.Millisecond)
		got := rcv.events()
		if len(got) != len(want) {
			t.Fatalf("received %d events, want %d exactly once", len(got), len(want))
		}
		for i := range want {
			if got[i].Name+" "+got[i].Channel != want[i] {
				t.Fatalf("event %d = %s %s, want %s (order)", i, got[i].Name, got[i].Channel, want[i])
			}
		}
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for i, h := range rcv.headers {
			if h.Get("Content-Type") != "application/json" || h.Get("X-Pusher-Key") != "app-key" || h.Get("X-Custom") != "yes" {
				t.Fatalf("request %d headers %v", i, h)
			}
			if h.Get("X-Pusher-Signature") != webhooks.Sign("app-secret", rcv.bodies[i]) {
				t.Fatalf("request %d: signature does not match its body", i)
			}
		}
		seen := map[string]bool{}
		for _, id := range rcv.ids {
			if seen[id] || id == "" {
				t.Fatalf("delivery id %q twice or empty", id)
			}
			seen[id] = true
		}
	}, webhooks.Migrations())
}

// Deliveries queued when the sender stops go out when a new one starts
// (a restart); one that keeps failing past its window is a dead letter,
// listed as failed, and can be retried.
func TestQueuedSurvivesAndDeadLetters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		rcv := &receiver{}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		q := webhooks.NewQueue(db)
		ctx := context.Background()
		now := time.Now()
		for i := 0; i < 200; i++ {
			ev := []webhooks.Event{{Name: webhooks.ChannelOccupied, Channel: "private-x"}}
			body := webhooks.Body(now, ev)
			if _, err := q.Add(ctx, "1", srv.URL, map[string]string{"Content-Type": "application/json"}, body, ev, now); err != nil {
				t.Fatal(err)
			}
		}
		// Nothing was sending: a new process's sender finds all of them.
		s := webhooks.NewSender(q, webhooks.SenderConfig{Poll: 20 * time.Millisecond})
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go s.Run(sctx)
		eventually(t, "200 queued deliveries sent after the restart", func() bool { return len(rcv.events()) == 200 })
		cancel() // that process stops; the next one has a short retry window
		sctx, cancel2 := context.WithCancel(ctx)
		defer cancel2()

		dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
		defer dead.Close()
		q2 := webhooks.NewQueue(db)
		ev := []webhooks.Event{{Name: webhooks.ChannelVacated, Channel: "private-y"}}
		id, err := q2.Add(ctx, "1", dead.URL, nil, webhooks.Body(now, ev), ev, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s2 := webhooks.NewSender(q2, webhooks.SenderConfig{MaxAge: 150 * time.Millisecond, MinBackoff: 20 * time.Millisecond, Poll: 20 * time.Millisecond})
		go s2.Run(sctx)
		eventually(t, "the failing delivery becomes a dead letter", func() bool {
			d, err := q2.Get(ctx, id)
			return err == nil && d.Status == webhooks.StatusFailed
		})
		d, _ := q2.Get(ctx, id)
		if d.Attempts < 2 || len(d.History) != d.Attempts || d.History[0].StatusCode != 500 {
			t.Fatalf("dead letter %+v", d)
		}
		failed, err := q2.List(ctx, webhooks.StatusFailed, domain.Page{Limit: 10})
		if err != nil || len(failed.Data) != 1 || failed.Data[0].ID != id {
			t.Fatalf("failed list %+v %v", failed, err)
		}
		if d, err := q2.Retry(ctx, id, time.Now()); err != nil || d.Status != webhooks.StatusPending {
			t.Fatalf("retry: %+v %v", d, err)
		}
		if _, err := q2.Retry(ctx, 1, time.Now()); err == nil {
			t.Fatal("retrying a sent delivery must be refused")
		}
	}, webhooks.Migrations())
}

// The three trims remove only what is older than their cutoff, each on its
// own.
func TestTrim(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		q := webhooks.NewQueue(db)
		ctx := context.Background()
		old := time.Now().Add(-2 * time.Hour)
		ev := []webhooks.Event{{Name: webhooks.ChannelOccupied, Channel: "c"}}
		for _, st := range []string{webhooks.StatusSent, webhooks.StatusFailed, webhooks.StatusPending} {
			id, err := q.Add(ctx, "1", "http://x", nil, webhooks.Body(old, ev), ev, old)
			if err != nil {
				t.Fatal(err)
			}
			if st != webhooks.StatusPending {
				if err := q.Record(ctx, id, webhooks.Attempt{At: old, StatusCode: 200}, st, old); err != nil {
					t.Fatal(err)
				}
			}
		}
		cut := time.Now().Add(-time.Hour)
		n, err := q.Trim(ctx, cut, cut, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if n["events"] != 3 || n["sent"] != 1 || n["failed"] != 0 {
			t.Fatalf("trimmed %v, want 3 events, 1 sent, failed trim off", n)
		}
		all, _ := q.List(ctx, "", domain.Page{Limit: 10})
		if len(all.Data) != 2 {
			t.Fatalf("left %d deliveries, want the failed and the pending one", len(all.Data))
		}
	}, webhooks.Migrations())
}

func TestHookValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    webhooks.Hook
		ok   bool
	}{
		{"good", webhooks.Hook{URL: "https://x.test/hook", EventTypes: []string{"channel_occupied", "client_event"}}, true},
		{"unknown type", webhooks.Hook{URL: "https://x.test/hook", EventTypes: []string{"channel_created"}}, false},
		{"no types", webhooks.Hook{URL: "https://x.test/hook"}, false},
		{"bad url", webhooks.Hook{URL: "ftp://x", EventTypes: []string{"cache_miss"}}, false},
		{"reserved header", webhooks.Hook{URL: "https://x.test", EventTypes: []string{"cache_miss"}, Headers: map[string]string{"x-pusher-signature": "x"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.h.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
