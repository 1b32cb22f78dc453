package main

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/internal/listener"
	"switchboard/metrics"
	"switchboard/outbox"
)

// serveMetrics sets up /metrics as the configuration says (docs/metrics.md):
// nothing unless SWITCHBOARD_METRICS_ADDR or SWITCHBOARD_METRICS_TOKEN is
// set. Metrics tell who uses the server how much and name every operation,
// so they are not served to the world by default.
//
//   - SWITCHBOARD_METRICS_ADDR: a listener of its own, without
//     authentication, like SWITCHBOARD_DEBUG_ADDR: bind it to a private
//     interface and let only Prometheus reach it.
//   - SWITCHBOARD_METRICS_TOKEN: /metrics on the main listener, for
//     platforms that expose one port, to requests bearing the token.
//
// With either, HTTP requests are measured (a middleware on e). stop closes
// the metrics listener.
func serveMetrics(cfg config, e *echo.Echo, src metrics.Sources, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsAddr == "" && cfg.MetricsToken == "" {
		return func() {}, nil
	}
	src.Logger = log
	x := metrics.New(src)
	e.Pre(x.Middleware())
	if cfg.MetricsToken != "" {
		e.GET("/metrics", echo.WrapHandler(x.Handler()), metricsBearer(cfg.MetricsToken))
	}
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("SWITCHBOARD_METRICS_ADDR: listen %s: %w", cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", x.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(listener.WaitForData(ln, freshConnWait)) }()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}

// metricsBearer lets through requests with "Authorization: Bearer token",
// compared in constant time; others get 401.
func metricsBearer(token string) echo.MiddlewareFunc {
	want := []byte(token)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got, ok := domain.BearerToken(c.Request())
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				return domain.ErrUnauthorized
			}
			return next(c)
		}
	}
}

// relayReadiness is the relay's part of /readyz: what to report and
// whether the node is ready. In cluster mode a node that does not hold the
// relay claim stands by, which is ready; otherwise the relay must be
// running, not retrying a failure, and no event handed over may have
// waited longer than maxLag.
func relayReadiness(st *outbox.Status, cluster, leading bool, maxLag time.Duration, now time.Time) (string, bool) {
	if cluster && !leading {
		return "standby (another node relays)", true
	}
	if !st.Running() {
		if f := st.Failing(); f != "" {
			return "starting: " + f, false
		}
		// A single node delivers nothing until its relay runs. A cluster
		// node taking over the relay still delivers the stream to its own
		// connections meanwhile.
		return "starting", cluster
	}
	if f := st.Failing(); f != "" {
		return "retrying: " + f, false
	}
	if lag := st.Lag(now); lag > maxLag {
		return fmt.Sprintf("behind: an event has waited %s (limit %s)", lag.Round(time.Millisecond), maxLag), false
	}
	return "running", true
}
