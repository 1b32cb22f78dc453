package metrics

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchboard/domain"
	"switchboard/gateway/webhooks"
	"switchboard/outbox"
)

// The relay's, the webhook sender's and the cluster broker's metrics.
var (
	descRelayRunning = prometheus.NewDesc(namespace+"_relay_running",
		"1 while this node relays the outbox (in cluster mode one node at a time does), else 0.", nil, nil)
	descRelayFailing = prometheus.NewDesc(namespace+"_relay_failing",
		"1 while the relay is retrying a failure (database, replication connection), else 0.", nil, nil)
	descRelayBatches = prometheus.NewDesc(namespace+"_relay_batches_total",
		"Outbox batches the relay delivered to every hub.", nil, nil)
	descRelayEvents = prometheus.NewDesc(namespace+"_relay_events_total",
		"Events the relay delivered to every hub.", nil, nil)
	descRelayLag = prometheus.NewDesc(namespace+"_relay_lag_seconds",
		"Per event, from its occurred_at (taken in the writing transaction) to its delivery to every hub.", nil, nil)
	descRelayPending = prometheus.NewDesc(namespace+"_relay_pending_seconds",
		"Age of the oldest event handed to the broker and not yet delivered to every hub; 0 when none waits.", nil, nil)
	descBacklog = prometheus.NewDesc(namespace+"_outbox_backlog",
		"Outbox rows committed and not yet delivered (capped at 100000); the same on every node of a cluster.", nil, nil)
	descWebhooks = prometheus.NewDesc(namespace+"_webhook_deliveries_total",
		"Webhook delivery attempts by result: sent (2xx), retry (another attempt follows), failed (gave up).", []string{"result"}, nil)
	descNATSConnected = prometheus.NewDesc(namespace+"_nats_connected",
		"1 while the NATS connection is up (cluster mode), else 0.", nil, nil)
	descNATSReconnects = prometheus.NewDesc(namespace+"_nats_reconnects_total",
		"Times the NATS connection was re-established.", nil, nil)
)

// relayCollector reads the relay's Status and counts the backlog.
type relayCollector struct {
	status  *outbox.Status // nil: no relay metrics
	db      *domain.DB     // nil: no backlog
	timeout time.Duration
	log     *slog.Logger
}

func (relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRelayRunning, descRelayFailing, descRelayBatches, descRelayEvents,
		descRelayLag, descRelayPending, descBacklog} {
		ch <- d
	}
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	if s := c.status; s != nil {
		ch <- prometheus.MustNewConstMetric(descRelayRunning, prometheus.GaugeValue, boolValue(s.Running()))
		ch <- prometheus.MustNewConstMetric(descRelayFailing, prometheus.GaugeValue, boolValue(s.Failing() != ""))
		ch <- prometheus.MustNewConstMetric(descRelayBatches, prometheus.CounterValue, float64(s.Batches()))
		ch <- prometheus.MustNewConstMetric(descRelayEvents, prometheus.CounterValue, float64(s.Events()))
		ch <- prometheus.MustNewConstMetric(descRelayPending, prometheus.GaugeValue, s.Lag(time.Now()).Seconds())
		cumulative, count, sum := s.LagHistogram()
		buckets := make(map[float64]uint64, len(cumulative))
		for i, bound := range outbox.LagBuckets() {
			buckets[bound] = cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(descRelayLag, count, sum, buckets)
	}
	if c.db != nil {
		// One bounded index range read per scrape: Prometheus scrapes every
		// few seconds, and a database that does not answer costs the
		// scrape this metric only.
		ctx, cancel := scrapeContext(c.timeout)
		defer cancel()
		n, err := outbox.Backlog(ctx, c.db)
		if err != nil {
			c.log.Debug("metrics: outbox backlog not read", "err", err)
			return
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(n))
	}
}

// webhookCollector reads the webhook sender's results.
type webhookCollector struct{ sender *webhooks.Sender }

func (webhookCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWebhooks }

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.sender.Results()
	ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.CounterValue, float64(r.Sent), "sent")
	ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.CounterValue, float64(r.Retried), "retry")
	ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.CounterValue, float64(r.Failed), "failed")
}

// natsCollector reads the cluster broker's connection.
type natsCollector struct{ nats NATS }

func (natsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNATSConnected
	ch <- descNATSReconnects
}

func (c natsCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descNATSConnected, prometheus.GaugeValue, boolValue(c.nats.Connected()))
	ch <- prometheus.MustNewConstMetric(descNATSReconnects, prometheus.CounterValue, float64(c.nats.Reconnects()))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
