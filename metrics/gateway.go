package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"switchboard/gateway"
)

// The gateway's metrics, read from gateway.Stats and the hub at scrape
// time (see the package comment for why nothing is counted here).
var (
	descConnections = prometheus.NewDesc(namespace+"_connections",
		"WebSocket connections open on this node.", []string{"protocol"}, nil)
	descConnects = prometheus.NewDesc(namespace+"_connects_total",
		"WebSocket connections accepted (upgraded and registered).", []string{"protocol"}, nil)
	descDisconnects = prometheus.NewDesc(namespace+"_disconnects_total",
		"WebSocket connections that ended, for any reason.", []string{"protocol"}, nil)
	descSubscriptions = prometheus.NewDesc(namespace+"_subscriptions",
		"Channel subscriptions on this node (a connection on a channel), every protocol.", nil, nil)
	descChannels = prometheus.NewDesc(namespace+"_channels",
		"Channels with at least one subscriber on this node.", nil, nil)
	descDeliveries = prometheus.NewDesc(namespace+"_deliveries_total",
		"Publications queued to connections: one per event per subscribed connection.", []string{"protocol"}, nil)
	descBytes = prometheus.NewDesc(namespace+"_sent_bytes_total",
		"Bytes written to WebSocket connections, every frame included.", []string{"protocol"}, nil)
	descSlowCuts = prometheus.NewDesc(namespace+"_slow_consumer_disconnects_total",
		"Connections cut because they could not keep up (send queue full, or a write timed out).", []string{"protocol", "cause"}, nil)
	descClientEvents = prometheus.NewDesc(namespace+"_client_events_total",
		"Client-originated publications accepted (Pusher client-* events, Centrifugo publishes, ActionCable perform).", []string{"protocol"}, nil)
	descAuthFailures = prometheus.NewDesc(namespace+"_auth_failures_total",
		"Credentials refused on a WebSocket, by door (connect, subscribe, signin).", []string{"protocol", "door"}, nil)
)

// gatewayCollector reads a node's counters.
type gatewayCollector struct{ node *gateway.Node }

func (gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descConnects, descDisconnects, descSubscriptions,
		descChannels, descDeliveries, descBytes, descSlowCuts, descClientEvents, descAuthFailures} {
		ch <- d
	}
}

func (c gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.node.Stats()
	for _, p := range gateway.Protocols() {
		proto := p.String()
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(s.Connections(p)), proto)
		ch <- prometheus.MustNewConstMetric(descConnects, prometheus.CounterValue, float64(s.Connects(p)), proto)
		ch <- prometheus.MustNewConstMetric(descDisconnects, prometheus.CounterValue, float64(s.Disconnects(p)), proto)
		t := s.Traffic(p)
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(t.Deliveries), proto)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.Bytes), proto)
		for _, cause := range gateway.CutCauses() {
			ch <- prometheus.MustNewConstMetric(descSlowCuts, prometheus.CounterValue,
				float64(s.SlowConsumerCutsBy(p, cause)), proto, cause.String())
		}
		ch <- prometheus.MustNewConstMetric(descClientEvents, prometheus.CounterValue, float64(s.ClientEvents(p)), proto)
		for _, d := range gateway.Doors() {
			ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue,
				float64(s.AuthFailures(p, d)), proto, d.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(descSubscriptions, prometheus.GaugeValue, float64(c.node.Hub.NumSubscriptions()))
	ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(c.node.Hub.NumChannels()))
}
