package access_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/access"
	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
)

// FuzzAccessBodies sends arbitrary bodies to the access routes that take
// one (zones, points, credentials, rules, scans) on one SQLite store per
// fuzz process; apitest.FuzzBodies says what must hold for every input.
// Seeds: testdata/fuzz/FuzzAccessBodies. The fixture ids are 1 (zone, point,
// attendee) and the credential value is "BADGE-1", so seeds can name them.
func FuzzAccessBodies(f *testing.F) {
	db := dbtest.SQLite(f, migrations()...)
	api := apitest.New(f, db, func(g *echo.Group) { access.Routes(g, newStore(db), db) })
	base := "/projects/demo/access"
	zone := api.ID(base+"/zones", api.Admin, map[string]any{"name": "Hall A"})
	api.ID(base+"/points", api.Admin, map[string]any{"name": "Gate A", "access_zone_id": zone})
	att := api.Attendee("Vera", "Vip", ptr[int64](1))
	api.ID(base+"/credentials", api.Admin, map[string]any{"attendee_id": att, "value": "BADGE-1"})
	eps := []apitest.Endpoint{}
	for _, p := range []string{"/zones", "/points", "/credentials", "/rules", "/scans"} {
		eps = append(eps, apitest.Endpoint{Method: http.MethodPost, Path: base + p, Token: api.Admin})
	}
	apitest.FuzzBodies(f, api, eps)
}
