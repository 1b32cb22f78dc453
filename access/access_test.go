package access_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/access"
	"switchboard/attendees"
	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
)

// The tests run on the attendees module's own table and lookup: its table
// is what access's foreign keys name, and its lookup is what cmd/switchboard
// wires in, so a 404 for an unknown attendee is the real one.
func migrations() [][]domain.Migration {
	return [][]domain.Migration{attendees.Migrations(), access.Migrations()}
}

func newStore(db *domain.DB) *access.Store { return access.NewStore(db, attendees.NewStore(db)) }

// site is a small venue: Hall A (gate A) lets VIPs (type 1) in any time and
// Jim (type 2) only from tomorrow; Hall B (gate B) lets Jim in now. Olga has
// no rule; her old badge is revoked.
type site struct {
	api                *apitest.API
	hallA, hallB       access.Zone
	gateA, gateB       access.Point
	vip, jim, olga     int64
	vipCred, revokedID int64
}

func ptr[T any](v T) *T { return &v }

func newSite(t *testing.T, db *domain.DB) *site {
	t.Helper()
	api := apitest.New(t, db, func(g *echo.Group) { access.Routes(g, newStore(db), db) })
	s := &site{api: api}
	base := "/projects/demo/access"
	api.MustDo(http.MethodPost, base+"/zones", api.Admin, map[string]any{"name": "Hall A"}, 201, &s.hallA)
	api.MustDo(http.MethodPost, base+"/zones", api.Admin, map[string]any{"name": "Hall B"}, 201, &s.hallB)
	api.MustDo(http.MethodPost, base+"/points", api.Admin, map[string]any{"name": "Gate A", "access_zone_id": s.hallA.ID}, 201, &s.gateA)
	api.MustDo(http.MethodPost, base+"/points", api.Admin, map[string]any{"name": "Gate B", "access_zone_id": s.hallB.ID}, 201, &s.gateB)
	s.vip = api.Attendee("Vera", "Vip", ptr[int64](1))
	s.jim = api.Attendee("Jim", "General", ptr[int64](2))
	s.olga = api.Attendee("Olga", "Other", nil)
	cred := func(att int64, value string) access.Credential {
		var c access.Credential
		api.MustDo(http.MethodPost, base+"/credentials", api.Admin, map[string]any{"attendee_id": att, "value": value}, 201, &c)
		return c
	}
	s.vipCred = cred(s.vip, "VIP-1").ID
	cred(s.jim, "JIM-1")
	cred(s.olga, "OLGA-1")
	s.revokedID = cred(s.vip, "VIP-OLD").ID
	var revoked access.Credential
	api.MustDo(http.MethodPost, fmt.Sprintf("%s/credentials/%d/revoke", base, s.revokedID), api.Admin, nil, 200, &revoked)
	if !revoked.Revoked {
		t.Fatalf("revoke answered %+v", revoked)
	}
	now := time.Now().UTC()
	rule := func(body map[string]any) {
		api.MustDo(http.MethodPost, base+"/rules", api.Admin, body, 201, nil)
	}
	rule(map[string]any{"access_zone_id": s.hallA.ID, "attendee_type_id": 1})
	rule(map[string]any{"access_zone_id": s.hallA.ID, "attendee_id": s.jim, "starts_at": now.Add(24 * time.Hour), "ends_at": now.Add(48 * time.Hour)})
	rule(map[string]any{"access_zone_id": s.hallB.ID, "attendee_type_id": 2, "starts_at": now.Add(-time.Hour), "ends_at": now.Add(time.Hour)})
	return s
}

func (s *site) scan(t *testing.T, value string, point int64, dir string, header ...string) access.Scan {
	t.Helper()
	var sc access.Scan
	s.api.MustDo(http.MethodPost, "/projects/demo/access/scans", s.api.User,
		map[string]any{"credential_value": value, "access_point_id": point, "direction": dir}, 201, &sc, header...)
	return sc
}

