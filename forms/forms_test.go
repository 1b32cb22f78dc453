package forms_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/attendees"
	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/forms"
	"switchboard/internal/apitest"
)

// The tests run on the attendees module's own table and lookup: its table
// is what forms's foreign keys name, and its lookup is what cmd/switchboard
// wires in, so a 404 for an unknown attendee is the real one.
func migrations() [][]domain.Migration {
	return [][]domain.Migration{attendees.Migrations(), forms.Migrations()}
}

func newStore(db *domain.DB) *forms.Store { return forms.NewStore(db, attendees.NewStore(db)) }

var survey = map[string]any{
	"title": "Session feedback",
	"fields": []map[string]any{
		{"key": "comment", "label": "Comments", "type": "text"},
		{"key": "rating", "label": "Rating", "type": "number", "required": true},
		{"key": "track", "label": "Track", "type": "choice", "options": []string{"dev", "ops"}, "required": true},
		{"key": "consent", "label": "I agree", "type": "checkbox", "required": true},
		{"key": "newsletter", "label": "Newsletter", "type": "checkbox"},
	},
}

func setup(t *testing.T, db *domain.DB) (*apitest.API, forms.Form, int64) {
	t.Helper()
	api := apitest.New(t, db, func(g *echo.Group) { forms.Routes(g, newStore(db), db) })
	var f forms.Form
	api.MustDo(http.MethodPost, "/projects/demo/forms", api.Admin, survey, http.StatusCreated, &f)
	return api, f, api.Attendee("Jane", "Smith", nil)
}

func TestSubmitAndUpdateEmitFormEvents(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, f, att := setup(t, db)
		base := fmt.Sprintf("/projects/demo/forms/%d/responses", f.ID)
		var r forms.Response
		api.MustDo(http.MethodPost, base, api.User, map[string]any{"attendee_id": att,
			"answers": map[string]any{"rating": 4.5, "track": "dev", "consent": true, "comment": "great"}}, http.StatusCreated, &r)
		var upd forms.Response
		api.MustDo(http.MethodPatch, fmt.Sprintf("%s/%d", base, r.ID), api.User,
			map[string]any{"answers": map[string]any{"rating": 5, "track": "ops", "consent": true}}, http.StatusOK, &upd)
		if string(upd.Answers) != `{"consent":true,"rating":5,"track":"ops"}` {
			t.Fatalf("updated answers %s", upd.Answers)
		}
		envs := dbtest.Outbox(t, db)
		if len(envs) != 2 || envs[0].Name != "FormResponseCreated" || envs[1].Name != "FormResponseUpdated" {
			t.Fatalf("events %+v", envs)
		}
		for i, op := range []string{"v1.project.forms.responses.store", "v1.project.forms.responses.update"} {
			if envs[i].TriggeredBy == nil || envs[i].TriggeredBy.OperationID != op {
				t.Fatalf("%s x-triggered-by %+v, want %s", envs[i].Name, envs[i].TriggeredBy, op)
			}
			if ch := envs[i].Scope.ChannelNames(); len(ch) != 1 || ch[0] != "dashboard.project.demo.forms" {
				t.Fatalf("%s routed to %v", envs[i].Name, ch)
			}
		}
		var created map[string]any
		if err := json.Unmarshal(envs[0].Data, &created); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"form_id": float64(f.ID), "response_id": float64(r.ID), "attendee_id": float64(att),
			"answers": map[string]any{"comment": "great", "consent": true, "rating": 4.5, "track": "dev"}}
		for k, v := range want {
			if fmt.Sprint(created[k]) != fmt.Sprint(v) {
				t.Fatalf("FormResponseCreated.%s = %v, want %v (%s)", k, created[k], v, envs[0].Data)
			}
		}
		if _, ok := created["submitted_at"].(string); !ok {
			t.Fatalf("FormResponseCreated lacks submitted_at: %s", envs[0].Data)
		}
		tb, _ := created["x-triggered-by"].(map[string]any)
		if tb["operation_id"] != "v1.project.forms.responses.store" {
			t.Fatalf("x-triggered-by in data: %s", envs[0].Data)
		}

		var list domain.List[forms.Response]
		api.MustDo(http.MethodGet, base, api.User, nil, http.StatusOK, &list)
		if len(list.Data) != 1 || list.Data[0].ID != r.ID || string(list.Data[0].Answers) != string(upd.Answers) {
			t.Fatalf("responses %+v", list.Data)
		}
	}, migrations()...)
}

