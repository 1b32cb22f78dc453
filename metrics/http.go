package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the REST side's metrics, kept here: one counter add and
// one histogram observation per request.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by operation (the operation id of x-triggered-by, else method and route) and status.",
		}, []string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by operation, from the router to the response written.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
	}
}

// Middleware counts every request by operation and status and observes
// its latency. Register it with echo's Pre, so it wraps the router and
// every other middleware: it then sees the route, the operation id that
// domain.Op set, and errors (panics included, once recovered) as the
// status the client got.
func (x *Exporter) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				// Render the error now, so the status is the one the client
				// gets; the error handler skips a committed response when
				// the error reaches it again.
				c.Error(err)
			}
			op := Operation(c)
			x.http.requests.WithLabelValues(op, strconv.Itoa(Status(c))).Inc()
			x.http.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// Operation names a request's operation for the metrics' operation label:
// the operation id domain.Op set ("v1.project.attendees.store"), else the
// method and the route template ("GET /healthz"), else "unmatched" (no
// route: scanners and typos must not create a label value each).
func Operation(c echo.Context) string {
	if op, _ := c.Get("operation_id").(string); op != "" {
		return op
	}
	route := c.Path()
	if route == "" {
		return "unmatched"
	}
	return method(c.Request().Method) + " " + route
}

// method is m when it is a standard method, else "OTHER": a client may
// send any token there.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// Status is the HTTP status the client got: 101 for a WebSocket upgrade
// (the upgrader writes it on the hijacked connection, so echo never sees
// it), else what echo wrote.
func Status(c echo.Context) int {
	res := c.Response()
	if !res.Committed && isUpgrade(c.Request()) {
		return http.StatusSwitchingProtocols
	}
	return res.Status
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && r.Method == http.MethodGet
}
