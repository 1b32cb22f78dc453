package pubsub_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/pubsub"
)

type server struct {
	t      *testing.T
	url    string
	db     *domain.DB
	signer *domain.Signer
	admin  string
}

func newServer(t *testing.T, db *domain.DB) *server {
	signer, err := domain.NewSigner("test-secret")
	if err != nil {
		t.Fatal(err)
	}
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	api := e.Group("/api/v1", domain.Authn(signer, true))
	pubsub.Routes(e, api, pubsub.NewStore(db), db, pubsub.RoomTokens{Signer: signer, TTL: time.Hour})
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)
	c := domain.Claims{Admin: true}
	c.Subject = "staff"
	admin, err := signer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &server{t: t, url: ts.URL, db: db, signer: signer, admin: admin}
}

// do sends body with the raw Authorization header auth.
func (s *server) do(method, path, auth, body string, header ...string) (int, map[string]any, http.Header) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

func (s *server) apiToken(org string) (token, id string) {
	s.t.Helper()
	st, out, _ := s.do("POST", "/api/v1/pubsub/api_tokens", "Bearer "+s.admin, `{"organization_id":"`+org+`","name":"test"}`)
	if st != 201 {
		s.t.Fatalf("create token: %d %v", st, out)
	}
	return out["token"].(string), out["id"].(string)
}

func body(scope, eventName, data string) string {
	return `{"scope":` + scope + `,"payload":{"event":{"eventName":` + eventName + `,"data":` + data + `}}}`
}

// TestPublishRouting: each scope type is one event on its scope's channel
// of the token's organization, and a room receives it exactly when that
// channel is one of its three. Rooms of another organization never do.
func TestPublishRouting(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newServer(t, db)
		acme, _ := s.apiToken("acme")
		globex, _ := s.apiToken("globex")
		rooms := map[string]domain.PubSubRoom{
			"A":  {Organization: "acme", Event: "ev1", Session: "s1"},
			"B":  {Organization: "acme", Event: "ev1", Session: "s2"},
			"C":  {Organization: "acme", Event: "ev2", Session: "s3"},
			"D":  {Organization: "globex", Event: "ev1", Session: "s1"},
			"D2": {Organization: "globex", Event: "ev9", Session: "s9"},
		}
		for _, tc := range []struct {
			name, auth, scope, channel string
			reaches                    []string
		}{
			{"session, the seed's bare token", acme, `{"type":"session","event_id":"ev1","session_id":"s1"}`, "pubsub.acme.ev1.s1", []string{"A"}},
			{"event", "Bearer " + acme, `{"type":"event","event_id":"ev1"}`, "pubsub.acme.ev1", []string{"A", "B"}},
			{"event ignores a session_id", acme, `{"type":"event","event_id":"ev2","session_id":"s1"}`, "pubsub.acme.ev2", []string{"C"}},
			{"organization", acme, `{"type":"organization"}`, "pubsub.acme", []string{"A", "B", "C"}},
			{"other organization, same ids", globex, `{"type":"session","event_id":"ev1","session_id":"s1"}`, "pubsub.globex.ev1.s1", []string{"D"}},
			{"other organization", globex, `{"type":"organization","event_id":"ev1"}`, "pubsub.globex", []string{"D", "D2"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(dbtest.Outbox(t, db))
				st, out, h := s.do("POST", "/api/v1/pub_subs", tc.auth, body(tc.scope, `"hello"`, `{"foo":"bar"}`))
				if st != 200 || out["channel"] != tc.channel {
					t.Fatalf("publish: %d %v", st, out)
				}
				envs := dbtest.Outbox(t, db)[before:]
				if len(envs) != 1 {
					t.Fatalf("%d events in the outbox, want 1", len(envs))
				}
				env := envs[0]
				var data map[string]any
				_ = json.Unmarshal(env.Data, &data)
				tb, _ := data["x-triggered-by"].(map[string]any)
				if env.Name != "hello" || data["foo"] != "bar" || tb["operation_id"] != "v1.pub_subs.store" ||
					tb["request_id"] != h.Get("X-Request-Id") || env.ID != out["id"] {
					t.Fatalf("event %s %s (id %s) for %v", env.Name, env.Data, env.ID, out)
				}
				var got []string
				for name, r := range rooms {
					if slices.Contains(r.Channels(), env.Scope.ChannelNames()[0]) {
						got = append(got, name)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.reaches) {
					t.Fatalf("reaches rooms %v, want %v", got, tc.reaches)
				}
			})
		}
		// The seed's second path publishes the same way.
		if st, out, _ := s.do("POST", "/api/v1/publish", acme, body(`{"type":"organization"}`, `"x"`, `{}`)); st != 200 || out["channel"] != "pubsub.acme" {
			t.Fatalf("/api/v1/publish: %d %v", st, out)
		}
	}, migrations...)
}

