package games_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain/dbtest"
	"switchboard/games"
	"switchboard/internal/apitest"
)

// FuzzGamesBodies sends arbitrary bodies to the game and award create
// routes on one SQLite store per fuzz process; apitest.FuzzBodies says what
// must hold for every input. Seeds: testdata/fuzz/FuzzGamesBodies (the
// fixture attendee is id 1).
func FuzzGamesBodies(f *testing.F) {
	db := dbtest.SQLite(f, migrations()...)
	api := apitest.New(f, db, func(g *echo.Group) { games.Routes(g, newStore(db), db) })
	gm := api.ID("/projects/demo/games", api.Admin, map[string]any{"name": "Expo quest"})
	api.Attendee("Jane", "Smith", nil)
	apitest.FuzzBodies(f, api, []apitest.Endpoint{
		{Method: http.MethodPost, Path: "/projects/demo/games", Token: api.Admin},
		{Method: http.MethodPost, Path: fmt.Sprintf("/projects/demo/games/%d/awards", gm), Token: api.Admin},
	})
}
