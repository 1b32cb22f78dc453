package forms_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain/dbtest"
	"switchboard/forms"
	"switchboard/internal/apitest"
)

// FuzzFormsBodies sends arbitrary bodies to the form create, response
// submit and response update routes on one SQLite store per fuzz process;
// apitest.FuzzBodies says what must hold for every input. Seeds:
// testdata/fuzz/FuzzFormsBodies (the survey of forms_test.go; attendee 1
// has answered it, attendee 2 has not).
func FuzzFormsBodies(f *testing.F) {
	db := dbtest.SQLite(f, migrations()...)
	api := apitest.New(f, db, func(g *echo.Group) { forms.Routes(g, newStore(db), db) })
	form := api.ID("/projects/demo/forms", api.Admin, survey)
	att := api.Attendee("Jane", "Smith", nil)
	api.Attendee("John", "Doe", nil)
	base := fmt.Sprintf("/projects/demo/forms/%d/responses", form)
	resp := api.ID(base, api.User, map[string]any{"attendee_id": att,
		"answers": map[string]any{"rating": 4, "track": "dev", "consent": true}})
	apitest.FuzzBodies(f, api, []apitest.Endpoint{
		{Method: http.MethodPost, Path: "/projects/demo/forms", Token: api.Admin},
		{Method: http.MethodPost, Path: base, Token: api.User},
		{Method: http.MethodPatch, Path: fmt.Sprintf("%s/%d", base, resp), Token: api.User},
	})
}
