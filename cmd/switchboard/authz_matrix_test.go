package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"switchboard/gateway/actioncable"
)

// The authorization matrix: every door of the server × every kind of
// credential, with the outcome each must have. The tables below are checked
// for completeness before anything runs, so a new door or a new credential
// kind cannot be added without stating what happens for every pair, and
// every route echo serves must be claimed by a door, by the bearer family,
// by a non-JWT door or by the public list.

// cred is a kind of credential presented at a door.
type cred string

const (
	credNone     cred = "none"      // nothing presented
	credGarbage  cred = "garbage"   // not a JWT
	credWrongKey cred = "wrong-key" // member's claims, signed with another secret
	credExpired  cred = "expired"   // member's claims, exp an hour ago
	credAlgNone  cred = "alg-none"  // member's claims, alg "none", no signature
	credNoExp    cred = "no-exp"    // member's claims without exp
	credTooLong  cred = "exp>max"   // member's claims, exp beyond SWITCHBOARD_JWT_MAX_TTL
	credMember   cred = "member"    // valid: member 42 of project demo (the owner: positive control)
	credOtherPrj cred = "other-project"
	credOtherMem cred = "other-member"
	credAdmin    cred = "admin"
	credRoom     cred = "room" // a PubSub room token whose sub is 42: a participant, never member 42
)

// allCreds is every kind, in the order the matrix is reported.
var allCreds = []cred{credNone, credGarbage, credWrongKey, credExpired, credAlgNone, credNoExp, credTooLong,
	credMember, credOtherPrj, credOtherMem, credAdmin, credRoom}

// claimsOf is who each kind claims to be. Broken kinds carry the member's
// claims, so the defect is the only difference from the positive control.
func claimsOf(k cred) jwt.MapClaims {
	switch k {
	case credOtherPrj: // valid, but its projects claim lacks demo
		return jwt.MapClaims{"sub": "43", "name": "Otto", "projects": []string{"expo"}}
	case credOtherMem: // valid, in demo, but not member 42
		return jwt.MapClaims{"sub": "43", "name": "Otto", "projects": []string{"demo"}}
	case credAdmin:
		return jwt.MapClaims{"sub": "1", "name": "Staff", "admin": true}
	case credRoom:
		return jwt.MapClaims{"sub": "42", "name": "Jane", "pubsub": map[string]string{"organization_id": "acme", "event_id": "ev1", "session_id": "s1"}}
	}
	return jwt.MapClaims{"sub": "42", "name": "Jane", "projects": []string{"demo"}}
}

const (
	matrixSecret = testJWTSecret // what startServe configures
	matrixMaxTTL = 2 * time.Hour
	matrixAPIKey = "matrix-api-key"
)

