package games_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/attendees"
	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/games"
	"switchboard/internal/apitest"
)

func setup(t *testing.T, db *domain.DB) (*apitest.API, games.Game) {
	t.Helper()
	api := apitest.New(t, db, func(g *echo.Group) { games.Routes(g, newStore(db), db) })
	var gm games.Game
	api.MustDo(http.MethodPost, "/projects/demo/games", api.Admin, map[string]any{"name": "Expo quest"}, http.StatusCreated, &gm)
	return api, gm
}

// The tests run on the attendees module's own table and lookup: its table
// is what games's foreign keys name, and its lookup is what cmd/switchboard
// wires in, so a 404 for an unknown attendee is the real one.
func migrations() [][]domain.Migration {
	return [][]domain.Migration{attendees.Migrations(), games.Migrations()}
}

func newStore(db *domain.DB) *games.Store { return games.NewStore(db, attendees.NewStore(db)) }

func awards(t *testing.T, db *domain.DB) []games.PointsAwarded {
	t.Helper()
	var out []games.PointsAwarded
	for _, env := range dbtest.Outbox(t, db) {
		if env.Name != "PointsAwarded" {
			t.Fatalf("unexpected event %s", env.Name)
		}
		if got := env.Scope.ChannelNames(); len(got) != 1 || got[0] != "dashboard.project.demo.games" {
			t.Fatalf("PointsAwarded routed to %v", got)
		}
		if env.TriggeredBy == nil || env.TriggeredBy.OperationID != "v1.project.games.awards.store" || env.TriggeredBy.RequestID == "" {
			t.Fatalf("PointsAwarded x-triggered-by = %+v", env.TriggeredBy)
		}
		var ev games.PointsAwarded
		if err := json.Unmarshal(env.Data, &ev); err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		_ = json.Unmarshal(env.Data, &raw)
		for _, k := range []string{"game_id", "attendee_id", "points", "reason", "total_points", "awarded_at", "x-triggered-by"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("PointsAwarded lacks %q: %s", k, env.Data)
			}
		}
		out = append(out, ev)
	}
	return out
}

// Fifty awards race for one attendee's score row: the final total must be
// exact and every event must carry a distinct running total, i.e. the totals
// are exactly 1..50 times the points (no update lost, none read twice).
func TestConcurrentAwardsKeepAnExactRunningTotal(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, gm := setup(t, db)
		att := api.Attendee("Jane", "Smith", nil)
		const n, points = 50, 7
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := api.Do(http.MethodPost, fmt.Sprintf("/projects/demo/games/%d/awards", gm.ID), api.Admin,
					map[string]any{"attendee_id": att, "points": points, "reason": "session_attendance"})
				if r.Status != http.StatusCreated {
					errs <- fmt.Sprintf("status %d: %s", r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
		evs := awards(t, db)
		if len(evs) != n {
			t.Fatalf("%d PointsAwarded events, want %d", len(evs), n)
		}
		totals := make([]int, 0, n)
		for _, ev := range evs {
			if ev.GameID != gm.ID || ev.AttendeeID != att || ev.Points != points || ev.Reason != "session_attendance" {
				t.Fatalf("unexpected event %+v", ev)
			}
			totals = append(totals, int(ev.TotalPoints))
		}
		sort.Ints(totals)
		for i, tot := range totals {
			if tot != (i+1)*points {
				t.Fatalf("sorted totals %v: position %d is %d, want %d", totals, i, tot, (i+1)*points)
			}
		}
		var board domain.List[games.Standing]
		api.MustDo(http.MethodGet, fmt.Sprintf("/projects/demo/games/%d/leaderboard", gm.ID), api.User, nil, http.StatusOK, &board)
		if len(board.Data) != 1 || board.Data[0].TotalPoints != n*points || board.Data[0].Rank != 1 || board.Data[0].FirstName != "Jane" {
			t.Fatalf("leaderboard %+v, want Jane at %d", board.Data, n*points)
		}
		if c := dbtest.Count(t, db, "game_awards"); c != n {
			t.Fatalf("%d award rows, want %d", c, n)
		}
	}, migrations()...)
}

func TestRetriedAwardWithSameIdempotencyKeyAwardsOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, gm := setup(t, db)
		att := api.Attendee("Jane", "Smith", nil)
		path := fmt.Sprintf("/projects/demo/games/%d/awards", gm.ID)
		body := map[string]any{"attendee_id": att, "points": 50, "reason": "booth_visit"}
		first := api.MustDo(http.MethodPost, path, api.Admin, body, http.StatusCreated, nil, "Idempotency-Key", "award-1")
		second := api.MustDo(http.MethodPost, path, api.Admin, body, http.StatusCreated, nil, "Idempotency-Key", "award-1")
		if string(first.Body) != string(second.Body) {
			t.Fatalf("replay differs:\n%s\n%s", first.Body, second.Body)
		}
		if second.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("second response is not marked as replayed")
		}
		if c := dbtest.Count(t, db, "game_awards"); c != 1 {
			t.Fatalf("%d award rows after a retry, want 1", c)
		}
		if evs := awards(t, db); len(evs) != 1 || evs[0].TotalPoints != 50 {
			t.Fatalf("events after a retry: %+v, want one with total 50", evs)
		}
		// The same key with another body is a client bug, not a retry.
		body["points"] = 60
		r := api.Do(http.MethodPost, path, api.Admin, body, "Idempotency-Key", "award-1")
		if r.Status != http.StatusUnprocessableEntity || r.Error().Code != "idempotency_key_reused" {
			t.Fatalf("reused key: %d %s", r.Status, r.Body)
		}
		// A new key is a new award.
		var a games.Award
		api.MustDo(http.MethodPost, path, api.Admin, body, http.StatusCreated, &a, "Idempotency-Key", "award-2")
		if a.TotalPoints != 110 {
			t.Fatalf("total after second award = %d, want 110", a.TotalPoints)
		}
	}, migrations()...)
}

func TestAwardErrorsWriteNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, gm := setup(t, db)
		att := api.Attendee("Jane", "Smith", nil)
		other := api.Token(domain.Claims{Projects: []string{"elsewhere"}}, "9")
		awardsOf := func(id int64) string { return fmt.Sprintf("/projects/demo/games/%d/awards", id) }
		for _, tc := range []struct {
			name   string
			path   string
			token  string
			body   any
			status int
			field  string
		}{
			{"unknown game", awardsOf(gm.ID + 100), api.Admin, map[string]any{"attendee_id": att, "points": 5, "reason": "x"}, 404, ""},
			{"non-numeric game", "/projects/demo/games/abc/awards", api.Admin, map[string]any{"attendee_id": att, "points": 5, "reason": "x"}, 404, ""},
			{"unknown attendee", awardsOf(gm.ID), api.Admin, map[string]any{"attendee_id": att + 100, "points": 5, "reason": "x"}, 404, ""},
			{"unknown project", "/projects/nope/games/1/awards", api.Admin, map[string]any{"attendee_id": att, "points": 5, "reason": "x"}, 404, ""},
			{"foreign project token", awardsOf(gm.ID), other, map[string]any{"attendee_id": att, "points": 5, "reason": "x"}, 403, ""},
			{"no attendee", awardsOf(gm.ID), api.Admin, map[string]any{"points": 5, "reason": "x"}, 422, "attendee_id"},
			{"zero points", awardsOf(gm.ID), api.Admin, map[string]any{"attendee_id": att, "points": 0, "reason": "x"}, 422, "points"},
			{"huge points", awardsOf(gm.ID), api.Admin, map[string]any{"attendee_id": att, "points": games.MaxPoints + 1, "reason": "x"}, 422, "points"},
			{"no reason", awardsOf(gm.ID), api.Admin, map[string]any{"attendee_id": att, "points": 5}, 422, "reason"},
			{"bad json", awardsOf(gm.ID), api.Admin, `{"points":`, 400, ""},
			{"no token", awardsOf(gm.ID), "", map[string]any{"attendee_id": att, "points": 5, "reason": "x"}, 401, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := api.Do(http.MethodPost, tc.path, tc.token, tc.body, "Idempotency-Key", "k-"+tc.name)
				if r.Status != tc.status || r.Error().Field != tc.field {
					t.Fatalf("status %d field %q, want %d %q: %s", r.Status, r.Error().Field, tc.status, tc.field, r.Body)
				}
			})
		}
		if c := dbtest.Count(t, db, "game_awards") + dbtest.Count(t, db, "game_scores"); c != 0 {
			t.Fatalf("failed awards wrote %d rows", c)
		}
		if evs := dbtest.Outbox(t, db); len(evs) != 0 {
			t.Fatalf("failed awards emitted %d events", len(evs))
		}
		// A failed attempt releases its idempotency key: the fixed retry works.
		api.MustDo(http.MethodPost, awardsOf(gm.ID), api.Admin, map[string]any{"attendee_id": att, "points": 5, "reason": "x"},
			http.StatusCreated, nil, "Idempotency-Key", "k-unknown attendee")
	}, migrations()...)
}

func TestLeaderboardOrdersAndPages(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, gm := setup(t, db)
		path := fmt.Sprintf("/projects/demo/games/%d", gm.ID)
		a := api.Attendee("Ann", "A", nil)
		b := api.Attendee("Bob", "B", nil)
		c := api.Attendee("Cid", "C", nil)
		for _, aw := range []struct{ who, pts int64 }{{a, 10}, {b, 30}, {c, 10}, {a, 5}, {b, -5}} {
			api.MustDo(http.MethodPost, path+"/awards", api.Admin, map[string]any{"attendee_id": aw.who, "points": aw.pts, "reason": "r"}, http.StatusCreated, nil)
		}
		var p1, p2 domain.List[games.Standing]
		api.MustDo(http.MethodGet, path+"/leaderboard?limit=2", api.User, nil, http.StatusOK, &p1)
		if len(p1.Data) != 2 || p1.NextCursor == "" {
			t.Fatalf("first page %+v", p1)
		}
		api.MustDo(http.MethodGet, path+"/leaderboard?limit=2&cursor="+p1.NextCursor, api.User, nil, http.StatusOK, &p2)
		got := append(p1.Data, p2.Data...)
		want := []games.Standing{{1, b, "Bob", "B", 25}, {2, a, "Ann", "A", 15}, {3, c, "Cid", "C", 10}}
		if len(got) != len(want) || p2.NextCursor != "" {
			t.Fatalf("leaderboard %+v (next %q), want %+v", got, p2.NextCursor, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("row %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		var hist domain.List[games.Award]
		api.MustDo(http.MethodGet, path+"/awards?limit=10", api.User, nil, http.StatusOK, &hist)
		if len(hist.Data) != 5 || hist.Data[0].Points != -5 || hist.Data[0].TotalPoints != 25 {
			t.Fatalf("award history (newest first) %+v", hist.Data)
		}
		if r := api.Do(http.MethodGet, "/projects/demo/games/999/leaderboard", api.User, nil); r.Status != http.StatusNotFound {
			t.Fatalf("unknown game leaderboard: %d", r.Status)
		}
		if r := api.Do(http.MethodGet, path+"/leaderboard?limit=0", api.User, nil); r.Status != 422 || r.Error().Field != "limit" {
			t.Fatalf("limit=0: %d %s", r.Status, r.Body)
		}
	}, migrations()...)
}
