package attendees

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers the attendees resource under /projects/:slug/attendees.
// g must already verify the bearer (domain.Authn).
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	r := g.Group("/projects/:slug/attendees")
	r.POST("", func(c echo.Context) error {
		var in Input
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		a, err := s.Create(c.Request().Context(), c.Param("slug"), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, a)
	}, domain.Op("v1.project.attendees.store"), domain.Idempotent(db))

	r.GET("", func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.List(c.Request().Context(), c.Param("slug"), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.attendees.index"))

	r.GET("/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "attendee")
		if err != nil {
			return err
		}
		a, err := s.Get(c.Request().Context(), c.Param("slug"), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, a)
	}, domain.Op("v1.project.attendees.show"))

	r.PATCH("/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "attendee")
		if err != nil {
			return err
		}
		var in Input
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		a, err := s.Update(c.Request().Context(), c.Param("slug"), id, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, a)
	}, domain.Op("v1.project.attendees.update"))

	r.DELETE("/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "attendee")
		if err != nil {
			return err
		}
		if err := s.Delete(c.Request().Context(), c.Param("slug"), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}, domain.Op("v1.project.attendees.destroy"))
}