// tokenOf mints k's token with extra claims (a subscription token's channel).
func tokenOf(t *testing.T, k cred, extra jwt.MapClaims) string {
	t.Helper()
	switch k {
	case credNone:
		return ""
	case credGarbage:
		return "not-a-jwt"
	}
	now := time.Now()
	c := claimsOf(k)
	maps.Copy(c, extra)
	c["iat"], c["exp"] = now.Unix(), now.Add(time.Hour).Unix()
	var method jwt.SigningMethod = jwt.SigningMethodHS256
	var key any = []byte(matrixSecret)
	switch k {
	case credWrongKey:
		key = []byte("another-secret")
	case credExpired:
		c["exp"] = now.Add(-time.Hour).Unix()
	case credAlgNone:
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	case credNoExp:
		delete(c, "exp")
	case credTooLong:
		c["exp"] = now.Add(matrixMaxTTL + time.Hour).Unix()
	}
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authzDoor is one way in. routes are the echo routes it stands for
// ("METHOD /path" as registered); probe presents a credential and reports
// what happened in the notation of the matrix.
type authzDoor struct {
	routes []string
	probe  func(h *authzHarness, k cred) string
}

var authzDoors = map[string]authzDoor{
	"rest.write": {[]string{"POST /api/v1/projects/:slug/attendees"}, func(h *authzHarness, k cred) string {
		body := fmt.Sprintf(`{"first_name":"M","last_name":"X","email":"m%d@example.com","attendee_type_id":1}`, h.seq.Add(1))
		return h.call("POST", "/api/v1/projects/demo/attendees", tokenOf(h.t, k, nil), echo.MIMEApplicationJSON, body).String()
	}},
	"rest.read": {[]string{"GET /api/v1/projects/:slug/attendees"}, func(h *authzHarness, k cred) string {
		return h.call("GET", "/api/v1/projects/demo/attendees", tokenOf(h.t, k, nil), "", "").String()
	}},
	"realtime.token": {[]string{"POST /api/v1/realtime/token"}, func(h *authzHarness, k cred) string {
		return h.call("POST", "/api/v1/realtime/token", tokenOf(h.t, k, nil), "", "").String()
	}},
	// Pusher: /broadcasting/auth with the credential, then pusher:subscribe
	// with what it answered (no auth when refused, as a client that ignores
	// the refusal would).
	"pusher.dashboard": {[]string{"POST /broadcasting/auth"}, pusherChannel("private-dashboard.project.demo.attendees")},
	"pusher.member":    {[]string{"POST /broadcasting/auth"}, pusherChannel("private-notification-channel-42")},
	"pusher.user-auth": {[]string{"POST /pusher/user-auth"}, pusherSignin},
	// Centrifugo: the credential is the connection token; the subscribe
	// doors then ask for a canonical channel decided by its claims, or for a
	// channel of the closed "granted" namespace with the credential as
	// subscription token (connected as 42, or as the admin for admin).
	"centrifugo.connect":   {[]string{"GET /connection/websocket"}, centrifugoProbe("")},
	"centrifugo.dashboard": {[]string{"GET /connection/websocket"}, centrifugoProbe("dashboard.project.demo.attendees")},
	"centrifugo.member":    {[]string{"GET /connection/websocket"}, centrifugoProbe("notification-channel-42")},
	"centrifugo.sub-token": {[]string{"GET /connection/websocket"}, centrifugoSubToken},
	// ActionCable: the credential identifies the connection (?token=);
	// MemberNotifications is a SWITCHBOARD_CABLE_CHANNELS class whose stream
	// names the member, so the shared rules, not {me}, must stop 43.
	"cable.connect":      {[]string{"GET /cable"}, cableProbe("")},
	"cable.dashboard":    {[]string{"GET /cable"}, cableProbe(`{"channel":"DashboardChannel","project":"demo","family":"attendees"}`)},
	"cable.notification": {[]string{"GET /cable"}, cableProbe(`{"channel":"NotificationChannel"}`)},
	"cable.member":       {[]string{"GET /cable"}, cableProbe(`{"channel":"MemberNotifications","member":"42"}`)},
	// A PubSub room (docs/pubsub.md): only its room tokens, and admins
	// watching.
	"pusher.pubsub":     {[]string{"POST /broadcasting/auth"}, pusherChannel("private-pubsub.acme.ev1.s1")},
	"centrifugo.pubsub": {[]string{"GET /connection/websocket"}, centrifugoProbe("pubsub.acme.ev1.s1")},
	// The debug console (docs/console.md): an admin JWT logs in (so does a
	// Pusher app secret, console/auth_test.go) and opens its API.
	"console.login": {[]string{"POST /console/api/session"}, func(h *authzHarness, k cred) string {
		return h.call("POST", "/console/api/session", tokenOf(h.t, k, nil), echo.MIMEApplicationJSON, "{}").String()
	}},
	"console.api": {[]string{"GET /console/api/overview"}, func(h *authzHarness, k cred) string {
		return h.call("GET", "/console/api/overview", tokenOf(h.t, k, nil), "", "").String()
	}},
}

// Outcomes, in the notation the probes report.
const (
	oUnauth  = "401 unauthorized"
	oExpired = "401 token_expired"
	oForbid  = "403 forbidden"
	pAuth401 = oUnauth + " → subscription_error 401"
	pAuthExp = oExpired + " → subscription_error 401"
	pAuth403 = oForbid + " → subscription_error 401"
	pAuthOK  = "200 → subscribed"
	uAuth401 = oUnauth + " → error 4009"
	uAuthExp = oExpired + " → error 4009"
	uAuthOK  = "200 → signin_success"
	uAuth403 = oForbid + " → error 4009"
	cfBad    = "close 3500" // invalid token: terminal
	cfNone   = "close 3501" // connect without a token: bad request
	cfExp    = "error 109"  // expired: centrifuge-js fetches a new token
	cfDenied = "error 103"  // permission denied
	cfOK     = "subscribed"
	acUnauth = "disconnect unauthorized" // {"type":"disconnect","reason":"unauthorized","reconnect":false}
	acOK     = "confirm_subscription"
	acReject = "reject_subscription"
)

// authzMatrix is what every door must answer to every kind. Tokens without exp
// or living longer than SWITCHBOARD_JWT_MAX_TTL are refused like forged ones
// (invalid, not expired: a client must not "refresh and retry" them).
var authzMatrix = map[string]map[cred]string{
	"rest.write": {
		credNone: oUnauth, credGarbage: oUnauth, credWrongKey: oUnauth, credExpired: oExpired,
		credAlgNone: oUnauth, credNoExp: oUnauth, credTooLong: oUnauth,
		credMember: "201", credOtherPrj: oForbid, credOtherMem: "201", credAdmin: "201", credRoom: oForbid,
	},
	"rest.read": {
		credNone: oUnauth, credGarbage: oUnauth, credWrongKey: oUnauth, credExpired: oExpired,
		credAlgNone: oUnauth, credNoExp: oUnauth, credTooLong: oUnauth,
		credMember: "200", credOtherPrj: oForbid, credOtherMem: "200", credAdmin: "200", credRoom: oForbid,
	},
	"realtime.token": { // any valid bearer gets a connection token carrying its own claims
		credNone: oUnauth, credGarbage: oUnauth, credWrongKey: oUnauth, credExpired: oExpired,
		credAlgNone: oUnauth, credNoExp: oUnauth, credTooLong: oUnauth,
		credMember: "200", credOtherPrj: "200", credOtherMem: "200", credAdmin: "200", credRoom: oForbid,
	},
	"pusher.dashboard": {
		credNone: pAuth401, credGarbage: pAuth401, credWrongKey: pAuth401, credExpired: pAuthExp,
		credAlgNone: pAuth401, credNoExp: pAuth401, credTooLong: pAuth401,
		credMember: pAuthOK, credOtherPrj: pAuth403, credOtherMem: pAuthOK, credAdmin: pAuthOK, credRoom: pAuth403,
	},
	"pusher.member": { // member channels: only that member, admins included
		credNone: pAuth401, credGarbage: pAuth401, credWrongKey: pAuth401, credExpired: pAuthExp,
		credAlgNone: pAuth401, credNoExp: pAuth401, credTooLong: pAuth401,
		credMember: pAuthOK, credOtherPrj: pAuth403, credOtherMem: pAuth403, credAdmin: pAuth403, credRoom: pAuth403,
	},
	"pusher.user-auth": {
		credNone: uAuth401, credGarbage: uAuth401, credWrongKey: uAuth401, credExpired: uAuthExp,
		credAlgNone: uAuth401, credNoExp: uAuth401, credTooLong: uAuth401,
		credMember: uAuthOK, credOtherPrj: uAuthOK, credOtherMem: uAuthOK, credAdmin: uAuthOK, credRoom: uAuth403,
	},
	"centrifugo.connect": {
		credNone: cfNone, credGarbage: cfBad, credWrongKey: cfBad, credExpired: cfExp,
		credAlgNone: cfBad, credNoExp: cfBad, credTooLong: cfBad,
		credMember: "connected", credOtherPrj: "connected", credOtherMem: "connected", credAdmin: "connected", credRoom: "connected",
	},
	"centrifugo.dashboard": {
		credNone: cfNone, credGarbage: cfBad, credWrongKey: cfBad, credExpired: cfExp,
		credAlgNone: cfBad, credNoExp: cfBad, credTooLong: cfBad,
		credMember: cfOK, credOtherPrj: cfDenied, credOtherMem: cfOK, credAdmin: cfOK, credRoom: cfDenied,
	},
	"centrifugo.member": {
		credNone: cfNone, credGarbage: cfBad, credWrongKey: cfBad, credExpired: cfExp,
		credAlgNone: cfBad, credNoExp: cfBad, credTooLong: cfBad,
		credMember: cfOK, credOtherPrj: cfDenied, credOtherMem: cfDenied, credAdmin: cfDenied, credRoom: cfDenied,
	},
	// Subscription tokens decide alone (as in Centrifugo): without one the
	// closed namespace is 103; an invalid one is 103 too; one for another
	// user is treated as forged and closes the connection.
	"centrifugo.sub-token": {
		credNone: cfDenied, credGarbage: cfDenied, credWrongKey: cfDenied, credExpired: cfExp,
		credAlgNone: cfDenied, credNoExp: cfDenied, credTooLong: cfDenied,
		credMember: cfOK, credOtherPrj: cfBad, credOtherMem: cfBad, credAdmin: cfOK, credRoom: cfOK,
	},
	"cable.connect": {
		credNone: acUnauth, credGarbage: acUnauth, credWrongKey: acUnauth, credExpired: acUnauth,
		credAlgNone: acUnauth, credNoExp: acUnauth, credTooLong: acUnauth,
		credMember: "welcome", credOtherPrj: "welcome", credOtherMem: "welcome", credAdmin: "welcome", credRoom: acUnauth,
	},
	"cable.dashboard": {
		credNone: acUnauth, credGarbage: acUnauth, credWrongKey: acUnauth, credExpired: acUnauth,
		credAlgNone: acUnauth, credNoExp: acUnauth, credTooLong: acUnauth,
		credMember: acOK, credOtherPrj: acReject, credOtherMem: acOK, credAdmin: acOK, credRoom: acUnauth,
	},
	"cable.notification": { // {me}: everyone gets their own stream, never another's
		credNone: acUnauth, credGarbage: acUnauth, credWrongKey: acUnauth, credExpired: acUnauth,
		credAlgNone: acUnauth, credNoExp: acUnauth, credTooLong: acUnauth,
		credMember: acOK, credOtherPrj: acOK, credOtherMem: acOK, credAdmin: acOK, credRoom: acUnauth,
	},
	"cable.member": {
		credNone: acUnauth, credGarbage: acUnauth, credWrongKey: acUnauth, credExpired: acUnauth,
		credAlgNone: acUnauth, credNoExp: acUnauth, credTooLong: acUnauth,
		credMember: acOK, credOtherPrj: acReject, credOtherMem: acReject, credAdmin: acReject, credRoom: acUnauth,
	},
	"pusher.pubsub": {
		credNone: pAuth401, credGarbage: pAuth401, credWrongKey: pAuth401, credExpired: pAuthExp,
		credAlgNone: pAuth401, credNoExp: pAuth401, credTooLong: pAuth401,
		credMember: pAuth403, credOtherPrj: pAuth403, credOtherMem: pAuth403, credAdmin: pAuthOK, credRoom: pAuthOK,
	},
	"centrifugo.pubsub": {
		credNone: cfNone, credGarbage: cfBad, credWrongKey: cfBad, credExpired: cfExp,
		credAlgNone: cfBad, credNoExp: cfBad, credTooLong: cfBad,
		credMember: cfDenied, credOtherPrj: cfDenied, credOtherMem: cfDenied, credAdmin: cfOK, credRoom: cfOK,
	},
	"console.login": { // admins only; the session it answers opens the console and nothing else
		credNone: oUnauth, credGarbage: oUnauth, credWrongKey: oUnauth, credExpired: oExpired,
		credAlgNone: oUnauth, credNoExp: oUnauth, credTooLong: oUnauth,
		credMember: oForbid, credOtherPrj: oForbid, credOtherMem: oForbid, credAdmin: "201", credRoom: oForbid,
	},
	"console.api": {
		credNone: oUnauth, credGarbage: oUnauth, credWrongKey: oUnauth, credExpired: oExpired,
		credAlgNone: oUnauth, credNoExp: oUnauth, credTooLong: oUnauth,
		credMember: oForbid, credOtherPrj: oForbid, credOtherMem: oForbid, credAdmin: "200", credRoom: oForbid,
	},
}

// bearerSweep is what every route taking a Switchboard bearer answers to
// the kinds that fail authentication, whatever the route: the sweep sends
// them to all such routes, not only to the doors above. validCreds are the
// kinds that pass authentication, decided per door by the matrix.
var (
	bearerSweep = map[cred]string{
		credNone: oUnauth, credGarbage: oUnauth, credWrongKey: oUnauth, credExpired: oExpired,
		credAlgNone: oUnauth, credNoExp: oUnauth, credTooLong: oUnauth,
	}
	validCreds = []cred{credMember, credOtherPrj, credOtherMem, credAdmin, credRoom}
)

// bearerFamily says which routes take a Switchboard bearer besides the
// doors: everything under /api/v1 (domain.Authn on the group, or on the
// route), the debug console's API (/console/api: an admin JWT or a console
// session) and the aliases of the Pusher auth endpoints.
func bearerFamily(route string) bool {
	if _, foreign := foreignRoutes[route]; foreign {
		return false
	}
	_, path, _ := strings.Cut(route, " ")
	return strings.HasPrefix(path, "/api/v1/") || strings.HasPrefix(path, "/console/api/") || slices.Contains(bearerAliases, route)
}

var bearerAliases = []string{"GET /broadcasting/auth", "POST /broadcasting/user-auth", "GET /broadcasting/user-auth"}

// publicRoutes need no credential at all.
var publicRoutes = map[string]string{
	"GET /healthz":                  "liveness probe: says only whether the store answers",
	"GET /readyz":                   "readiness probe: says only whether the store and the broker answer",
	"GET /sdk/pubsub.js":            "the PubSub browser SDK: static",
	"HEAD /sdk/pubsub.js":           "the PubSub browser SDK: static",
	"GET /sdk/pubsub.mjs":           "the PubSub browser SDK: static",
	"HEAD /sdk/pubsub.mjs":          "the PubSub browser SDK: static",
	"GET /sdk/pubsub.d.ts":          "the PubSub browser SDK: static",
	"HEAD /sdk/pubsub.d.ts":         "the PubSub browser SDK: static",
	"GET /examples/pubsub/*":        "example pages: static",
	"HEAD /examples/pubsub/*":       "example pages: static",
	"GET /examples/pubsub":          "example pages: static",
	"HEAD /examples/pubsub":         "example pages: static",
	"GET /examples/dashboard.html":  "example pages: static (embedded mode)",
	"HEAD /examples/dashboard.html": "example pages: static (embedded mode)",
	"GET /examples":                 "example pages: a redirect",
	"GET /openapi.json":             "the OpenAPI document: describes the API, holds no data",
	"GET /console":                  "the debug console's page: static (its API needs an admin login)",
	"GET /console/*":                "the debug console's page: static (its API needs an admin login)",
}

const (
	whyPusherAPI = "Pusher HTTP API: signed with the app key and secret"
	whyServerAPI = "Centrifugo server API: SWITCHBOARD_API_KEY"
	whyPubSubAPI = "PubSub API: an organization's API token"
	whyBroadcast = "ActionCable broadcast (AnyCable's /_broadcast): Authorization: Bearer SWITCHBOARD_BROADCAST_KEY (else SWITCHBOARD_API_KEY)"
)

// foreignRoutes take a credential that is not a Switchboard JWT. Each HTTP
// one is sent the admin's JWT, which must not open it (want: the status).
var foreignRoutes = map[string]struct {
	why  string
	want int // 0: a WebSocket, covered by the pusher.* doors
}{
	"GET /app/:key":                                           {"Pusher WebSocket: private channels need the HMAC that /broadcasting/auth signs", 0},
	"POST /apps/:app_id/events":                               {whyPusherAPI, 401},
	"POST /apps/:app_id/batch_events":                         {whyPusherAPI, 401},
	"GET /apps/:app_id/channels":                              {whyPusherAPI, 401},
	"GET /apps/:app_id/channels/:channel_name":                {whyPusherAPI, 401},
	"GET /apps/:app_id/channels/:channel_name/users":          {whyPusherAPI, 401},
	"POST /apps/:app_id/users/:user_id/terminate_connections": {whyPusherAPI, 401},
	"POST /api/publish":                                       {whyServerAPI, 401},
	"POST /api/broadcast":                                     {whyServerAPI, 401},
	"POST /api/presence":                                      {whyServerAPI, 401},
	"POST /api/presence_stats":                                {whyServerAPI, 401},
	"POST /api/history":                                       {whyServerAPI, 401},
	"POST /api/history_remove":                                {whyServerAPI, 401},
	"POST /api/subscribe":                                     {whyServerAPI, 401},
	"POST /api/unsubscribe":                                   {whyServerAPI, 401},
	"POST /api/disconnect":                                    {whyServerAPI, 401},
	"POST /api/refresh":                                       {whyServerAPI, 401},
	"POST /api/channels":                                      {whyServerAPI, 401},
	"POST /api/info":                                          {whyServerAPI, 401},
	"POST /api/batch":                                         {whyServerAPI, 401},
	"POST /_broadcast":                                        {whyBroadcast, 401},
	"POST /api/v1/pub_subs":                                   {whyPubSubAPI, 401},
	"POST /api/v1/publish":                                    {whyPubSubAPI, 401},
	"POST /api/v1/pubsub/room_tokens":                         {whyPubSubAPI, 401},
}

// TestAuthorizationMatrixIsComplete runs without a server: the tables must
// cover every (door, kind) pair, and each kind must be either refused by
// authentication (bearerSweep) or valid.
func TestAuthorizationMatrixIsComplete(t *testing.T) {
	for _, p := range matrixProblems(authzDoors, authzMatrix) {
		t.Error(p)
	}
}

// The completeness checks must themselves catch what they are for.
func TestMatrixChecksCatchGaps(t *testing.T) {
	t.Run("a missing pair", func(t *testing.T) {
		m := maps.Clone(authzMatrix)
		m["rest.read"] = maps.Clone(m["rest.read"])
		delete(m["rest.read"], credNoExp)
		if p := matrixProblems(authzDoors, m); len(p) != 1 || !strings.Contains(p[0], "no-exp") {
			t.Fatalf("problems %q", p)
		}
	})
	t.Run("a door without a row", func(t *testing.T) {
		d := maps.Clone(authzDoors)
		d["rest.new"] = authzDoor{}
		if p := matrixProblems(d, authzMatrix); len(p) != 1 || !strings.Contains(p[0], "rest.new") {
			t.Fatalf("problems %q", p)
		}
	})
	route := func(method, path string) *echo.Route { return &echo.Route{Method: method, Path: path} }
	// A server with exactly the routes the tables name.
	var all []*echo.Route
	add := func(r string) {
		method, path, _ := strings.Cut(r, " ")
		all = append(all, route(method, path))
	}
	named := slices.Concat(slices.Collect(maps.Keys(publicRoutes)), slices.Collect(maps.Keys(foreignRoutes)), bearerAliases)
	for _, d := range authzDoors {
		named = append(named, d.routes...)
	}
	slices.Sort(named)
	for _, r := range slices.Compact(named) {
		add(r)
	}
	if p := routeProblems(all); len(p) != 0 {
		t.Fatalf("the tables' own routes: %q", p)
	}
	for _, tc := range []struct {
		name  string
		add   *echo.Route
		drop  string
		wants string // "" = no problem
	}{
		{name: "new REST route: the bearer sweep covers it", add: route("POST", "/api/v1/projects/:slug/widgets")},
		{name: "new route outside the families", add: route("GET", "/metrics"), wants: "GET /metrics is not in the authorization matrix"},
		{name: "group catch-all", add: route(echo.RouteNotFound, "/admin/*")},
		{name: "route gone", drop: "POST /api/publish", wants: "names route POST /api/publish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routes := slices.DeleteFunc(slices.Clone(all), func(r *echo.Route) bool { return r.Method+" "+r.Path == tc.drop })
			if tc.add != nil {
				routes = append(routes, tc.add)
			}
			p := routeProblems(routes)
			if tc.wants == "" && len(p) != 0 || tc.wants != "" && (len(p) != 1 || !strings.Contains(p[0], tc.wants)) {
				t.Fatalf("problems %q, want one with %q", p, tc.wants)
			}
		})
	}
}