func TestResponseValidationNamesTheFieldAndWritesNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, f, att := setup(t, db)
		base := fmt.Sprintf("/projects/demo/forms/%d/responses", f.ID)
		ok := map[string]any{"rating": 3, "track": "dev", "consent": true}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range ok {
				m[kk] = vv
			}
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		for _, tc := range []struct {
			name   string
			path   string
			body   any
			status int
			field  string
		}{
			{"missing required number", base, map[string]any{"attendee_id": att, "answers": with("rating", nil)}, 422, "answers.rating"},
			{"number as string", base, map[string]any{"attendee_id": att, "answers": with("rating", "5")}, 422, "answers.rating"},
			{"choice not an option", base, map[string]any{"attendee_id": att, "answers": with("track", "sales")}, 422, "answers.track"},
			{"required checkbox unchecked", base, map[string]any{"attendee_id": att, "answers": with("consent", false)}, 422, "answers.consent"},
			{"checkbox not bool", base, map[string]any{"attendee_id": att, "answers": with("newsletter", "yes")}, 422, "answers.newsletter"},
			{"text not string", base, map[string]any{"attendee_id": att, "answers": with("comment", 7)}, 422, "answers.comment"},
			{"unknown field", base, map[string]any{"attendee_id": att, "answers": with("shoe_size", 42)}, 422, "answers.shoe_size"},
			{"answers not object", base, map[string]any{"attendee_id": att, "answers": []int{1}}, 422, "answers"},
			{"no attendee", base, map[string]any{"answers": ok}, 422, "attendee_id"},
			{"unknown attendee", base, map[string]any{"attendee_id": att + 50, "answers": ok}, 404, ""},
			{"unknown form", fmt.Sprintf("/projects/demo/forms/%d/responses", f.ID+50), map[string]any{"attendee_id": att, "answers": ok}, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := api.Do(http.MethodPost, tc.path, api.User, tc.body)
				if r.Status != tc.status || r.Error().Field != tc.field {
					t.Fatalf("status %d field %q, want %d %q: %s", r.Status, r.Error().Field, tc.status, tc.field, r.Body)
				}
			})
		}
		// Updates of unknown responses, and invalid updates, are refused too.
		if r := api.Do(http.MethodPatch, base+"/999", api.User, map[string]any{"answers": ok}); r.Status != 404 {
			t.Fatalf("update unknown response: %d", r.Status)
		}
		if c := dbtest.Count(t, db, "form_responses"); c != 0 {
			t.Fatalf("refused responses wrote %d rows", c)
		}
		if envs := dbtest.Outbox(t, db); len(envs) != 0 {
			t.Fatalf("refused responses emitted %d events", len(envs))
		}
	}, migrations()...)
}

func TestFormDefinitionValidation(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, _, _ := setup(t, db)
		for _, tc := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"no title", map[string]any{"fields": survey["fields"]}, "title"},
			{"no fields", map[string]any{"title": "x"}, "fields"},
			{"bad type", map[string]any{"title": "x", "fields": []map[string]any{{"key": "a", "label": "A", "type": "date"}}}, "fields[0].type"},
			{"bad key", map[string]any{"title": "x", "fields": []map[string]any{{"key": "A B", "label": "A", "type": "text"}}}, "fields[0].key"},
			{"duplicate key", map[string]any{"title": "x", "fields": []map[string]any{{"key": "a", "label": "A", "type": "text"}, {"key": "a", "label": "B", "type": "text"}}}, "fields[1].key"},
			{"choice without options", map[string]any{"title": "x", "fields": []map[string]any{{"key": "a", "label": "A", "type": "choice"}}}, "fields[0].options"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := api.Do(http.MethodPost, "/projects/demo/forms", api.Admin, tc.body)
				if r.Status != 422 || r.Error().Field != tc.field {
					t.Fatalf("status %d field %q, want 422 %q: %s", r.Status, r.Error().Field, tc.field, r.Body)
				}
			})
		}
		if c := dbtest.Count(t, db, "forms"); c != 1 {
			t.Fatalf("%d forms, want only the valid one", c)
		}
	}, migrations()...)
}

func TestRetriedSubmissionWithSameKeyStoresOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, f, att := setup(t, db)
		base := fmt.Sprintf("/projects/demo/forms/%d/responses", f.ID)
		body := map[string]any{"attendee_id": att, "answers": map[string]any{"rating": 1, "track": "ops", "consent": true}}
		a := api.MustDo(http.MethodPost, base, api.User, body, http.StatusCreated, nil, "Idempotency-Key", "r1")
		b := api.MustDo(http.MethodPost, base, api.User, body, http.StatusCreated, nil, "Idempotency-Key", "r1")
		if string(a.Body) != string(b.Body) {
			t.Fatalf("replay differs: %s vs %s", a.Body, b.Body)
		}
		if c := dbtest.Count(t, db, "form_responses"); c != 1 {
			t.Fatalf("%d responses, want 1", c)
		}
		if envs := dbtest.Outbox(t, db); len(envs) != 1 {
			t.Fatalf("%d events, want 1", len(envs))
		}
		var page1, page2 domain.List[forms.Response]
		api.MustDo(http.MethodPost, base, api.User, body, http.StatusCreated, nil, "Idempotency-Key", "r2")
		api.MustDo(http.MethodGet, base+"?limit=1", api.User, nil, http.StatusOK, &page1)
		api.MustDo(http.MethodGet, base+"?limit=1&cursor="+page1.NextCursor, api.User, nil, http.StatusOK, &page2)
		if len(page1.Data) != 1 || len(page2.Data) != 1 || page1.Data[0].ID >= page2.Data[0].ID || page2.NextCursor != "" {
			t.Fatalf("pages %+v / %+v", page1, page2)
		}
	}, migrations()...)
}
