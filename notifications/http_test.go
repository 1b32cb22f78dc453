package notifications_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/notifications"
)

func TestHTTPRoutes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		signer, err := domain.NewSigner("test-secret")
		if err != nil {
			t.Fatal(err)
		}
		e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
		notifications.Routes(e.Group("/api/v1", domain.Authn(signer, true)), notifications.NewStore(db), db)
		ts := httptest.NewServer(e)
		defer ts.Close()
		do := func(sub string, admin bool, method, path, body string) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if sub != "" {
				tok, err := signer.Mint(domain.Claims{Admin: admin, RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(res.Body).Decode(&out)
			return res.StatusCode, out
		}
		const n = `{"type":"mention","title":"t","body":"b","actor":{"id":"7","name":"Jane"}}`
		st, created := do("backend", true, "POST", "/api/v1/members/42/notifications", n)
		// Member ids come back as numbers, whichever form the request used.
		if st != 201 || created["read_at"] != nil || created["link"] != nil || created["actor"].(map[string]any)["id"] != 7.0 ||
			created["community_member_id"] != 42.0 {
			t.Fatalf("create = %d %v", st, created)
		}
		id := strconv.Itoa(int(created["id"].(float64)))
		for _, tc := range []struct {
			name, sub    string
			admin        bool
			method, path string
			body         string
			status       int
			code         string
		}{
			{"no token", "", false, "GET", "/api/v1/notifications", "", 401, "unauthorized"},
			{"member creates", "42", false, "POST", "/api/v1/members/42/notifications", n, 403, "forbidden"},
			{"bad member", "backend", true, "POST", "/api/v1/members/a.b/notifications", n, 404, "not_found"},
			{"no title", "backend", true, "POST", "/api/v1/members/42/notifications", `{"type":"t","body":"b"}`, 422, "validation_failed"},
			{"not JSON", "backend", true, "POST", "/api/v1/members/42/notifications", `x`, 400, "bad_request"},
			{"someone else's", "43", false, "POST", "/api/v1/notifications/" + id + "/read", "", 404, "not_found"},
			{"bad id", "42", false, "POST", "/api/v1/notifications/x/read", "", 404, "not_found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, body := do(tc.sub, tc.admin, tc.method, tc.path, tc.body)
				e, _ := body["error"].(map[string]any)
				if st != tc.status || e == nil || e["code"] != tc.code {
					t.Fatalf("%s %s = %d %v, want %d %s", tc.method, tc.path, st, body, tc.status, tc.code)
				}
			})
		}
		if st, l := do("43", false, "GET", "/api/v1/notifications", ""); st != 200 || len(l["data"].([]any)) != 0 {
			t.Fatalf("43 lists %d %v, want none of 42's", st, l)
		}
		if st, l := do("42", false, "GET", "/api/v1/notifications", ""); st != 200 || len(l["data"].([]any)) != 1 {
			t.Fatalf("42 lists %d %v", st, l)
		}
		if st, r := do("42", false, "POST", "/api/v1/notifications/"+id+"/read", ""); st != 200 || r["read_at"] == nil {
			t.Fatalf("read = %d %v", st, r)
		}
		if st, r := do("42", false, "POST", "/api/v1/notifications/read-all", ""); st != 200 || r["new_notifications_count"] != 0.0 {
			t.Fatalf("read-all = %d %v", st, r)
		}
		ops := map[string]bool{}
		for _, env := range dbtest.Outbox(t, db) {
			ops[env.Name+" "+env.TriggeredBy.OperationID] = true
		}
		for _, want := range []string{"newNotification v1.member.notifications.store", "updateNewNotificationCount v1.member.notifications.store",
			"updateNewNotificationCount v1.notifications.read", "resetNewNotificationCount v1.notifications.read_all"} {
			if !ops[want] {
				t.Errorf("no %q event", want)
			}
		}
	}, notifications.Migrations())
}