// matrixProblems reports (door, kind) pairs without a row, rows without a
// door, and kinds that are neither refused by authentication nor valid.
func matrixProblems(doors map[string]authzDoor, matrix map[string]map[cred]string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(doors)) {
		row, ok := matrix[name]
		if !ok {
			out = append(out, fmt.Sprintf("door %s has no row in authzMatrix", name))
			continue
		}
		for _, k := range allCreds {
			if _, ok := row[k]; !ok {
				out = append(out, fmt.Sprintf("authzMatrix[%s] says nothing about credential %s", name, k))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(row)) {
			if !slices.Contains(allCreds, k) {
				out = append(out, fmt.Sprintf("authzMatrix[%s] has credential %s, which is not in allCreds", name, k))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(matrix)) {
		if _, ok := doors[name]; !ok {
			out = append(out, fmt.Sprintf("authzMatrix row %s has no door (probe)", name))
		}
	}
	for _, k := range allCreds {
		_, refused := bearerSweep[k]
		if refused == slices.Contains(validCreds, k) {
			out = append(out, fmt.Sprintf("credential %s must be in exactly one of bearerSweep and validCreds", k))
		}
	}
	return out
}

// TestAuthorizationMatrix runs the real serve() and presents every kind of
// credential at every door.
func TestAuthorizationMatrix(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A short max TTL, so the exp>max kind also proves serve() passes
	// SWITCHBOARD_JWT_MAX_TTL to its signer (the default is 30 days).
	t.Setenv("SWITCHBOARD_JWT_MAX_TTL", matrixMaxTTL.String())
	t.Setenv("SWITCHBOARD_API_KEY", matrixAPIKey)
	// "granted" allows nobody: only a subscription token (or a channels
	// claim) opens its channels.
	t.Setenv("SWITCHBOARD_CENTRIFUGO_CONFIG", write("centrifugo.json",
		`{"namespaces":[{"name":"granted"}],"canonical":{"history_size":100,"history_ttl":"10m"}}`))
	t.Setenv("SWITCHBOARD_CABLE_CHANNELS", write("cable.json",
		`{"channels":[{"channel":"MemberNotifications","stream":"notification-channel-{member}"}]}`))
	var routes []*echo.Route
	routerBuilt = func(e *echo.Echo) { routes = e.Routes() }
	t.Cleanup(func() { routerBuilt = nil })
	addr, _ := startServe(t, "")
	h := &authzHarness{t: t, addr: addr, seq: new(atomic.Int64)}
	for _, p := range []string{"demo", "expo"} {
		r := h.call("POST", "/api/v1/projects", tokenOf(t, credAdmin, nil), echo.MIMEApplicationJSON, `{"slug":"`+p+`","name":"P"}`)
		if r.status != http.StatusCreated {
			t.Fatalf("create project %s: %s %s", p, r, r.body)
		}
	}

	t.Run("every route is classified", func(t *testing.T) {
		for _, p := range routeProblems(routes) {
			t.Error(p)
		}
	})

	got := map[string]map[cred]string{}
	for _, name := range slices.Sorted(maps.Keys(authzDoors)) {
		got[name] = map[cred]string{}
		for _, k := range allCreds {
			t.Run(name+"/"+string(k), func(t *testing.T) {
				h := &authzHarness{t: t, addr: addr, seq: h.seq}
				g := authzDoors[name].probe(h, k)
				got[name][k] = g
				if want := authzMatrix[name][k]; g != want {
					t.Errorf("got %q, want %q", g, want)
				}
			})
		}
	}
	t.Logf("authorization matrix (observed):\n%s", renderMatrix(got))

	t.Run("bearer sweep", func(t *testing.T) {
		h := &authzHarness{t: t, addr: addr, seq: h.seq}
		swept := 0
		defer func() { t.Logf("%d bearer routes × %d refused kinds", swept, len(bearerSweep)) }()
		for _, r := range routes {
			route := r.Method + " " + r.Path
			if r.Method == echo.RouteNotFound || !bearerFamily(route) && !isBearerDoor(route) {
				continue
			}
			swept++
			for _, k := range allCreds {
				want, ok := bearerSweep[k]
				if !ok {
					continue
				}
				body := ""
				if r.Method != http.MethodGet {
					body = "{}"
				}
				if g := h.call(r.Method, concretePath(r.Path), tokenOf(t, k, nil), echo.MIMEApplicationJSON, body).String(); g != want {
					t.Errorf("%s with %s: got %q, want %q", route, k, g, want)
				}
			}
		}
	})

	t.Run("a JWT does not open the non-JWT doors", func(t *testing.T) {
		h := &authzHarness{t: t, addr: addr, seq: h.seq}
		admin := tokenOf(t, credAdmin, nil)
		for route, f := range foreignRoutes {
			if f.want == 0 {
				continue
			}
			method, path, _ := strings.Cut(route, " ")
			if r := h.call(method, concretePath(path), admin, echo.MIMEApplicationJSON, "{}"); r.status != f.want {
				t.Errorf("%s with an admin JWT: %s, want %d (%s)", route, r, f.want, f.why)
			}
		}
	})
}

// isBearerDoor reports whether route is an HTTP door of the matrix that
// takes a bearer (the REST and Pusher auth doors), so the sweep covers it.
func isBearerDoor(route string) bool {
	for _, name := range []string{"rest.write", "rest.read", "realtime.token", "pusher.dashboard", "pusher.user-auth"} {
		if slices.Contains(authzDoors[name].routes, route) {
			return true
		}
	}
	return false
}

// routeProblems reports a route that nothing claims, a route in two
// categories (doors, public, non-JWT; several doors may share a route), and
// a table entry that names a route the server no longer has.
func routeProblems(routes []*echo.Route) []string {
	var out []string
	claims := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(authzDoors)) {
		for _, r := range authzDoors[name].routes {
			if !slices.Contains(claims[r], "doors") {
				claims[r] = append(claims[r], "doors")
			}
		}
	}
	for r := range publicRoutes {
		claims[r] = append(claims[r], "public")
	}
	for r := range foreignRoutes {
		claims[r] = append(claims[r], "non-JWT")
	}
	registered := map[string]bool{}
	for _, r := range routes {
		if r.Method == echo.RouteNotFound {
			// The catch-alls echo adds for a group with middleware: they only
			// ever answer 404 (after the group's authentication).
			continue
		}
		route := r.Method + " " + r.Path
		registered[route] = true
		c := claims[route]
		if bearerFamily(route) && len(c) == 0 {
			continue // covered by the bearer sweep
		}
		switch len(c) {
		case 0:
			out = append(out, fmt.Sprintf("route %s is not in the authorization matrix: give it a door (authzDoors and "+
				"authzMatrix), or list it in bearerAliases, foreignRoutes or publicRoutes", route))
		case 1:
		default:
			out = append(out, fmt.Sprintf("route %s is in more than one category: %v", route, c))
		}
	}
	for _, r := range slices.Sorted(maps.Keys(claims)) {
		if !registered[r] {
			out = append(out, fmt.Sprintf("the matrix names route %s (%v), which the server does not register", r, claims[r]))
		}
	}
	for _, r := range bearerAliases {
		if !registered[r] {
			out = append(out, fmt.Sprintf("bearerAliases names route %s, which the server does not register", r))
		}
	}
	return out
}

// concretePath fills a route's parameters: the matrix's project, the
// default Pusher app, and 1 for ids (authentication fails before any lookup).
func concretePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		switch {
		case s == ":slug":
			parts[i] = "demo"
		case s == ":app_id":
			parts[i] = "app-id"
		case s == ":key":
			parts[i] = testAppKey
		case strings.HasPrefix(s, ":"):
			parts[i] = "1"
		}
	}
	return strings.Join(parts, "/")
}