// TestPublishValidation: every rule of the seed's tables is a 422 naming
// the field (a body that is not JSON a 400), and nothing is published.
func TestPublishValidation(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newServer(t, db)
		tok, _ := s.apiToken("acme")
		big := `{"s":"` + strings.Repeat("a", pubsub.DefaultMaxPayload) + `"}`
		for _, tc := range []struct {
			name, body, field string
			status            int
		}{
			{"not JSON", `{"scope":`, "", 400},
			{"no scope", `{"payload":{"event":{"eventName":"x","data":{}}}}`, "scope", 422},
			{"scope not an object", body(`"session"`, `"x"`, `{}`), "scope", 422},
			{"no type", body(`{}`, `"x"`, `{}`), "scope.type", 422},
			{"unknown type", body(`{"type":"room"}`, `"x"`, `{}`), "scope.type", 422},
			{"type not a string", body(`{"type":1}`, `"x"`, `{}`), "scope.type", 422},
			{"event without event_id", body(`{"type":"event"}`, `"x"`, `{}`), "scope.event_id", 422},
			{"session without event_id", body(`{"type":"session","session_id":"s1"}`, `"x"`, `{}`), "scope.event_id", 422},
			{"session without session_id", body(`{"type":"session","event_id":"e"}`, `"x"`, `{}`), "scope.session_id", 422},
			{"event_id not a string", body(`{"type":"event","event_id":5}`, `"x"`, `{}`), "scope.event_id", 422},
			{"event_id with a dot", body(`{"type":"event","event_id":"a.b"}`, `"x"`, `{}`), "scope.event_id", 422},
			{"no payload", `{"scope":{"type":"organization"}}`, "payload", 422},
			{"no payload.event", `{"scope":{"type":"organization"},"payload":{}}`, "payload.event", 422},
			{"no eventName", `{"scope":{"type":"organization"},"payload":{"event":{"data":{}}}}`, "payload.event.eventName", 422},
			{"empty eventName", body(`{"type":"organization"}`, `""`, `{}`), "payload.event.eventName", 422},
			{"eventName not a string", body(`{"type":"organization"}`, `7`, `{}`), "payload.event.eventName", 422},
			{"reserved eventName", body(`{"type":"organization"}`, `"pusher:subscribe"`, `{}`), "payload.event.eventName", 422},
			{"no data", `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"x"}}}`, "payload.event.data", 422},
			{"data an array", body(`{"type":"organization"}`, `"x"`, `[1]`), "payload.event.data", 422},
			{"data a string", body(`{"type":"organization"}`, `"x"`, `"s"`), "payload.event.data", 422},
			{"data too large", body(`{"type":"organization"}`, `"x"`, big), "payload.event.data", 422},
			{"NUL in data", body(`{"type":"organization"}`, `"x"`, `{"a":"\u0000"}`), "payload.event.data.a", 422},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(dbtest.Outbox(t, db))
				st, out, _ := s.do("POST", "/api/v1/pub_subs", tok, tc.body)
				e, _ := out["error"].(map[string]any)
				if st != tc.status || e == nil || e["code"] == nil || (tc.field != "" && e["field"] != tc.field) {
					t.Fatalf("got %d %v, want %d naming %q", st, out, tc.status, tc.field)
				}
				if n := len(dbtest.Outbox(t, db)); n != before {
					t.Fatalf("outbox grew by %d", n-before)
				}
			})
		}
	}, migrations...)
}

