package access

import (
	"context"

	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers access control under /projects/:slug/access. g must
// already verify the bearer (domain.Authn).
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	r := g.Group("/projects/:slug/access")
	slug := func(c echo.Context) string { return c.Param("slug") }

	r.POST("/zones", create(s.CreateZone), domain.Op("v1.project.access.zones.store"), domain.Idempotent(db))
	r.GET("/zones", index(s.ListZones), domain.Op("v1.project.access.zones.index"))
	r.GET("/zones/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "access zone")
		if err != nil {
			return err
		}
		z, err := s.GetZone(c.Request().Context(), slug(c), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, z)
	}, domain.Op("v1.project.access.zones.show"))
	r.GET("/zones/:id/occupancy", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "access zone")
		if err != nil {
			return err
		}
		o, err := s.Occupancy(c.Request().Context(), slug(c), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, o)
	}, domain.Op("v1.project.access.zones.occupancy"))

	r.POST("/points", create(s.CreatePoint), domain.Op("v1.project.access.points.store"), domain.Idempotent(db))
	r.GET("/points", index(s.ListPoints), domain.Op("v1.project.access.points.index"))

	r.POST("/credentials", create(s.CreateCredential), domain.Op("v1.project.access.credentials.store"), domain.Idempotent(db))
	r.GET("/credentials", index(s.ListCredentials), domain.Op("v1.project.access.credentials.index"))
	r.POST("/credentials/:id/revoke", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "credential")
		if err != nil {
			return err
		}
		cr, err := s.RevokeCredential(c.Request().Context(), slug(c), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, cr)
	}, domain.Op("v1.project.access.credentials.revoke"), domain.Idempotent(db))

	r.POST("/rules", create(s.CreateRule), domain.Op("v1.project.access.rules.store"), domain.Idempotent(db))
	r.GET("/rules", index(s.ListRules), domain.Op("v1.project.access.rules.index"))
	r.DELETE("/rules/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "access rule")
		if err != nil {
			return err
		}
		if err := s.DeleteRule(c.Request().Context(), slug(c), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}, domain.Op("v1.project.access.rules.destroy"))

	// A scan answers 201 whether granted or denied: the scan was recorded
	// either way, and the kiosk reads the decision from the body.
	r.POST("/scans", create(s.Scan), domain.Op("v1.project.access.scans.store"), domain.Idempotent(db))
	r.GET("/scans", index(s.ListScans), domain.Op("v1.project.access.scans.index"))
}

// create is the handler of a POST that binds In and answers 201 with Out.
func create[In, Out any](fn func(ctx context.Context, slug string, in In) (Out, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in In
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		out, err := fn(c.Request().Context(), c.Param("slug"), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, out)
	}
}

// index is the handler of a paged list.
func index[T any](fn func(ctx context.Context, slug string, page domain.Page) (domain.List[T], error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := fn(c.Request().Context(), c.Param("slug"), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}
}