func renderMatrix(got map[string]map[cred]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(got)) {
		fmt.Fprintf(&b, "%-22s", name)
		for _, k := range allCreds {
			fmt.Fprintf(&b, " | %s: %s", k, got[name][k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// Probes.

type authzHarness struct {
	t    *testing.T
	addr string
	seq  *atomic.Int64
}

type authzResult struct {
	status int
	code   string // the error code of an error body
	body   []byte
}

// String is "201", or "403 forbidden" for an error.
func (r authzResult) String() string {
	if r.code == "" {
		return fmt.Sprint(r.status)
	}
	return fmt.Sprintf("%d %s", r.status, r.code)
}

func (h *authzHarness) call(method, path, token, contentType, body string) authzResult {
	h.t.Helper()
	req, err := http.NewRequest(method, "http://"+h.addr+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := authzResult{status: res.StatusCode, body: b}
	if res.StatusCode >= 400 {
		var eb struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &eb)
		r.code = eb.Error.Code
		if r.code == "" {
			r.code = "(no error code)"
		}
	}
	return r
}

func (h *authzHarness) dial(path string, subprotocols ...string) *websocket.Conn {
	h.t.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws://"+h.addr+path, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", path, err)
	}
	h.t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// wsReadOrClose returns the next message, or the close code (-1: no close
// frame within 5 s).
func wsReadOrClose(ws *websocket.Conn) ([]byte, int) {
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return nil, ce.Code
		}
		return nil, -1
	}
	return b, 0
}

// --- Pusher ---

type pusherFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// pusherData reads a Pusher frame's data, a JSON string holding JSON or JSON.
func pusherData(raw json.RawMessage, v any) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	_ = json.Unmarshal(raw, v)
}

// pusherDial connects a Pusher client and returns it with its socket id.
func (h *authzHarness) pusherDial() (*websocket.Conn, string) {
	h.t.Helper()
	ws := h.dial("/app/" + testAppKey + "?protocol=7")
	f := h.pusherNext(ws, "pusher:connection_established")
	var d struct {
		SocketID string `json:"socket_id"`
	}
	pusherData(f.Data, &d)
	if d.SocketID == "" {
		h.t.Fatalf("no socket id in %s", f.Data)
	}
	return ws, d.SocketID
}

// pusherNext returns the next frame whose event is one of events.
func (h *authzHarness) pusherNext(ws *websocket.Conn, events ...string) pusherFrame {
	h.t.Helper()
	for {
		b, code := wsReadOrClose(ws)
		if b == nil {
			h.t.Fatalf("pusher: closed (%d) waiting for %v", code, events)
		}
		var f pusherFrame
		if err := json.Unmarshal(b, &f); err != nil {
			h.t.Fatalf("pusher frame %q: %v", b, err)
		}
		if slices.Contains(events, f.Event) {
			return f
		}
	}
}

func pusherChannel(channel string) func(h *authzHarness, k cred) string {
	return func(h *authzHarness, k cred) string {
		ws, sid := h.pusherDial()
		r := h.call("POST", "/broadcasting/auth", tokenOf(h.t, k, nil), echo.MIMEApplicationForm,
			url.Values{"socket_id": {sid}, "channel_name": {channel}}.Encode())
		var auth struct{ Auth string }
		if r.status == http.StatusOK {
			_ = json.Unmarshal(r.body, &auth)
		}
		if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth.Auth}}); err != nil {
			h.t.Fatal(err)
		}
		f := h.pusherNext(ws, "pusher_internal:subscription_succeeded", "pusher:subscription_error")
		if f.Event == "pusher_internal:subscription_succeeded" {
			return r.String() + " → subscribed"
		}
		var e struct{ Status int }
		pusherData(f.Data, &e)
		return fmt.Sprintf("%s → subscription_error %d", r, e.Status)
	}
}

