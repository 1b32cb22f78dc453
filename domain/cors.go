package domain

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// CORS lets pages of the allowed origins call every HTTP route (the REST
// API, /broadcasting/auth, /pusher/user-auth, /api/v1/realtime/token ...).
// It runs before routing (echo's Pre), so a preflight is answered here and
// never reaches bearer auth: a browser sends it without credentials. A
// disallowed origin gets no Access-Control-Allow-Origin, so the browser
// withholds the answer from the page.
func CORS(o Origins) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			origin := req.Header.Get("Origin")
			if origin == "" {
				return next(c)
			}
			h := c.Response().Header()
			h.Add("Vary", "Origin")
			preflight := req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != ""
			if !o.Allowed(origin, req.Host) {
				if preflight {
					return c.JSON(http.StatusForbidden, ErrorBody{Error: &Error{Code: "origin_not_allowed",
						Message: "origin " + origin + " is not in SWITCHBOARD_ALLOWED_ORIGINS"}})
				}
				return next(c)
			}
			h.Set("Access-Control-Allow-Origin", origin)
			if !o.any {
				// Cookies only for listed origins: with "*" any site's
				// page could send the visitor's cookies.
				h.Set("Access-Control-Allow-Credentials", "true")
			}
			if preflight {
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
				allow := req.Header.Get("Access-Control-Request-Headers")
				if allow == "" {
					allow = "Authorization, Content-Type, Idempotency-Key, X-Request-Id, X-Socket-Id"
				}
				h.Set("Access-Control-Allow-Headers", allow)
				h.Set("Access-Control-Max-Age", "600")
				return c.NoContent(http.StatusNoContent)
			}
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, Location")
			return next(c)
		}
	}
}
