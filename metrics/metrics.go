// Package metrics exports Switchboard's counters in the Prometheus text
// format. It keeps almost nothing itself: the gateway, the relay and the
// webhook sender count in their own plain atomics (gateway.Stats,
// outbox.Status, webhooks.Sender.Results) and the collectors here read
// them when Prometheus scrapes, so the fan-out never touches a metric. The
// one thing measured here is HTTP requests (Middleware), whose cost is one
// histogram observation per REST call.
//
// docs/metrics.md lists every metric with its labels and meaning.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
	"switchboard/outbox"
)

// namespace prefixes every Switchboard metric.
const namespace = "switchboard"

// NATS is what the exporter reads of the cluster broker.
type NATS interface {
	Connected() bool
	Reconnects() uint64
}

// Sources are what the exporter reads at scrape time. Nil fields are left
// out of the output (their metrics do not appear).
type Sources struct {
	// Node is the gateway node: connections, subscriptions, channels,
	// deliveries, bytes, slow-consumer cuts, client events, auth failures.
	Node *gateway.Node
	// Relay is the relay's status (lag histogram, batches, running).
	Relay *outbox.Status
	// DB is the store: the outbox backlog and the connection pool.
	DB *domain.DB
	// Webhooks is the webhook sender (deliveries by result).
	Webhooks *webhooks.Sender
	// NATS is the cluster broker, nil outside cluster mode.
	NATS NATS
	// Version is reported by switchboard_build_info.
	Version string
	// Logger receives scrape problems (a backlog query that failed) at
	// debug level. Nil means slog.Default().
	Logger *slog.Logger
	// BacklogTimeout bounds the backlog query of one scrape. Zero means 2s.
	BacklogTimeout time.Duration
}

// Exporter is a Prometheus registry holding Switchboard's collectors and
// the HTTP request metrics. Safe for concurrent use.
type Exporter struct {
	reg  *prometheus.Registry
	http *httpMetrics
}

// New returns an exporter of src, with the Go runtime and process metrics.
func New(src Sources) *Exporter {
	if src.Logger == nil {
		src.Logger = slog.Default()
	}
	if src.BacklogTimeout == 0 {
		src.BacklogTimeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Always 1; the version label is the running build.",
			ConstLabels: prometheus.Labels{"version": src.Version},
		}, func() float64 { return 1 }),
	)
	if src.Node != nil {
		reg.MustRegister(gatewayCollector{node: src.Node})
	}
	if src.Relay != nil || src.DB != nil {
		reg.MustRegister(relayCollector{status: src.Relay, db: src.DB, timeout: src.BacklogTimeout, log: src.Logger})
	}
	if src.DB != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(src.DB.DB, src.DB.Dialect.String()))
	}
	if src.Webhooks != nil {
		reg.MustRegister(webhookCollector{sender: src.Webhooks})
	}
	if src.NATS != nil {
		reg.MustRegister(natsCollector{nats: src.NATS})
	}
	h := newHTTPMetrics()
	reg.MustRegister(h.requests, h.duration)
	return &Exporter{reg: reg, http: h}
}

// Handler serves the metrics in the Prometheus text format.
func (x *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{})
}

// scrapeContext bounds one collector's database work.
func scrapeContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
