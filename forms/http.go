package forms

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers forms under /projects/:slug/forms. g must already verify
// the bearer (domain.Authn).
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	r := g.Group("/projects/:slug/forms")
	r.POST("", func(c echo.Context) error {
		var in FormInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		f, err := s.CreateForm(c.Request().Context(), c.Param("slug"), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, f)
	}, domain.Op("v1.project.forms.store"), domain.Idempotent(db))

	r.GET("", func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListForms(c.Request().Context(), c.Param("slug"), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.forms.index"))

	r.GET("/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "form")
		if err != nil {
			return err
		}
		f, err := s.GetForm(c.Request().Context(), c.Param("slug"), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, f)
	}, domain.Op("v1.project.forms.show"))

	r.POST("/:id/responses", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "form")
		if err != nil {
			return err
		}
		var in ResponseInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		resp, err := s.Submit(c.Request().Context(), c.Param("slug"), id, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, resp)
	}, domain.Op("v1.project.forms.responses.store"), domain.Idempotent(db))

	r.GET("/:id/responses", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "form")
		if err != nil {
			return err
		}
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListResponses(c.Request().Context(), c.Param("slug"), id, page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.forms.responses.index"))

	r.GET("/:id/responses/:response", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "form")
		if err != nil {
			return err
		}
		rid, err := domain.IDParam(c, "response", "response")
		if err != nil {
			return err
		}
		resp, err := s.GetResponse(c.Request().Context(), c.Param("slug"), id, rid)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, resp)
	}, domain.Op("v1.project.forms.responses.show"))

	r.PATCH("/:id/responses/:response", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "form")
		if err != nil {
			return err
		}
		rid, err := domain.IDParam(c, "response", "response")
		if err != nil {
			return err
		}
		var in ResponseInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		resp, err := s.Update(c.Request().Context(), c.Param("slug"), id, rid, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, resp)
	}, domain.Op("v1.project.forms.responses.update"))
}
