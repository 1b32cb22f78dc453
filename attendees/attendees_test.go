package attendees_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"switchboard/attendees"
	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/outbox"
)

const secret = "test-secret"

// env is one store with the REST API, the relay and a gateway node whose
// hub has a recording subscriber on the demo attendees channel.
type env struct {
	db     *domain.DB
	srv    *httptest.Server
	signer *domain.Signer
	rec    *recorder
}

type recorder struct {
	mu   sync.Mutex
	msgs []*gateway.Message
	got  chan struct{}
}

func (r *recorder) ConnID() string { return "rec" }
func (r *recorder) Deliver(m *gateway.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) wait(t *testing.T, n int) []*gateway.Message {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-timeout:
			t.Fatalf("received %d of %d events", len(r.snapshot()), n)
		}
	}
	return r.snapshot()
}

func (r *recorder) snapshot() []*gateway.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*gateway.Message(nil), r.msgs...)
}

func setup(t *testing.T, db *domain.DB) *env {
	t.Helper()
	signer, err := domain.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	node := gateway.NewNode(nil, log)
	rec := &recorder{got: make(chan struct{}, 1<<14)}
	node.Hub.Subscribe(domain.ProjectChannel("demo", domain.FamilyAttendees), rec)
	broker := gateway.NewLocalBroker()
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	broker.Subscribe(node.DispatchBatch)
	relay, err := outbox.NewRelay(db, gateway.Pipeline{Broker: broker}, outbox.Config{Logger: log, Mode: outbox.ModePoll}) // counts outbox rows, which logical decoding deletes once delivered
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	e := domain.NewEcho(log)
	api := e.Group("/api/v1", domain.Authn(signer, true))
	domain.ProjectRoutes(api, db)
	attendees.Routes(api, attendees.NewStore(db), db)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	en := &env{db: db, srv: srv, signer: signer, rec: rec}
	if st, body := en.do(t, "POST", "/api/v1/projects", en.token(t, "1", nil, true), "", `{"slug":"demo","name":"Demo"}`); st != 201 {
		t.Fatalf("create project: %d %s", st, body)
	}
	if st, body := en.do(t, "POST", "/api/v1/projects", en.token(t, "1", nil, true), "", `{"slug":"expo","name":"Expo"}`); st != 201 {
		t.Fatalf("create project: %d %s", st, body)
	}
	return en
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func (e *env) token(t *testing.T, sub string, projects []string, admin bool) string {
	t.Helper()
	c := domain.Claims{Name: "Jane Smith", Projects: projects, Admin: admin}
	c.Subject = sub
	tok, err := e.signer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) do(t *testing.T, method, path, token, requestID, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewBufferString(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-ID", requestID)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	if requestID != "" && res.Header.Get("X-Request-ID") != requestID {
		t.Errorf("X-Request-ID echoed %q, want %q", res.Header.Get("X-Request-ID"), requestID)
	}
	return res.StatusCode, out
}

func (e *env) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func decode(t *testing.T, m *gateway.Message) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("event data %s: %v", m.Data, err)
	}
	return v
}