func TestScanDecisionsAreStoredAndAnnounced(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newSite(t, db)
		if n := len(dbtest.Outbox(t, db)); n != 0 {
			t.Fatalf("configuration emitted %d events", n)
		}
		for i, tc := range []struct {
			name     string
			value    string
			point    access.Point
			dir      string
			reason   string // "" = granted
			attendee int64  // 0 = none
		}{
			{"vip enters", "VIP-1", s.gateA, "in", "", s.vip},
			{"unknown badge", "NOPE-9", s.gateA, "in", "unknown_credential", 0},
			{"revoked badge", "VIP-OLD", s.gateA, "in", "credential_revoked", s.vip},
			{"no rule for zone", "OLGA-1", s.gateA, "in", "not_authorized", s.olga},
			{"before the window", "JIM-1", s.gateA, "in", "outside_time_window", s.jim},
			{"inside the window", "JIM-1", s.gateB, "in", "", s.jim},
			{"vip type has no hall B rule", "VIP-1", s.gateB, "in", "not_authorized", s.vip},
			{"leaving is never blocked by rules", "JIM-1", s.gateA, "out", "", s.jim},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sc := s.scan(t, tc.value, tc.point.ID, tc.dir)
				if sc.Granted != (tc.reason == "") || (tc.reason != "" && (sc.Reason == nil || *sc.Reason != tc.reason)) ||
					(tc.reason == "" && sc.Reason != nil) {
					t.Fatalf("decision granted=%v reason=%v, want reason %q", sc.Granted, sc.Reason, tc.reason)
				}
				if (sc.Attendee == nil) != (tc.attendee == 0) || (sc.Attendee != nil && sc.Attendee.ID != tc.attendee) {
					t.Fatalf("attendee %+v, want %d", sc.Attendee, tc.attendee)
				}
				if sc.AccessZoneID != tc.point.AccessZoneID {
					t.Fatalf("zone %d, want %d", sc.AccessZoneID, tc.point.AccessZoneID)
				}
				envs := dbtest.Outbox(t, db)
				if len(envs) != i+1 {
					t.Fatalf("%d events after %d scans", len(envs), i+1)
				}
				env := envs[i]
				if ch := env.Scope.ChannelNames(); len(ch) != 1 || ch[0] != "dashboard.project.demo.access" {
					t.Fatalf("routed to %v", ch)
				}
				if env.TriggeredBy == nil || env.TriggeredBy.OperationID != "v1.project.access.scans.store" {
					t.Fatalf("x-triggered-by %+v", env.TriggeredBy)
				}
				var data map[string]any
				if err := json.Unmarshal(env.Data, &data); err != nil {
					t.Fatal(err)
				}
				ts := sc.Timestamp.Format(time.RFC3339)
				var want map[string]any
				if tc.reason == "" {
					want = map[string]any{"attendee_id": tc.attendee, "access_point_id": tc.point.ID, "access_zone_id": tc.point.AccessZoneID,
						"credential_id": *sc.CredentialID, "direction": tc.dir, "timestamp": ts}
					if env.Name != "AccessGranted" {
						t.Fatalf("event %s, want AccessGranted", env.Name)
					}
				} else {
					want = map[string]any{"credential_value": tc.value, "access_point_id": tc.point.ID, "reason": tc.reason, "timestamp": ts}
					if env.Name != "AccessDenied" {
						t.Fatalf("event %s, want AccessDenied", env.Name)
					}
				}
				delete(data, "x-triggered-by")
				if len(data) != len(want) {
					t.Fatalf("%s data %s, want keys %v", env.Name, env.Data, want)
				}
				for k, v := range want {
					if fmt.Sprint(data[k]) != fmt.Sprint(v) {
						t.Fatalf("%s.%s = %v, want %v (%s)", env.Name, k, data[k], v, env.Data)
					}
				}
			})
		}
		var log domain.List[access.Scan]
		s.api.MustDo(http.MethodGet, "/projects/demo/access/scans?limit=100", s.api.User, nil, 200, &log)
		if len(log.Data) != 8 || log.Data[0].Direction != "out" || log.Data[7].CredentialValue != "VIP-1" || !log.Data[7].Granted {
			t.Fatalf("scan log (newest first) %+v", log.Data)
		}
		if log.Data[6].Attendee != nil || log.Data[6].Reason == nil || *log.Data[6].Reason != "unknown_credential" {
			t.Fatalf("unknown credential logged as %+v", log.Data[6])
		}
	}, migrations()...)
}

