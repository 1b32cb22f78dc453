package domain

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// quietPaths are polled by load balancers and Prometheus every few
// seconds: their access lines are at debug level, or an idle server's
// log would be nothing else.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// accessLog writes one line per request once its response is written:
// method, path, status, duration, request id and operation id, at info
// level (debug for quietPaths and WebSocket upgrades, whose connect and
// disconnect lines the gateway writes). The path is the URL's path only:
// query strings carry tokens (/cable?token=...).
//
// It renders a handler's error itself (echo.Context.Error) so the line
// has the status the client got; the error handler skips the committed
// response when the error reaches it again.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req := c.Request()
			level := slog.LevelInfo
			upgrade := req.Header.Get("Upgrade") != "" && !c.Response().Committed
			if quietPaths[req.URL.Path] || upgrade {
				level = slog.LevelDebug
			}
			ctx := context.Background()
			if !log.Enabled(ctx, level) {
				return err
			}
			status := c.Response().Status
			if upgrade {
				status = http.StatusSwitchingProtocols
			}
			rid, _ := c.Get("request_id").(string)
			op, _ := c.Get("operation_id").(string)
			log.LogAttrs(ctx, level, "request",
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", rid),
				slog.String("operation_id", op))
			return err
		}
	}
}
