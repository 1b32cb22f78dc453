package notifications

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers the notification resources. g must already verify the
// bearer (domain.Authn). Members read their own notifications; the app's
// backend (an admin token) creates them for any member.
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	g.POST("/members/:member/notifications", func(c echo.Context) error {
		var in Input
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		n, err := s.Create(c.Request().Context(), c.Param("member"), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, n)
	}, domain.Op("v1.member.notifications.store"), domain.Idempotent(db))

	g.GET("/notifications", func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.List(c.Request().Context(), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.notifications.index"))

	g.GET("/notifications/count", func(c echo.Context) error {
		n, err := s.Count(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, UpdateNewNotificationCount{NewNotificationsCount: n})
	}, domain.Op("v1.notifications.count"))

	g.POST("/notifications/read-all", func(c echo.Context) error {
		if err := s.ReadAll(c.Request().Context()); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ResetNewNotificationCount{})
	}, domain.Op("v1.notifications.read_all"))

	g.POST("/notifications/:id/read", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "notification")
		if err != nil {
			return err
		}
		n, err := s.Read(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, n)
	}, domain.Op("v1.notifications.read"))
}