func TestLifecycleEvents(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := setup(t, db)
		tok := e.token(t, "42", []string{"demo"}, false)
		st, a := e.do(t, "POST", "/api/v1/projects/demo/attendees", tok, "t-1",
			`{"first_name":"Jane","last_name":"Smith","email":"jane@example.com","attendee_type_id":1}`)
		if st != 201 {
			t.Fatalf("create: %d %v", st, a)
		}
		id := int64(a["id"].(float64))
		path := fmt.Sprintf("/api/v1/projects/demo/attendees/%d", id)
		if st, b := e.do(t, "PATCH", path, tok, "t-2", `{"email":"jane.updated@example.com","first_name":"Jane"}`); st != 200 {
			t.Fatalf("update: %d %v", st, b)
		}
		if st, b := e.do(t, "DELETE", path, tok, "t-3", ``); st != 204 {
			t.Fatalf("delete: %d %v", st, b)
		}
		msgs := e.rec.wait(t, 3)
		time.Sleep(200 * time.Millisecond)
		if got := len(e.rec.snapshot()); got != 3 {
			t.Fatalf("got %d events, want exactly 3", got)
		}
		created, updated, deleted := decode(t, msgs[0]), decode(t, msgs[1]), decode(t, msgs[2])
		for _, tc := range []struct {
			msg  *gateway.Message
			name string
			op   string
			rid  string
			keys []string
		}{
			{msgs[0], "AttendeeCreated", "v1.project.attendees.store", "t-1", []string{"attendee_id", "project_id", "first_name", "last_name", "email", "attendee_type_id", "created_at"}},
			{msgs[1], "AttendeeUpdated", "v1.project.attendees.update", "t-2", []string{"attendee_id", "project_id", "changes", "updated_at"}},
			{msgs[2], "AttendeeDeleted", "v1.project.attendees.destroy", "t-3", []string{"attendee_id", "project_id", "deleted_at"}},
		} {
			if tc.msg.Event != tc.name {
				t.Errorf("event %q, want %q", tc.msg.Event, tc.name)
			}
			d := decode(t, tc.msg)
			if len(d) != len(tc.keys)+1 {
				t.Errorf("%s has fields %v, want exactly %v + x-triggered-by", tc.name, keys(d), tc.keys)
			}
			for _, k := range tc.keys {
				if _, ok := d[k]; !ok {
					t.Errorf("%s lacks %q", tc.name, k)
				}
			}
			tb, _ := d["x-triggered-by"].(map[string]any)
			if tb["operation_id"] != tc.op || tb["request_id"] != tc.rid || len(tb) != 2 {
				t.Errorf("%s x-triggered-by = %v, want {%s %s}", tc.name, tb, tc.op, tc.rid)
			}
		}
		if created["attendee_id"] != float64(id) || created["email"] != "jane@example.com" || created["attendee_type_id"] != float64(1) {
			t.Errorf("created payload %v", created)
		}
		if ts, _ := created["created_at"].(string); len(ts) != 20 || ts[19] != 'Z' {
			t.Errorf("created_at %q is not RFC 3339 UTC seconds", ts)
		}
		if ch := updated["changes"].(map[string]any); len(ch) != 1 || ch["email"] != "jane.updated@example.com" {
			t.Errorf("changes = %v, want only the changed email", ch)
		}
		if deleted["attendee_id"] != float64(id) {
			t.Errorf("deleted payload %v", deleted)
		}
	}, attendees.Migrations())
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBadInputChangesNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := setup(t, db)
		demo := e.token(t, "42", []string{"demo"}, false)
		expo := e.token(t, "43", []string{"expo"}, false)
		other, _ := domain.NewSigner("another-secret")
		c := domain.Claims{Projects: []string{"demo"}}
		c.Subject = "42"
		forged, _ := other.Mint(c, time.Hour)
		valid := `{"first_name":"Jane","last_name":"Smith","email":"jane@example.com"}`
		for _, tc := range []struct {
			name, method, path, token, body string
			status                          int
			code                            string
		}{
			{"malformed json", "POST", "/api/v1/projects/demo/attendees", demo, `{"first_name":`, 400, "bad_request"},
			{"empty body", "POST", "/api/v1/projects/demo/attendees", demo, ``, 400, "bad_request"},
			{"missing last_name", "POST", "/api/v1/projects/demo/attendees", demo, `{"first_name":"J","email":"j@x.io"}`, 422, "validation_failed"},
			{"bad email", "POST", "/api/v1/projects/demo/attendees", demo, `{"first_name":"J","last_name":"S","email":"nope"}`, 422, "validation_failed"},
			{"wrong type", "POST", "/api/v1/projects/demo/attendees", demo, `{"first_name":1,"last_name":"S","email":"j@x.io"}`, 400, "bad_request"},
			{"unknown project", "POST", "/api/v1/projects/nope/attendees", e.token(t, "1", []string{"*"}, false), valid, 404, "not_found"},
			{"no token", "POST", "/api/v1/projects/demo/attendees", "", valid, 401, "unauthorized"},
			{"forged token", "POST", "/api/v1/projects/demo/attendees", forged, valid, 401, "unauthorized"},
			{"garbage token", "POST", "/api/v1/projects/demo/attendees", "not.a.jwt", valid, 401, "unauthorized"},
			{"other project's token", "POST", "/api/v1/projects/demo/attendees", expo, valid, 403, "forbidden"},
			{"patch unknown attendee", "PATCH", "/api/v1/projects/demo/attendees/999", demo, `{"email":"a@b.io"}`, 404, "not_found"},
			{"delete unknown attendee", "DELETE", "/api/v1/projects/demo/attendees/999", demo, ``, 404, "not_found"},
			{"non-numeric id", "GET", "/api/v1/projects/demo/attendees/abc", demo, ``, 404, "not_found"},
			{"project by non-admin", "POST", "/api/v1/projects", demo, `{"slug":"x","name":"X"}`, 403, "forbidden"},
			{"bad slug", "POST", "/api/v1/projects", e.token(t, "1", nil, true), `{"slug":"Bad Slug","name":"X"}`, 422, "validation_failed"},
			{"bad limit", "GET", "/api/v1/projects/demo/attendees?limit=1000", demo, ``, 422, "validation_failed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, body := e.do(t, tc.method, tc.path, tc.token, "", tc.body)
				errObj, _ := body["error"].(map[string]any)
				if st != tc.status || errObj["code"] != tc.code || errObj["message"] == "" {
					t.Fatalf("got %d %v, want %d with code %q and a message", st, body, tc.status, tc.code)
				}
			})
		}
		if n := e.count(t, "attendees"); n != 0 {
			t.Fatalf("%d attendees written by bad requests", n)
		}
		if n := e.count(t, "watermill_events"); n != 0 {
			t.Fatalf("%d events written by bad requests", n)
		}
	}, attendees.Migrations())
}

