package social

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers the social stream under /projects/:slug/social. g must
// already verify the bearer (domain.Authn).
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	r := g.Group("/projects/:slug/social/streams")
	r.POST("", func(c echo.Context) error {
		var in StreamInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		st, err := s.CreateStream(c.Request().Context(), c.Param("slug"), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, st)
	}, domain.Op("v1.project.social.streams.store"), domain.Idempotent(db))

	r.GET("", func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListStreams(c.Request().Context(), c.Param("slug"), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.social.streams.index"))

	r.GET("/:stream", func(c echo.Context) error {
		id, err := domain.IDParam(c, "stream", "stream")
		if err != nil {
			return err
		}
		st, err := s.GetStream(c.Request().Context(), c.Param("slug"), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, st)
	}, domain.Op("v1.project.social.streams.show"))

	r.POST("/:stream/posts", func(c echo.Context) error {
		id, err := domain.IDParam(c, "stream", "stream")
		if err != nil {
			return err
		}
		var in PostInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		p, err := s.CreatePost(c.Request().Context(), c.Param("slug"), id, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, p)
	}, domain.Op("v1.project.social.posts.store"), domain.Idempotent(db))

	r.GET("/:stream/posts", func(c echo.Context) error {
		id, err := domain.IDParam(c, "stream", "stream")
		if err != nil {
			return err
		}
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListPosts(c.Request().Context(), c.Param("slug"), id, page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.social.posts.index"))

	// Hiding is a POST action (not DELETE): the post stays for the record.
	r.POST("/:stream/posts/:post/hide", func(c echo.Context) error {
		sid, err := domain.IDParam(c, "stream", "stream")
		if err != nil {
			return err
		}
		pid, err := domain.IDParam(c, "post", "post")
		if err != nil {
			return err
		}
		p, err := s.Hide(c.Request().Context(), c.Param("slug"), sid, pid)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}, domain.Op("v1.project.social.posts.hide"), domain.Idempotent(db))
}
