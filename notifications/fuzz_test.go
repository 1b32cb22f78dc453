package notifications_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
	"switchboard/notifications"
)

// FuzzNotificationsBodies sends arbitrary bodies to the notification create
// route (the app backend's admin token) on one SQLite store per fuzz
// process; apitest.FuzzBodies says what must hold for every input. Seeds:
// testdata/fuzz/FuzzNotificationsBodies.
func FuzzNotificationsBodies(f *testing.F) {
	db := dbtest.SQLite(f, notifications.Migrations())
	api := apitest.New(f, db, func(g *echo.Group) { notifications.Routes(g, notifications.NewStore(db), db) })
	apitest.FuzzBodies(f, api, []apitest.Endpoint{
		{Method: http.MethodPost, Path: "/members/42/notifications", Token: api.Admin},
	})
}
