package metrics_test

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
	"switchboard/metrics"
	"switchboard/outbox"
)

// The middleware counts each request under its operation (the operation
// id, else method and route, else "unmatched") and the status the client
// got, and times it.
func TestHTTPMiddleware(t *testing.T) {
	x := metrics.New(metrics.Sources{})
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.Pre(x.Middleware())
	e.POST("/api/v1/things", func(c echo.Context) error { return c.NoContent(http.StatusCreated) }, domain.Op("v1.things.store"))
	e.GET("/api/v1/things/:id", func(echo.Context) error { return domain.Forbidden("no") }, domain.Op("v1.things.show"))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/ws", func(echo.Context) error { return nil }) // an upgrade handler hijacks; echo writes nothing

	for _, tc := range []struct {
		method, target string
		upgrade        bool
		times          int
		series         string // the request counter's labels
	}{
		{"POST", "/api/v1/things", false, 2, `operation="v1.things.store",status="201"`},
		{"GET", "/api/v1/things/1", false, 1, `operation="v1.things.show",status="403"`},
		{"GET", "/healthz", false, 3, `operation="GET /healthz",status="200"`},
		{"GET", "/no/such/route", false, 1, `operation="unmatched",status="404"`},
		{"BREW", "/healthz", false, 1, `operation="OTHER /healthz",status="405"`},
		{"GET", "/ws", true, 1, `operation="GET /ws",status="101"`},
	} {
		for range tc.times {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.upgrade {
				req.Header.Set("Upgrade", "websocket")
			}
			e.ServeHTTP(httptest.NewRecorder(), req)
		}
		got := scrape(t, x)
		if v := got["switchboard_http_requests_total{"+tc.series+"}"]; v != float64(tc.times) {
			t.Errorf("%s %s: requests{%s} = %v, want %d", tc.method, tc.target, tc.series, v, tc.times)
		}
	}
	got := scrape(t, x)
	if v := got[`switchboard_http_request_duration_seconds_count{operation="v1.things.store"}`]; v != 2 {
		t.Errorf("latency histogram count for v1.things.store = %v, want 2", v)
	}
	if _, ok := got[`switchboard_http_request_duration_seconds_bucket{operation="v1.things.store",le="0.005"}`]; !ok {
		t.Error("latency histogram has no buckets")
	}
}

type fakeNATS struct{}

func (fakeNATS) Connected() bool    { return true }
func (fakeNATS) Reconnects() uint64 { return 2 }

// Every family of docs/metrics.md is there, labelled as documented, read
// from the sources at scrape time.
func TestFamilies(t *testing.T) {
	db := dbtest.SQLite(t)
	node := gateway.NewNode(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	x := metrics.New(metrics.Sources{
		Node: node, Relay: &outbox.Status{}, DB: db, Version: "test",
		Webhooks: webhooks.NewSender(webhooks.NewQueue(db), webhooks.SenderConfig{}),
		NATS:     fakeNATS{},
	})
	got := scrape(t, x)
	want := map[string]float64{
		`switchboard_build_info{version="test"}`: 1,
		`switchboard_subscriptions`:              0,
		`switchboard_channels`:                   0,
		`switchboard_relay_running`:              0,
		`switchboard_relay_failing`:              0,
		`switchboard_relay_batches_total`:        0,
		`switchboard_relay_events_total`:         0,
		`switchboard_relay_pending_seconds`:      0,
		`switchboard_relay_lag_seconds_count`:    0,
		`switchboard_outbox_backlog`:             0,
		`switchboard_nats_connected`:             1,
		`switchboard_nats_reconnects_total`:      2,
	}
	for _, result := range []string{"sent", "retry", "failed"} {
		want[`switchboard_webhook_deliveries_total{result="`+result+`"}`] = 0
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	present := []string{`switchboard_relay_lag_seconds_bucket{le="+Inf"}`, `go_goroutines`, `go_sql_open_connections{db_name="sqlite"}`}
	for _, p := range gateway.Protocols() {
		proto := `protocol="` + p.String() + `"`
		present = append(present,
			`switchboard_connections{`+proto+`}`, `switchboard_connects_total{`+proto+`}`,
			`switchboard_disconnects_total{`+proto+`}`, `switchboard_deliveries_total{`+proto+`}`,
			`switchboard_sent_bytes_total{`+proto+`}`, `switchboard_client_events_total{`+proto+`}`,
			`switchboard_slow_consumer_disconnects_total{cause="queue_full",`+proto+`}`,
			`switchboard_slow_consumer_disconnects_total{cause="write_timeout",`+proto+`}`)
		for _, d := range gateway.Doors() {
			present = append(present, `switchboard_auth_failures_total{door="`+d.String()+`",`+proto+`}`)
		}
	}
	for _, k := range present {
		if _, ok := got[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
}

// scrape reads x's output into series (name and labels, as printed) →
// value.
func scrape(t *testing.T, x *metrics.Exporter) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	x.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return parseText(t, rec.Body.String())
}

func parseText(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// benchConn is a registered connection: a real Writer, nothing else.
type benchConn struct{ w *gateway.Writer }

func (c *benchConn) Describe() gateway.ConnDesc {
	return gateway.ConnDesc{Proto: gateway.ProtoPusher, Writer: c.w}
}

// BenchmarkScrape is one whole scrape (every collector, the text
// encoding) of a node with N open connections each subscribed to a
// channel: the price of reading the per-connection counters at scrape
// time instead of sharing a counter on the fan-out.
//
//	go test -run '^$' -bench Scrape -benchmem ./metrics/
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("conns="+strconv.Itoa(n), func(b *testing.B) {
			node := gateway.NewNode(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			reg := gateway.NewRegistry[*benchConn]()
			for i := range n {
				id := strconv.Itoa(i)
				c := &benchConn{w: gateway.NewWriter(gateway.WriterConfig{Write: func([][]byte) error { return nil }})}
				reg.Add(id, c)
				node.Hub.Subscribe("chan-"+strconv.Itoa(i%100), subscriber(id))
			}
			b.Cleanup(func() {
				for i := range n {
					reg.Remove(strconv.Itoa(i))
				}
			})
			x := metrics.New(metrics.Sources{Node: node, Relay: &outbox.Status{}})
			h := x.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			}
		})
	}
}

type subscriber string

func (s subscriber) ConnID() string             { return string(s) }
func (s subscriber) Deliver(m *gateway.Message) {}
