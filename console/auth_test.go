package console_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/console"
	"switchboard/domain"
)

// Logging in: an admin JWT (body or bearer) or a Pusher app secret opens
// a session; everything else is refused with the error body.
func TestLogin(t *testing.T) {
	h := newHarness(t, nil)
	expired, _ := h.signer.SignMap(jwt.MapClaims{"sub": "1", "admin": true, "exp": time.Now().Add(-time.Minute).Unix()})
	room := h.mint(domain.Claims{Admin: true, PubSub: &domain.PubSubRoom{Organization: "acme", Event: "ev1", Session: "s1"},
		RegisteredClaims: jwt.RegisteredClaims{Subject: "p1"}}, time.Hour)
	otherSigner, _ := domain.NewSigner("another-secret-another-secret-another")
	forged, _ := otherSigner.Mint(domain.Claims{Admin: true, RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, time.Hour)
	for _, tc := range []struct {
		name, body, bearer string
		want               string
		who                string
	}{
		{name: "nothing", want: "401 unauthorized"},
		{name: "empty object", body: `{}`, want: "401 unauthorized"},
		{name: "not JSON", body: `{"token":`, want: "400 bad_request"},
		{name: "garbage token", body: `{"token":"not-a-jwt"}`, want: "401 unauthorized"},
		{name: "forged admin token", body: `{"token":"` + forged + `"}`, want: "401 unauthorized"},
		{name: "expired admin token", body: `{"token":"` + expired + `"}`, want: "401 token_expired"},
		{name: "member token", body: `{"token":"` + h.member() + `"}`, want: "403 forbidden"},
		{name: "room token with an admin claim", body: `{"token":"` + room + `"}`, want: "403 forbidden"},
		{name: "wrong secret", body: `{"secret":"app-secret"}`, want: "401 unauthorized"},
		{name: "admin token", body: `{"token":"` + h.admin() + `"}`, want: "201", who: "Staff"},
		{name: "admin bearer", bearer: h.admin(), want: "201", who: "Staff"},
		{name: "member bearer", bearer: h.member(), want: "403 forbidden"},
		{name: "app secret", body: `{"secret":"` + appSecret + `"}`, want: "201", who: "app app-id"},
		{name: "a session renews itself", body: `{"token":"` + h.adminSession() + `"}`, want: "201", who: "Staff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.call("POST", "/console/api/session", tc.bearer, tc.body)
			if a.String() != tc.want {
				t.Fatalf("got %s (%s), want %s", a, a.body, tc.want)
			}
			if a.status != http.StatusCreated {
				return
			}
			var s console.Session
			if err := json.Unmarshal(a.body, &s); err != nil || s.Who != tc.who || s.Token == "" {
				t.Fatalf("session %s: %v", a.body, err)
			}
			if d := time.Until(s.ExpiresAt); d < 50*time.Minute || d > time.Hour {
				t.Fatalf("session expires in %s, want about 1 h", d)
			}
			if got := h.call("GET", "/console/api/overview", s.Token, ""); got.status != http.StatusOK {
				t.Fatalf("the session does not open the console: %s", got)
			}
		})
	}
}

// A session never outlives the admin token it came from, and is no JWT
// the rest of the server accepts.
func TestSessionBounds(t *testing.T) {
	h := newHarness(t, nil)
	short := h.mint(domain.Claims{Name: "Staff", Admin: true, RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, 10*time.Minute)
	s := h.session(`{"token":"` + short + `"}`)
	if d := time.Until(s.ExpiresAt); d > 10*time.Minute {
		t.Fatalf("a session from a 10-minute token expires in %s", d)
	}
	if _, err := h.signer.Verify(s.Token); !errors.Is(err, domain.ErrInvalidToken) {
		t.Fatalf("the JWT signer accepts a console session: %v", err)
	}
}

// Every API route wants a session or an admin JWT; the event stream also
// takes it as ?token= (EventSource cannot set headers), the others do not.
func TestAPIRefusesWithoutSession(t *testing.T) {
	h := newHarness(t, nil)
	session, member := h.adminSession(), h.member()
	routes := []struct{ method, path, body string }{
		{"GET", "/console/api/overview", ""},
		{"GET", "/console/api/channels", ""},
		{"GET", "/console/api/presence?channel=x", ""},
		{"GET", "/console/api/webhooks", ""},
		{"POST", "/console/api/webhooks/1/retry", "{}"},
		{"POST", "/console/api/events", `{"channel":"x"}`},
		{"GET", "/console/api/stream", ""},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			for _, tc := range []struct {
				name, bearer, want string
			}{
				{"none", "", "401 unauthorized"},
				{"garbage", "garbage", "401 unauthorized"},
				{"member", member, "403 forbidden"},
			} {
				if got := h.call(r.method, r.path, tc.bearer, r.body); got.String() != tc.want {
					t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
				}
			}
			sep := "?"
			if strings.Contains(r.path, "?") {
				sep = "&"
			}
			if r.path == "/console/api/stream" {
				return // it opens the stream: below
			}
			got := h.call(r.method, r.path+sep+"token="+url.QueryEscape(session), "", r.body)
			if got.String() != "401 unauthorized" {
				t.Errorf("?token= on %s: got %s, want 401 (query tokens are for the stream only)", r.path, got)
			}
		})
	}
	if c := h.stream("/console/api/stream?token="+url.QueryEscape(session), ""); c.status != http.StatusOK {
		t.Fatalf("stream with ?token=: %d", c.status)
	}
}

// The page is served from the binary, with a policy that keeps it to its
// own origin; its API is not the page.
func TestPage(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		path, want, typ string
	}{
		{"/console", "200", "text/html"},
		{"/console/", "200", "text/html"},
		{"/console/console.js", "200", "text/javascript"},
		{"/console/console.css", "200", "text/css"},
		{"/console/nope.js", "404 not_found", ""},
		{"/console/../console.go", "404 not_found", ""},
		{"/console/assets/index.html", "404 not_found", ""},
	} {
		req, _ := http.NewRequest("GET", h.srv.URL+tc.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := h.call("GET", tc.path, "", "")
		if got.String() != tc.want {
			t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
		}
		if tc.typ != "" {
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.typ) {
				t.Errorf("%s: Content-Type %q", tc.path, ct)
			}
			if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s: no CSP or frame policy", tc.path)
			}
		}
	}
}

// Config.Validate reports every problem at once, and New runs it.
func TestConfigValidate(t *testing.T) {
	_, err := console.New(console.Config{Apps: []console.App{{ID: "a"}}})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"Node is required", "Signer is required", "SessionSecret is required", "empty secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