// pusherSignin asks /pusher/user-auth, then signs in with its answer (or
// with nothing when refused).
func pusherSignin(h *authzHarness, k cred) string {
	ws, sid := h.pusherDial()
	r := h.call("POST", "/pusher/user-auth", tokenOf(h.t, k, nil), echo.MIMEApplicationForm, url.Values{"socket_id": {sid}}.Encode())
	ua := struct {
		Auth     string `json:"auth"`
		UserData string `json:"user_data"`
	}{UserData: `{"id":"42"}`}
	if r.status == http.StatusOK {
		_ = json.Unmarshal(r.body, &ua)
	}
	if err := ws.WriteJSON(map[string]any{"event": "pusher:signin", "data": ua}); err != nil {
		h.t.Fatal(err)
	}
	f := h.pusherNext(ws, "pusher:signin_success", "pusher:error")
	if f.Event == "pusher:signin_success" {
		return r.String() + " → signin_success"
	}
	var e struct{ Code int }
	pusherData(f.Data, &e)
	return fmt.Sprintf("%s → error %d", r, e.Code)
}

// --- Centrifugo ---

type cfClient struct {
	h  *authzHarness
	ws *websocket.Conn
	id int
}

// command sends one command and returns "ok" with the reply, "error N" or
// "close N".
func (c *cfClient) command(cmd string, body map[string]any) (string, map[string]any) {
	c.h.t.Helper()
	c.id++
	if err := c.ws.WriteJSON(map[string]any{"id": c.id, cmd: body}); err != nil {
		c.h.t.Fatal(err)
	}
	for {
		b, code := wsReadOrClose(c.ws)
		if b == nil {
			if code == -1 {
				c.h.t.Fatalf("centrifugo %s: no reply and no close frame", cmd)
			}
			return fmt.Sprintf("close %d", code), nil
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) != nil || len(m) == 0 || m["id"] != float64(c.id) {
				continue // pings, pushes
			}
			if e, ok := m["error"].(map[string]any); ok {
				return fmt.Sprintf("error %v", e["code"]), m
			}
			return "ok", m
		}
	}
}