func TestZoneOccupancyCountsGrantedInsMinusOuts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newSite(t, db)
		s.scan(t, "VIP-1", s.gateA.ID, "in")
		s.scan(t, "JIM-1", s.gateA.ID, "in")  // denied: not counted
		s.scan(t, "NOPE", s.gateA.ID, "in")   // denied: not counted
		s.scan(t, "JIM-1", s.gateB.ID, "in")  // other zone
		s.scan(t, "VIP-1", s.gateA.ID, "in")  // re-entry counts again
		s.scan(t, "VIP-1", s.gateA.ID, "out") // one leaves
		var o access.Occupancy
		s.api.MustDo(http.MethodGet, fmt.Sprintf("/projects/demo/access/zones/%d/occupancy", s.hallA.ID), s.api.User, nil, 200, &o)
		if o != (access.Occupancy{AccessZoneID: s.hallA.ID, In: 2, Out: 1, Occupancy: 1}) {
			t.Fatalf("hall A occupancy %+v", o)
		}
		s.api.MustDo(http.MethodGet, fmt.Sprintf("/projects/demo/access/zones/%d/occupancy", s.hallB.ID), s.api.User, nil, 200, &o)
		if o.Occupancy != 1 {
			t.Fatalf("hall B occupancy %+v", o)
		}
		if r := s.api.Do(http.MethodGet, "/projects/demo/access/zones/999/occupancy", s.api.User, nil); r.Status != 404 {
			t.Fatalf("unknown zone occupancy: %d", r.Status)
		}
	}, migrations()...)
}

func TestScanErrorsWriteNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newSite(t, db)
		api := s.api
		for _, tc := range []struct {
			name   string
			path   string
			token  string
			body   any
			status int
			field  string
		}{
			{"unknown access point", "/projects/demo/access/scans", api.User, map[string]any{"credential_value": "VIP-1", "access_point_id": s.gateB.ID + 10, "direction": "in"}, 404, ""},
			{"bad direction", "/projects/demo/access/scans", api.User, map[string]any{"credential_value": "VIP-1", "access_point_id": s.gateA.ID, "direction": "up"}, 422, "direction"},
			{"no credential", "/projects/demo/access/scans", api.User, map[string]any{"access_point_id": s.gateA.ID, "direction": "in"}, 422, "credential_value"},
			{"no point", "/projects/demo/access/scans", api.User, map[string]any{"credential_value": "VIP-1", "direction": "in"}, 422, "access_point_id"},
			{"unknown project", "/projects/nope/access/scans", api.Admin, map[string]any{"credential_value": "VIP-1", "access_point_id": s.gateA.ID, "direction": "in"}, 404, ""},
			{"kiosk may not add zones", "/projects/demo/access/zones", api.User, map[string]any{"name": "Backstage"}, 403, ""},
			{"point in unknown zone", "/projects/demo/access/points", api.Admin, map[string]any{"name": "G", "access_zone_id": 999}, 404, ""},
			{"credential of unknown attendee", "/projects/demo/access/credentials", api.Admin, map[string]any{"value": "X", "attendee_id": 999}, 404, ""},
			{"duplicate credential value", "/projects/demo/access/credentials", api.Admin, map[string]any{"value": "VIP-OLD", "attendee_id": s.olga}, 409, ""},
			{"rule for nobody", "/projects/demo/access/rules", api.Admin, map[string]any{"access_zone_id": s.hallA.ID}, 422, "attendee_type_id"},
			{"rule window backwards", "/projects/demo/access/rules", api.Admin, map[string]any{"access_zone_id": s.hallA.ID, "attendee_type_id": 3,
				"starts_at": "2024-01-15T12:00:00Z", "ends_at": "2024-01-15T11:00:00Z"}, 422, "ends_at"},
			{"revoke unknown credential", "/projects/demo/access/credentials/999/revoke", api.Admin, nil, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := api.Do(http.MethodPost, tc.path, tc.token, tc.body)
				if r.Status != tc.status || r.Error().Field != tc.field {
					t.Fatalf("status %d field %q, want %d %q: %s", r.Status, r.Error().Field, tc.status, tc.field, r.Body)
				}
			})
		}
		if c := dbtest.Count(t, db, "access_scans"); c != 0 {
			t.Fatalf("refused scans wrote %d rows", c)
		}
		if c := dbtest.Count(t, db, "access_zones") + dbtest.Count(t, db, "access_credentials") + dbtest.Count(t, db, "access_rules"); c != 2+4+3 {
			t.Fatalf("refused configuration changed rows (%d)", c)
		}
		if envs := dbtest.Outbox(t, db); len(envs) != 0 {
			t.Fatalf("refused requests emitted %d events", len(envs))
		}
	}, migrations()...)
}

