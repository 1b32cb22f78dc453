package games

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers games under /projects/:slug/games. g must already verify
// the bearer (domain.Authn).
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	r := g.Group("/projects/:slug/games")
	r.POST("", func(c echo.Context) error {
		var in GameInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		gm, err := s.CreateGame(c.Request().Context(), c.Param("slug"), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, gm)
	}, domain.Op("v1.project.games.store"), domain.Idempotent(db))

	r.GET("", func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListGames(c.Request().Context(), c.Param("slug"), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.games.index"))

	r.GET("/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "game")
		if err != nil {
			return err
		}
		gm, err := s.GetGame(c.Request().Context(), c.Param("slug"), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, gm)
	}, domain.Op("v1.project.games.show"))

	r.POST("/:id/awards", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "game")
		if err != nil {
			return err
		}
		var in AwardInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		a, err := s.Award(c.Request().Context(), c.Param("slug"), id, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, a)
	}, domain.Op("v1.project.games.awards.store"), domain.Idempotent(db))

	r.GET("/:id/awards", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "game")
		if err != nil {
			return err
		}
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListAwards(c.Request().Context(), c.Param("slug"), id, page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.games.awards.index"))

	r.GET("/:id/leaderboard", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "game")
		if err != nil {
			return err
		}
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.Leaderboard(c.Request().Context(), c.Param("slug"), id, page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.project.games.leaderboard"))
}