func (h *authzHarness) centrifugoConnect(token string) (*cfClient, string) {
	c := &cfClient{h: h, ws: h.dial("/connection/websocket")}
	got, _ := c.command("connect", map[string]any{"token": token, "name": "matrix"})
	if got == "ok" {
		got = "connected"
	}
	return c, got
}

func centrifugoProbe(channel string) func(h *authzHarness, k cred) string {
	return func(h *authzHarness, k cred) string {
		c, got := h.centrifugoConnect(tokenOf(h.t, k, nil))
		if got != "connected" || channel == "" {
			return got
		}
		if got, _ = c.command("subscribe", map[string]any{"channel": channel}); got == "ok" {
			got = "subscribed"
		}
		return got
	}
}

func centrifugoSubToken(h *authzHarness, k cred) string {
	conn := credMember
	if k == credAdmin {
		conn = credAdmin
	}
	c, got := h.centrifugoConnect(tokenOf(h.t, conn, nil))
	if got != "connected" {
		h.t.Fatalf("connect as %s: %s", conn, got)
	}
	const channel = "granted:room"
	req := map[string]any{"channel": channel}
	if tok := tokenOf(h.t, k, jwt.MapClaims{"channel": channel}); tok != "" {
		req["token"] = tok
	}
	if got, _ = c.command("subscribe", req); got == "ok" {
		got = "subscribed"
	}
	return got
}