// TestConcurrentWriters: 20 writers × 50 attendees, each created then
// updated. Every event arrives once, and each attendee's events in commit
// order (created before updated).
func TestConcurrentWriters(t *testing.T) {
	const writers, each = 20, 50
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := setup(t, db)
		tok := e.token(t, "42", []string{"demo"}, false)
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					st, a := e.do(t, "POST", "/api/v1/projects/demo/attendees", tok, "",
						fmt.Sprintf(`{"first_name":"W%d","last_name":"N%d","email":"w%d.n%d@example.com"}`, w, i, w, i))
					if st != 201 {
						errs <- fmt.Errorf("create: %d %v", st, a)
						return
					}
					st, b := e.do(t, "PATCH", fmt.Sprintf("/api/v1/projects/demo/attendees/%d", int64(a["id"].(float64))), tok, "",
						fmt.Sprintf(`{"last_name":"U%d"}`, i))
					if st != 200 {
						errs <- fmt.Errorf("update: %d %v", st, b)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		msgs := e.rec.wait(t, 2*writers*each)
		time.Sleep(300 * time.Millisecond)
		msgs = e.rec.snapshot()
		if len(msgs) != 2*writers*each {
			t.Fatalf("got %d events, want %d", len(msgs), 2*writers*each)
		}
		seen := map[string]bool{}
		state := map[float64]string{}
		for _, m := range msgs {
			if seen[m.ID] {
				t.Fatalf("event %s delivered twice", m.ID)
			}
			seen[m.ID] = true
			id := decode(t, m)["attendee_id"].(float64)
			switch m.Event {
			case "AttendeeCreated":
				if state[id] != "" {
					t.Fatalf("attendee %v created after %s", id, state[id])
				}
			case "AttendeeUpdated":
				if state[id] != "AttendeeCreated" {
					t.Fatalf("attendee %v updated before being created", id)
				}
			}
			state[id] = m.Event
		}
		if len(state) != writers*each {
			t.Fatalf("%d attendees seen, want %d", len(state), writers*each)
		}
	}, attendees.Migrations())
}

func TestPagination(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := setup(t, db)
		tok := e.token(t, "42", []string{"demo"}, false)
		for i := 0; i < 5; i++ {
			if st, b := e.do(t, "POST", "/api/v1/projects/demo/attendees", tok, "",
				fmt.Sprintf(`{"first_name":"A%d","last_name":"B","email":"a%d@example.com"}`, i, i)); st != 201 {
				t.Fatalf("create: %d %v", st, b)
			}
		}
		var all []any
		path := "/api/v1/projects/demo/attendees?limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			st, body := e.do(t, "GET", path, tok, "", "")
			if st != 200 {
				t.Fatalf("list: %d %v", st, body)
			}
			all = append(all, body["data"].([]any)...)
			next, _ := body["next_cursor"].(string)
			if next == "" {
				break
			}
			path = "/api/v1/projects/demo/attendees?limit=2&cursor=" + next
		}
		if len(all) != 5 {
			t.Fatalf("paged through %d attendees, want 5", len(all))
		}
	}, attendees.Migrations())
}

func TestIdempotencyKey(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		e := setup(t, db)
		tok := e.token(t, "42", []string{"demo"}, false)
		post := func(body string) (int, map[string]any) {
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/projects/demo/attendees", bytes.NewBufferString(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Idempotency-Key", "k-1")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(res.Body).Decode(&out)
			return res.StatusCode, out
		}
		body := `{"first_name":"Jane","last_name":"Smith","email":"jane@example.com"}`
		st1, a1 := post(body)
		st2, a2 := post(body)
		if st1 != 201 || st2 != 201 || a1["id"] != a2["id"] {
			t.Fatalf("retry answered %d %v then %d %v, want the same 201", st1, a1, st2, a2)
		}
		if st, b := post(`{"first_name":"Other","last_name":"Smith","email":"o@example.com"}`); st != 422 {
			t.Fatalf("same key, other body: %d %v, want 422", st, b)
		}
		if n := e.count(t, "attendees"); n != 1 {
			t.Fatalf("%d attendees, want 1", n)
		}
		if n := e.count(t, "watermill_events"); n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
	}, attendees.Migrations())
}
