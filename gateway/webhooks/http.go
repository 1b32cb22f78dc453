package webhooks

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers the deliveries resource on g (an authenticated group):
// GET /webhooks/deliveries?status=pending|sent|failed (paginated), GET
// /webhooks/deliveries/{id} with its attempts, POST .../{id}/retry. All
// need an admin token.
func Routes(g *echo.Group, q *Queue, s *Sender) {
	admin := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cl := domain.ClaimsFrom(c.Request().Context()); cl == nil || !cl.Admin {
				return domain.Forbidden("webhook deliveries need an admin token")
			}
			return next(c)
		}
	}
	g.GET("/webhooks/deliveries", func(c echo.Context) error {
		status := c.QueryParam("status")
		switch status {
		case "", StatusPending, StatusSent, StatusFailed:
		default:
			return domain.Invalid("status", "must be pending, sent or failed")
		}
		p, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := q.List(c.Request().Context(), status, p)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, admin)
	g.GET("/webhooks/deliveries/:id", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "webhook delivery")
		if err != nil {
			return err
		}
		d, err := q.Get(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, d)
	}, admin)
	g.POST("/webhooks/deliveries/:id/retry", func(c echo.Context) error {
		id, err := domain.IDParam(c, "id", "webhook delivery")
		if err != nil {
			return err
		}
		d, err := q.Retry(c.Request().Context(), id, time.Now())
		if err != nil {
			return err
		}
		if s != nil {
			s.Wake()
		}
		return c.JSON(http.StatusOK, d)
	}, admin)
}
