package attendees_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/attendees"
	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
)

// FuzzAttendeesBodies sends arbitrary bodies to the attendee create and
// update routes on one SQLite store per fuzz process; apitest.FuzzBodies
// says what must hold for every input. Seeds: testdata/fuzz/FuzzAttendeesBodies.
func FuzzAttendeesBodies(f *testing.F) {
	db := dbtest.SQLite(f, attendees.Migrations())
	api := apitest.New(f, db, func(g *echo.Group) { attendees.Routes(g, attendees.NewStore(db), db) })
	id := api.Attendee("Jane", "Smith", nil)
	apitest.FuzzBodies(f, api, []apitest.Endpoint{
		{Method: http.MethodPost, Path: "/projects/demo/attendees", Token: api.User},
		{Method: http.MethodPatch, Path: fmt.Sprintf("/projects/demo/attendees/%d", id), Token: api.User},
	})
}