// TestAPITokens: shown once, stored hashed, admins only, and a revoked
// token is refused from the next request on.
func TestAPITokens(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newServer(t, db)
		tok, id := s.apiToken("acme")
		pub := body(`{"type":"organization"}`, `"x"`, `{}`)
		if st, _, _ := s.do("POST", "/api/v1/pub_subs", tok, pub); st != 200 {
			t.Fatalf("bare token: %d", st)
		}
		var hashes int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pubsub_api_tokens WHERE token_hash <> $1 AND id = $2`, tok, id).Scan(&hashes); err != nil || hashes != 1 {
			t.Fatalf("token stored in clear? %d %v", hashes, err)
		}
		st, list, _ := s.do("GET", "/api/v1/pubsub/api_tokens?organization_id=acme", "Bearer "+s.admin, "")
		if st != 200 || bytes.Contains(mustJSON(list), []byte(tok)) || len(list["data"].([]any)) != 1 {
			t.Fatalf("list: %d %v", st, list)
		}
		member := domain.Claims{}
		member.Subject = "42"
		mtok, _ := s.signer.Mint(member, time.Hour)
		room := domain.Claims{PubSub: &domain.PubSubRoom{Organization: "acme", Event: "e", Session: "s"}}
		room.Subject = "p1"
		rtok, _ := s.signer.Mint(room, time.Hour)
		for _, tc := range []struct {
			name, method, path, auth, body string
			status                         int
		}{
			{"no token", "POST", "/api/v1/pub_subs", "", pub, 401},
			{"unknown token", "POST", "/api/v1/pub_subs", "sbp_nope", pub, 401},
			{"a JWT is not an API token", "POST", "/api/v1/pub_subs", "Bearer " + s.admin, pub, 401},
			{"members do not create tokens", "POST", "/api/v1/pubsub/api_tokens", "Bearer " + mtok, `{"organization_id":"acme"}`, 403},
			{"room tokens open no REST", "GET", "/api/v1/pubsub/api_tokens", "Bearer " + rtok, "", 403},
			{"bad organization id", "POST", "/api/v1/pubsub/api_tokens", "Bearer " + s.admin, `{"organization_id":"a b"}`, 422},
			{"revoke unknown", "DELETE", "/api/v1/pubsub/api_tokens/nope", "Bearer " + s.admin, "", 404},
			{"revoke", "DELETE", "/api/v1/pubsub/api_tokens/" + id, "Bearer " + s.admin, "", 204},
			{"revoke again", "DELETE", "/api/v1/pubsub/api_tokens/" + id, "Bearer " + s.admin, "", 204},
			{"revoked token publishes nothing", "POST", "/api/v1/pub_subs", tok, pub, 401},
			{"revoked token mints nothing", "POST", "/api/v1/pubsub/room_tokens", tok, `{"event_id":"e","session_id":"s","participant":{"id":"p"}}`, 401},
		} {
			if st, out, _ := s.do(tc.method, tc.path, tc.auth, tc.body); st != tc.status {
				t.Errorf("%s: %d %v, want %d", tc.name, st, out, tc.status)
			}
		}
	}, migrations...)
}

// TestRoomTokens: minted for the API token's organization, verified by the
// same signer as every token, and validated field by field.
func TestRoomTokens(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newServer(t, db)
		tok, _ := s.apiToken("acme")
		st, out, _ := s.do("POST", "/api/v1/pubsub/room_tokens", tok, `{"event_id":"ev1","session_id":"s1","participant":{"id":"p1","name":"Ann"},"ttl":600}`)
		if st != 201 {
			t.Fatalf("mint: %d %v", st, out)
		}
		c, err := s.signer.Verify(out["token"].(string))
		if err != nil || c.Subject != "p1" || c.Name != "Ann" || c.PubSub == nil ||
			*c.PubSub != (domain.PubSubRoom{Organization: "acme", Event: "ev1", Session: "s1"}) ||
			time.Until(c.ExpiresAt.Time) > 601*time.Second || c.CanAccessProject("demo") {
			t.Fatalf("claims %+v %v", c, err)
		}
		if ch := out["channels"].([]any); len(ch) != 3 || ch[2] != "pubsub.acme.ev1.s1" {
			t.Fatalf("channels %v", ch)
		}
		for _, tc := range []struct{ body, field string }{
			{`{"session_id":"s1","participant":{"id":"p1"}}`, "event_id"},
			{`{"event_id":"e","participant":{"id":"p1"}}`, "session_id"},
			{`{"event_id":"e","session_id":"s"}`, "participant.id"},
			{`{"event_id":"e","session_id":"s","participant":{"id":"p"},"ttl":-5}`, "ttl"},
			{`{"event_id":"e","session_id":"s","participant":{"id":"p"},"ttl":99999999999}`, "ttl"},
		} {
			st, out, _ := s.do("POST", "/api/v1/pubsub/room_tokens", tok, tc.body)
			if e, _ := out["error"].(map[string]any); st != 422 || e["field"] != tc.field {
				t.Errorf("%s: %d %v, want 422 on %s", tc.body, st, out, tc.field)
			}
		}
	}, migrations...)
}

// TestPublishIdempotency: a retried publish with the same Idempotency-Key
// is published once.
func TestPublishIdempotency(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newServer(t, db)
		tok, _ := s.apiToken("acme")
		before := len(dbtest.Outbox(t, db))
		b := body(`{"type":"organization"}`, `"x"`, `{"n":1}`)
		for i := 0; i < 2; i++ {
			if st, out, _ := s.do("POST", "/api/v1/pub_subs", tok, b, domain.HeaderIdempotencyKey, "k1"); st != 200 {
				t.Fatalf("attempt %d: %d %v", i, st, out)
			}
		}
		if n := len(dbtest.Outbox(t, db)) - before; n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
	}, migrations...)
}

var migrations = [][]domain.Migration{pubsub.Migrations()}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
