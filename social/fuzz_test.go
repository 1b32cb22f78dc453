package social_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
	"switchboard/social"
)

// FuzzSocialBodies sends arbitrary bodies to the stream and post create
// routes on one SQLite store per fuzz process; apitest.FuzzBodies says what
// must hold for every input. Seeds: testdata/fuzz/FuzzSocialBodies.
func FuzzSocialBodies(f *testing.F) {
	db := dbtest.SQLite(f, social.Migrations())
	api := apitest.New(f, db, func(g *echo.Group) { social.Routes(g, social.NewStore(db), db) })
	st := api.ID("/projects/demo/social/streams", api.Admin, map[string]any{"name": "Main stage"})
	apitest.FuzzBodies(f, api, []apitest.Endpoint{
		{Method: http.MethodPost, Path: "/projects/demo/social/streams", Token: api.Admin},
		{Method: http.MethodPost, Path: fmt.Sprintf("/projects/demo/social/streams/%d/posts", st), Token: api.User},
	})
}
