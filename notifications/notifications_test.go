package notifications_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/notifications"
)

func as(member string, admin bool) context.Context {
	return domain.WithClaims(context.Background(), &domain.Claims{Admin: admin, RegisteredClaims: jwt.RegisteredClaims{Subject: member}})
}

func code(err error) string {
	if e, ok := domain.AsError(err); ok {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "internal: " + err.Error()
}

// want is one event an action must leave in the outbox:
// its name, its one channel and new_notifications_count (-1: none).
type want struct {
	name    string
	channel string
	count   int
}

func TestBadgeCountFollowsTheDatabase(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := notifications.NewStore(db)
		seen := 0
		expect := func(t *testing.T, ws ...want) []domain.Envelope {
			t.Helper()
			all := dbtest.Outbox(t, db)
			got := all[seen:]
			seen = len(all)
			if len(got) != len(ws) {
				t.Fatalf("emitted %d events, want %d", len(got), len(ws))
			}
			for i, w := range ws {
				ch := got[i].Scope.ChannelNames()
				if got[i].Name != w.name || len(ch) != 1 || ch[0] != w.channel {
					t.Fatalf("event %d = %s on %v, want %s on %s", i, got[i].Name, ch, w.name, w.channel)
				}
				if w.count >= 0 {
					var d struct {
						N *int `json:"new_notifications_count"`
					}
					if err := json.Unmarshal(got[i].Data, &d); err != nil || d.N == nil || *d.N != w.count {
						t.Fatalf("%s data %s, want new_notifications_count %d", w.name, got[i].Data, w.count)
					}
				}
			}
			return got
		}
		const ch42 = "notification-channel-42"
		link := "/posts/1"
		in := notifications.Input{Type: "mention", Title: "Jane mentioned you", Body: "hi", Link: &link,
			Actor: &notifications.Actor{ID: "7", Name: "Jane"}}

		n1, err := s.Create(as("backend", true), "42", in)
		if err != nil {
			t.Fatal(err)
		}
		envs := expect(t, want{"newNotification", ch42, -1}, want{"updateNewNotificationCount", ch42, 1})
		var got map[string]any
		if err := json.Unmarshal(envs[0].Data, &got); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "community_member_id", "type", "title", "body", "link", "actor", "read_at", "created_at"} {
			if _, ok := got[k]; !ok {
				t.Fatalf("newNotification lacks %q: %s", k, envs[0].Data)
			}
		}
		if got["id"].(float64) != float64(n1.ID) || got["title"] != in.Title || got["actor"].(map[string]any)["name"] != "Jane" {
			t.Fatalf("newNotification %s", envs[0].Data)
		}
		// Member ids are numbers, as the frontend's are (=== must match).
		if got["community_member_id"] != 42.0 || got["actor"].(map[string]any)["id"] != 7.0 {
			t.Fatalf("newNotification member ids must be numbers: %s", envs[0].Data)
		}

		if _, err := s.Create(as("backend", true), "42", in); err != nil {
			t.Fatal(err)
		}
		expect(t, want{"newNotification", ch42, -1}, want{"updateNewNotificationCount", ch42, 2})
		// Another member's notification does not move 42's count.
		if _, err := s.Create(as("backend", true), "43", in); err != nil {
			t.Fatal(err)
		}
		expect(t, want{"newNotification", "notification-channel-43", -1}, want{"updateNewNotificationCount", "notification-channel-43", 1})

		// 43 cannot read 42's notification; 42 can, once.
		if _, err := s.Read(as("43", false), n1.ID); code(err) != "not_found" {
			t.Fatalf("foreign read: %v", err)
		}
		r, err := s.Read(as("42", false), n1.ID)
		if err != nil || r.ReadAt == nil {
			t.Fatalf("read: %v %+v", err, r)
		}
		expect(t, want{"updateNewNotificationCount", ch42, 1})
		if _, err := s.Read(as("42", false), n1.ID); err != nil {
			t.Fatal(err)
		}
		expect(t)

		if err := s.ReadAll(as("42", false)); err != nil {
			t.Fatal(err)
		}
		expect(t, want{"resetNewNotificationCount", ch42, 0})
		if n, err := s.Count(as("42", false)); err != nil || n != 0 {
			t.Fatalf("count after read-all = %d, %v", n, err)
		}
		if n, err := s.Count(as("43", false)); err != nil || n != 1 {
			t.Fatalf("43's count = %d, %v; 42's read-all must not touch it", n, err)
		}

		l, err := s.List(as("42", false), domain.Page{Limit: 1})
		if err != nil || len(l.Data) != 1 || l.NextCursor == "" || l.Data[0].ID <= n1.ID {
			t.Fatalf("first page %+v, %v (newest first)", l, err)
		}
	}, notifications.Migrations())
}