func TestRetriedScanWithSameKeyIsRecordedOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newSite(t, db)
		a := s.scan(t, "VIP-1", s.gateA.ID, "in", "Idempotency-Key", "kiosk-7-0001")
		b := s.scan(t, "VIP-1", s.gateA.ID, "in", "Idempotency-Key", "kiosk-7-0001")
		if a.ID != b.ID || dbtest.Count(t, db, "access_scans") != 1 || len(dbtest.Outbox(t, db)) != 1 {
			t.Fatalf("retried scan recorded twice: %+v / %+v", a, b)
		}
		var o access.Occupancy
		s.api.MustDo(http.MethodGet, fmt.Sprintf("/projects/demo/access/zones/%d/occupancy", s.hallA.ID), s.api.User, nil, 200, &o)
		if o.Occupancy != 1 {
			t.Fatalf("occupancy after a retried entry = %d, want 1", o.Occupancy)
		}
	}, migrations()...)
}

func TestConfigurationLists(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newSite(t, db)
		var zones domain.List[access.Zone]
		s.api.MustDo(http.MethodGet, "/projects/demo/access/zones?limit=1", s.api.User, nil, 200, &zones)
		if len(zones.Data) != 1 || zones.Data[0].ID != s.hallA.ID || zones.NextCursor == "" {
			t.Fatalf("zones page %+v", zones)
		}
		var zones2 domain.List[access.Zone]
		s.api.MustDo(http.MethodGet, "/projects/demo/access/zones?limit=1&cursor="+zones.NextCursor, s.api.User, nil, 200, &zones2)
		if len(zones2.Data) != 1 || zones2.Data[0].ID != s.hallB.ID || zones2.NextCursor != "" {
			t.Fatalf("zones page 2 %+v", zones2)
		}
		var creds domain.List[access.Credential]
		s.api.MustDo(http.MethodGet, "/projects/demo/access/credentials", s.api.User, nil, 200, &creds)
		if len(creds.Data) != 4 || !creds.Data[3].Revoked || creds.Data[0].Revoked {
			t.Fatalf("credentials %+v", creds.Data)
		}
		var rules domain.List[access.Rule]
		s.api.MustDo(http.MethodGet, "/projects/demo/access/rules", s.api.User, nil, 200, &rules)
		if len(rules.Data) != 3 || rules.Data[1].StartsAt == nil || rules.Data[0].StartsAt != nil {
			t.Fatalf("rules %+v", rules.Data)
		}
		s.api.MustDo(http.MethodDelete, fmt.Sprintf("/projects/demo/access/rules/%d", rules.Data[0].ID), s.api.Admin, nil, 204, nil)
		// Without the VIP rule the VIP is no longer let in.
		if sc := s.scan(t, "VIP-1", s.gateA.ID, "in"); sc.Granted || *sc.Reason != "not_authorized" {
			t.Fatalf("scan after deleting the rule: %+v", sc)
		}
		var points domain.List[access.Point]
		s.api.MustDo(http.MethodGet, "/projects/demo/access/points", s.api.User, nil, 200, &points)
		if len(points.Data) != 2 || points.Data[1].AccessZoneID != s.hallB.ID {
			t.Fatalf("points %+v", points.Data)
		}
	}, migrations()...)
}
