package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/outbox"
)

const testMetricsToken = "metrics-token-for-tests"

// The real serve wiring with metrics on: a REST call, a Pusher client that
// gets the event it caused, and /metrics (behind the token on the main
// listener, and open on SWITCHBOARD_METRICS_ADDR) shows each of them; the
// access log has the REST call, the debug log the connection.
func TestServeMetrics(t *testing.T) {
	logs := &lockedBuffer{}
	metricsAddr := freeAddr(t)
	addr, stop := startServeLogging(t, "", logs, map[string]string{
		"SWITCHBOARD_METRICS_TOKEN": testMetricsToken,
		"SWITCHBOARD_METRICS_ADDR":  metricsAddr,
		"SWITCHBOARD_LOG_LEVEL":     "debug",
		"SWITCHBOARD_LOG_FORMAT":    "json",
	})
	base := "http://" + addr
	scrape := func() map[string]float64 {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+testMetricsToken)
		return scrapeMetrics(t, req)
	}

	// Without the token the main listener refuses; the metrics listener
	// needs none.
	for _, h := range []string{"", "Bearer wrong-token-of-some-length"} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/metrics with %q: %d, want 401", h, res.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+metricsAddr+"/metrics", nil)
	if got := scrapeMetrics(t, req); got[`switchboard_build_info{version="`+version+`"}`] != 1 {
		t.Fatal("the metrics listener has no switchboard_build_info")
	}

	before := scrape()
	if st, b := post(t, base+"/api/v1/projects", mint(t, "1", nil, true), `{"slug":"demo","name":"Demo"}`); st != 201 {
		t.Fatalf("project: %d %s", st, b)
	}
	jane := mint(t, "42", []string{"demo"}, false)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/app/"+testAppKey+"?protocol=7", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	socketID := subscribePrivate(t, ws, base, jane, "private-dashboard.project.demo.attendees")
	if st, b := post(t, base+"/api/v1/projects/demo/attendees", jane,
		`{"first_name":"Jane","last_name":"Smith","email":"jane@example.com","attendee_type_id":1}`); st != 201 {
		t.Fatalf("create attendee: %d %s", st, b)
	}
	if f := readFrame(t, ws); f.Event != "AttendeeCreated" {
		t.Fatalf("event %+v", f)
	}

	// The relay confirms a batch just after the fan-out: wait for it.
	var after map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for after = scrape(); after["switchboard_relay_events_total"] < before["switchboard_relay_events_total"]+1; after = scrape() {
		if time.Now().After(deadline) {
			t.Fatalf("relay events %v → %v", before["switchboard_relay_events_total"], after["switchboard_relay_events_total"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	pusher := `{protocol="pusher"}`
	for _, c := range []struct {
		series   string
		minDelta float64
	}{
		{`switchboard_http_requests_total{operation="v1.projects.store",status="201"}`, 1},
		{`switchboard_http_requests_total{operation="v1.project.attendees.store",status="201"}`, 1},
		{`switchboard_http_requests_total{operation="POST /broadcasting/auth",status="200"}`, 1},
		{`switchboard_http_requests_total{operation="GET /app/:key",status="101"}`, 1},
		{`switchboard_http_request_duration_seconds_count{operation="v1.project.attendees.store"}`, 1},
		{`switchboard_connections` + pusher, 1},
		{`switchboard_connects_total` + pusher, 1},
		{`switchboard_deliveries_total` + pusher, 1},
		{`switchboard_sent_bytes_total` + pusher, 100},
		{`switchboard_subscriptions`, 1},
		{`switchboard_channels`, 1},
		{`switchboard_relay_batches_total`, 1},
		{`switchboard_relay_lag_seconds_count`, 1},
	} {
		if d := after[c.series] - before[c.series]; d < c.minDelta {
			t.Errorf("%s went from %v to %v, want at least +%v", c.series, before[c.series], after[c.series], c.minDelta)
		}
	}
	for _, s := range []string{"switchboard_relay_running", `switchboard_http_request_duration_seconds_bucket{operation="v1.project.attendees.store",le="0.005"}`} {
		if _, ok := after[s]; !ok {
			t.Errorf("%s missing", s)
		}
	}
	if after["switchboard_relay_running"] != 1 || after["switchboard_outbox_backlog"] != 0 {
		t.Errorf("relay_running %v, outbox_backlog %v; want 1 and 0", after["switchboard_relay_running"], after["switchboard_outbox_backlog"])
	}

	// Readiness names the relay.
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]string
	_ = json.NewDecoder(res.Body).Decode(&ready)
	res.Body.Close()
	if res.StatusCode != 200 || ready["relay"] != "running" {
		t.Fatalf("/readyz %d %v, want 200 with relay running", res.StatusCode, ready)
	}

	// The client goes away; its disconnect is logged once the server has
	// read the end of the socket (shutdown does not wait for that).
	ws.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if bytes.Contains(logs.Bytes(), []byte(`"msg":"disconnect"`)) {
			break
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var access, connect, disconnect bool
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		switch {
		case rec["msg"] == "request" && rec["operation_id"] == "v1.project.attendees.store":
			access = rec["level"] == "INFO" && rec["status"] == 201.0 && rec["method"] == "POST" &&
				rec["path"] == "/api/v1/projects/demo/attendees" && rec["request_id"] != ""
		case rec["msg"] == "connect" && rec["conn"] == socketID:
			connect = rec["level"] == "DEBUG" && rec["proto"] == "pusher"
		case rec["msg"] == "disconnect" && rec["conn"] == socketID:
			disconnect = rec["level"] == "DEBUG" && rec["user"] == "42"
		}
	}
	if !access || !connect || !disconnect {
		t.Fatalf("access line %v, connect %v, disconnect %v in:\n%s", access, connect, disconnect, logs.Bytes())
	}
}

// relayReadiness: a standby cluster node is ready; otherwise the relay
// must run, not be retrying, and nothing may wait longer than the limit.
func TestRelayReadiness(t *testing.T) {
	stopped := &outbox.Status{}
	retrying := &outbox.Status{}
	closed := dbtest.SQLite(t)
	_ = closed.Close()
	runRelayUntil(t, closed, retrying, func() bool { return retrying.Failing() != "" })
	// A relay whose sink never confirms: the event it handed over waits.
	waiting := &outbox.Status{}
	db := dbtest.SQLite(t)
	runRelayUntil(t, db, waiting, waiting.Running)
	if err := db.InTx(t.Context(), func(tx *domain.Tx) error {
		return tx.Emit(domain.Scope{Channels: []string{"c"}}, readyPing{})
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting.Lag(time.Now()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event was not handed over")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, tc := range []struct {
		name             string
		st               *outbox.Status
		cluster, leading bool
		maxLag           time.Duration
		want             string
		ready            bool
	}{
		{"standby", stopped, true, false, time.Second, "standby (another node relays)", true},
		{"single node, not started", stopped, false, false, time.Second, "starting", false},
		{"cluster leader starting", stopped, true, true, time.Second, "starting", true},
		{"cannot start", retrying, false, false, time.Second, "starting: ", false},
		{"running, within the limit", waiting, false, false, time.Hour, "running", true},
		{"running, behind", waiting, false, false, time.Nanosecond, "behind: an event has waited ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ready := relayReadiness(tc.st, tc.cluster, tc.leading, tc.maxLag, time.Now())
			if !strings.HasPrefix(got, tc.want) || ready != tc.ready {
				t.Fatalf("relayReadiness = %q, %v; want %q..., %v", got, ready, tc.want, tc.ready)
			}
		})
	}
}

type readyPing struct{}

func (readyPing) Name() string { return "ReadyPing" }

// holdSink takes events and never confirms their delivery.
type holdSink struct{}

func (holdSink) Keep(context.Context, domain.Querier, []domain.Envelope) error { return nil }
func (holdSink) Recall(context.Context, []domain.Envelope) error               { return nil }
func (holdSink) Deliver(context.Context, []domain.Envelope, func()) error      { return nil }

// runRelayUntil runs a relay of db reporting to st until the test ends,
// and waits for ok.
func runRelayUntil(t *testing.T, db *domain.DB, st *outbox.Status, ok func() bool) {
	t.Helper()
	r, err := outbox.NewRelay(db, holdSink{}, outbox.Config{Status: st, Mode: outbox.ModePoll, DrainWait: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("the relay did not get there")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrapeMetrics does req and parses the Prometheus text it answers into
// series (name and labels, as printed) → value.
func scrapeMetrics(t *testing.T, req *http.Request) map[string]float64 {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s: %d %s", req.URL, res.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
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

// lockedBuffer collects the server's log from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}