func TestCreateIsRefused(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := notifications.NewStore(db)
		ok := notifications.Input{Type: "t", Title: "t", Body: "b"}
		for _, tc := range []struct {
			name   string
			ctx    context.Context
			member string
			in     notifications.Input
			code   string
		}{
			{"member token", as("42", false), "42", ok, "forbidden"},
			{"no claims", context.Background(), "42", ok, "unauthorized"},
			{"bad member id", as("b", true), "a b", ok, "not_found"},
			{"missing title", as("b", true), "42", notifications.Input{Type: "t", Body: "b"}, "validation_failed"},
			{"actor without id", as("b", true), "42", notifications.Input{Type: "t", Title: "t", Body: "b", Actor: &notifications.Actor{Name: "x"}}, "validation_failed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.Create(tc.ctx, tc.member, tc.in); code(err) != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
			})
		}
		if n := len(dbtest.Outbox(t, db)); n != 0 {
			t.Fatalf("refused creates emitted %d events", n)
		}
	}, notifications.Migrations())
}

// Member ids in payloads are JSON numbers when numeric, so a frontend's
// `=== member.id` holds; ids with no numeric form stay strings. Channel
// names keep the text.
func TestMemberIDsOnTheWire(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := notifications.NewStore(db)
		for _, tc := range []struct {
			name, member, actor string
			wantMember          any
			wantActor           any
		}{
			{"numeric ids are numbers", "42", "7", 42.0, 7.0},
			{"other ids stay strings", "u-42", "backend", "u-42", "backend"},
			{"a leading zero keeps the string", "42", "007", 42.0, "007"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := notifications.Input{Type: "t", Title: "t", Body: "b", Actor: &notifications.Actor{ID: domain.MemberID(tc.actor), Name: "A"}}
				n, err := s.Create(as("backend", true), tc.member, in)
				if err != nil {
					t.Fatal(err)
				}
				var envs []domain.Envelope
				for _, e := range dbtest.Outbox(t, db) {
					var d struct {
						ID int64 `json:"id"`
					}
					if e.Name == "newNotification" && json.Unmarshal(e.Data, &d) == nil && d.ID == n.ID {
						envs = append(envs, e)
					}
				}
				if len(envs) != 1 || envs[0].Scope.ChannelNames()[0] != "notification-channel-"+tc.member {
					t.Fatalf("newNotification envelopes %+v", envs)
				}
				var got struct {
					Member any `json:"community_member_id"`
					Actor  struct {
						ID any `json:"id"`
					} `json:"actor"`
				}
				if err := json.Unmarshal(envs[0].Data, &got); err != nil {
					t.Fatal(err)
				}
				if got.Member != tc.wantMember || got.Actor.ID != tc.wantActor {
					t.Fatalf("community_member_id %#v, actor.id %#v; want %#v, %#v (%s)",
						got.Member, got.Actor.ID, tc.wantMember, tc.wantActor, envs[0].Data)
				}
			})
		}
	}, notifications.Migrations())
}