// --- ActionCable ---

// cableNext returns the next message that is not a ping, as "type" or
// "disconnect reason"; closed when the socket ends first.
func (h *authzHarness) cableNext(ws *websocket.Conn) string {
	h.t.Helper()
	for {
		b, code := wsReadOrClose(ws)
		if b == nil {
			return fmt.Sprintf("closed %d", code)
		}
		var m struct{ Type, Reason string }
		if err := json.Unmarshal(b, &m); err != nil {
			h.t.Fatalf("cable message %q: %v", b, err)
		}
		switch m.Type {
		case "ping":
			continue
		case "disconnect":
			return "disconnect " + m.Reason
		}
		return m.Type
	}
}

func cableProbe(identifier string) func(h *authzHarness, k cred) string {
	return func(h *authzHarness, k cred) string {
		path := "/cable"
		if tok := tokenOf(h.t, k, nil); tok != "" {
			path += "?token=" + url.QueryEscape(tok)
		}
		ws := h.dial(path, actioncable.Subprotocol)
		got := h.cableNext(ws)
		if got != "welcome" || identifier == "" {
			return got
		}
		if err := ws.WriteJSON(map[string]string{"command": "subscribe", "identifier": identifier}); err != nil {
			h.t.Fatal(err)
		}
		return h.cableNext(ws)
	}
}
