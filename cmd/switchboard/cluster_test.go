package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/domain/dbtest"
)

// Cluster mode is tested with real processes (a node is killed with
// SIGKILL) and a nats-server of the test's own, which it can stop.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// switchboardBinary builds this command once per test run.
func switchboardBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "switchboard")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// natsServer is a nats-server with JetStream on a free port.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	const bin = "/usr/sbin/nats-server"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("cluster tests need %s: %v", bin, err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	p, _ := strconv.Atoi(port)
	n := &natsServer{t: t, port: p, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	n.cmd = exec.Command("/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-sd", n.dir)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	waitPort(n.t, "127.0.0.1:"+strconv.Itoa(n.port))
}

func (n *natsServer) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterNode is one `switchboard serve` process.
type clusterNode struct {
	name string
	addr string
	cmd  *exec.Cmd
	logs *syncBuffer
}

func startNode(t *testing.T, name, dsn, natsURL string) *clusterNode {
	t.Helper()
	n := &clusterNode{name: name, addr: freeAddr(t), logs: &syncBuffer{}}
	n.cmd = exec.Command(switchboardBinary(t), "serve")
	n.cmd.Env = append(os.Environ(),
		"SWITCHBOARD_ADDR="+n.addr, "SWITCHBOARD_DATA_DIR="+t.TempDir(), "DATABASE_URL="+dsn,
		"SWITCHBOARD_JWT_SECRET="+testJWTSecret, "SWITCHBOARD_APP_KEY="+testAppKey, "SWITCHBOARD_APP_SECRET="+testAppSecret, "SWITCHBOARD_NATS_URL="+natsURL, "SWITCHBOARD_LOG_LEVEL=info")
	n.cmd.Stderr = io.MultiWriter(n.logs, &prefixed{prefix: "[" + name + "] ", t: t})
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + n.addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not healthy: %v\n%s", name, err, n.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *clusterNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

func (n *clusterNode) relays() bool { return n.logs.count("this node relays the outbox") > 0 }

// prefixed forwards a node's log lines to the test log when -v is on.
type prefixed struct {
	prefix string
	t      *testing.T
}

func (p *prefixed) Write(b []byte) (int, error) {
	if testing.Verbose() {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			fmt.Fprintln(os.Stderr, p.prefix+l)
		}
	}
	return len(b), nil
}

// dashboardClient is a Pusher client subscribed to a project's attendees
// dashboard on one node; it records the first names it receives, in order.
type dashboardClient struct {
	ws    *websocket.Conn
	mu    sync.Mutex
	names []string
	got   chan struct{}
}

func subscribeDashboard(t *testing.T, n *clusterNode, token, slug string) *dashboardClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/app/"+testAppKey+"?protocol=7", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var est struct {
		Data string `json:"data"`
	}
	if err := ws.ReadJSON(&est); err != nil {
		t.Fatal(err)
	}
	var sid struct {
		SocketID string `json:"socket_id"`
	}
	_ = json.Unmarshal([]byte(est.Data), &sid)
	channel := "private-dashboard.project." + slug + ".attendees"
	var auth struct{ Auth string }
	formAuth(t, n, "/broadcasting/auth", token, url.Values{"socket_id": {sid.SocketID}, "channel_name": {channel}}, &auth)
	if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth.Auth}}); err != nil {
		t.Fatal(err)
	}
	for {
		var f pusherFrame
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("subscribe on %s: %v", n.name, err)
		}
		if f.Event == "pusher_internal:subscription_succeeded" {
			break
		}
		if f.Event == "pusher:subscription_error" {
			t.Fatalf("subscribe on %s: %s", n.name, f.Data)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	c := &dashboardClient{ws: ws, got: make(chan struct{}, 1<<16)}
	go func() {
		for {
			var f pusherFrame
			if err := ws.ReadJSON(&f); err != nil {
				return
			}
			var d struct {
				FirstName string `json:"first_name"`
				Attendee  struct {
					FirstName string `json:"first_name"`
				} `json:"attendee"`
			}
			pusherData(f.Data, &d)
			name := d.FirstName
			if name == "" {
				name = d.Attendee.FirstName
			}
			if name == "" {
				continue
			}
			c.mu.Lock()
			c.names = append(c.names, name)
			c.mu.Unlock()
			c.got <- struct{}{}
		}
	}()
	return c
}

// waitNames waits until the client has n names (or fails after d), then
// returns them after a short quiet period that would show duplicates.
func (c *dashboardClient) waitNames(t *testing.T, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case <-c.got:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d of %d events", len(c.names), n)
		}
	}
	time.Sleep(500 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

func createAttendee(n *clusterNode, token, slug, first string) (int, error) {
	body := `{"first_name":"` + first + `","last_name":"Cluster","email":"` + strings.ToLower(first) + `@example.com"}`
	req, _ := http.NewRequest("POST", "http://"+n.addr+"/api/v1/projects/"+slug+"/attendees", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

func newCluster(t *testing.T, nodes int) (*natsServer, string, []*clusterNode, string) {
	t.Helper()
	nats := startNATS(t)
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	var ns []*clusterNode
	for i := 0; i < nodes; i++ {
		ns = append(ns, startNode(t, string(rune('A'+i)), dsn, nats.url()))
	}
	admin := mint(t, "1", []string{"demo"}, true)
	if st, b := post(t, "http://"+ns[len(ns)-1].addr+"/api/v1/projects", admin, `{"slug":"demo","name":"Demo"}`); st != 201 {
		t.Fatalf("create project: %d %s", st, b)
	}
	return nats, dsn, ns, admin
}

func checkSequence(t *testing.T, who string, got []string, prefix string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s got %d events, want %d exactly once: %v", who, len(got), n, got)
	}
	for i, name := range got {
		if want := prefix + strconv.Itoa(i); name != want {
			t.Fatalf("%s: event %d is %s, want %s (order)", who, i, name, want)
		}
	}
}

// An attendee written through node C reaches dashboards on nodes A and B,
// every event once and in commit order.
func TestClusterEventsReachEveryNode(t *testing.T) {
	_, _, ns, admin := newCluster(t, 3)
	a := subscribeDashboard(t, ns[0], admin, "demo")
	b := subscribeDashboard(t, ns[1], admin, "demo")
	const n = 30
	for i := 0; i < n; i++ {
		if st, err := createAttendee(ns[2], admin, "demo", "Guest"+strconv.Itoa(i)); err != nil || st != 201 {
			t.Fatalf("create through C: %d %v", st, err)
		}
	}
	checkSequence(t, "client on A", a.waitNames(t, n, 15*time.Second), "Guest", n)
	checkSequence(t, "client on B", b.waitNames(t, n, 15*time.Second), "Guest", n)
}

// The node that relays is killed with SIGKILL in the middle of a burst of
// writes through another node: another node takes over the relay, and a
// client on a third node gets every committed event exactly once, in order.
func TestClusterRelayNodeKilledMidBurst(t *testing.T) {
	_, _, ns, admin := newCluster(t, 3)
	var leader *clusterNode
	deadline := time.Now().Add(10 * time.Second)
	for leader == nil {
		for _, n := range ns {
			if n.relays() {
				leader = n
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no node says it relays the outbox")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var others []*clusterNode
	for _, n := range ns {
		if n != leader {
			others = append(others, n)
		}
	}
	writer, watcher := others[0], others[1]
	c := subscribeDashboard(t, watcher, admin, "demo")
	const n = 300
	committed := 0
	for i := 0; i < n; i++ {
		if i == n/3 {
			leader.kill()
		}
		st, err := createAttendee(writer, admin, "demo", "Burst"+strconv.Itoa(i))
		if err != nil || st != 201 {
			t.Fatalf("write %d through %s: %d %v", i, writer.name, st, err)
		}
		committed++
	}
	checkSequence(t, "client on "+watcher.name, c.waitNames(t, committed, 30*time.Second), "Burst", committed)
	if !writer.relays() && !watcher.relays() {
		t.Fatal("no surviving node took over the relay")
	}
}

// The NATS server goes away under load and comes back: writes keep
// committing meanwhile, readiness says NATS is down, and every event
// reaches the client once, in order.
func TestClusterSurvivesNATSRestart(t *testing.T) {
	nats, _, ns, admin := newCluster(t, 2)
	c := subscribeDashboard(t, ns[0], admin, "demo")
	const n = 60
	for i := 0; i < n; i++ {
		if i == n/3 {
			nats.stop()
		}
		if i == 2*n/3 {
			time.Sleep(1500 * time.Millisecond)
			res, err := http.Get("http://" + ns[0].addr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 503 || !strings.Contains(string(b), "nats disconnected") {
				t.Fatalf("/readyz with NATS down: %d %s", res.StatusCode, b)
			}
			nats.start()
		}
		st, err := createAttendee(ns[1], admin, "demo", "Nats"+strconv.Itoa(i))
		if err != nil || st != 201 {
			t.Fatalf("write %d while NATS restarts: %d %v", i, st, err)
		}
	}
	checkSequence(t, "client on A", c.waitNames(t, n, 60*time.Second), "Nats", n)
	res, err := http.Get("http://" + ns[0].addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/readyz after NATS came back: %d", res.StatusCode)
	}
}

// An unreachable SWITCHBOARD_NATS_URL stops serve at start with an error
// naming it; cluster mode on the embedded SQLite store is refused.
func TestClusterStartErrors(t *testing.T) {
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	dead := "nats://" + freeAddr(t)
	for _, tc := range []struct {
		name, dsn, nats, want string
	}{
		{"unreachable nats", dsn, dead, "SWITCHBOARD_NATS_URL"},
		{"sqlite", "", dead, "needs PostgreSQL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(switchboardBinary(t), "serve")
			cmd.Env = append(os.Environ(), "SWITCHBOARD_ADDR="+freeAddr(t), "SWITCHBOARD_DATA_DIR="+t.TempDir(),
				"DATABASE_URL="+tc.dsn, "SWITCHBOARD_JWT_SECRET="+testJWTSecret, "SWITCHBOARD_APP_KEY="+testAppKey, "SWITCHBOARD_APP_SECRET="+testAppSecret, "SWITCHBOARD_NATS_URL="+tc.nats)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("serve = %v, output %s; want a failure naming %q", err, out, tc.want)
			}
		})
	}
}

// pusherPresence subscribes a Pusher connection on node n to a presence
// channel as the token's user and returns it with the member count it was
// told on subscription.
func pusherPresence(t *testing.T, n *clusterNode, token, channel string) (*websocket.Conn, int) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/app/"+testAppKey+"?protocol=7", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var est pusherFrame
	if err := ws.ReadJSON(&est); err != nil {
		t.Fatal(err)
	}
	var sid struct {
		SocketID string `json:"socket_id"`
	}
	pusherData(est.Data, &sid)
	var auth struct {
		Auth        string `json:"auth"`
		ChannelData string `json:"channel_data"`
	}
	formAuth(t, n, "/broadcasting/auth", token, url.Values{"socket_id": {sid.SocketID}, "channel_name": {channel}}, &auth)
	if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]string{
		"channel": channel, "auth": auth.Auth, "channel_data": auth.ChannelData}}); err != nil {
		t.Fatal(err)
	}
	f := nextPusher(t, ws, "pusher_internal:subscription_succeeded", "pusher:subscription_error")
	if f.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("presence subscribe on %s: %s", n.name, f.Data)
	}
	var d struct {
		Presence struct {
			Count int `json:"count"`
		} `json:"presence"`
	}
	pusherData(f.Data, &d)
	return ws, d.Presence.Count
}

func nextPusher(t *testing.T, ws *websocket.Conn, events ...string) pusherFrame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		var f pusherFrame
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %v: %v", events, err)
		}
		for _, e := range events {
			if f.Event == e {
				return f
			}
		}
	}
}

// Presence spans the nodes: a member who joins on B is announced on A and
// counted on C; when B is killed, A hears the member leave within the
// peers' TTL. The per-user connection limit counts every node.
func TestClusterPresenceAndUserLimit(t *testing.T) {
	_, _, ns, admin := newCluster(t, 3)
	const channel = "presence-dashboard.project.demo"
	a, count := pusherPresence(t, ns[0], admin, channel)
	if count != 1 {
		t.Fatalf("first member: count %d", count)
	}
	member := mint(t, "2", []string{"demo"}, false)
	pusherPresence(t, ns[1], member, channel)
	f := nextPusher(t, a, "pusher_internal:member_added")
	var m struct {
		UserID string `json:"user_id"`
	}
	pusherData(f.Data, &m)
	if m.UserID != "2" {
		t.Fatalf("member_added on A: %s", f.Data)
	}
	if _, count := pusherPresence(t, ns[2], mint(t, "3", []string{"demo"}, false), channel); count != 3 {
		t.Fatalf("a member subscribing on C counts %d, want 3 (one per node)", count)
	}
	nextPusher(t, a, "pusher_internal:member_added") // user 3
	killed := time.Now()
	ns[1].kill()
	f = nextPusher(t, a, "pusher_internal:member_removed")
	pusherData(f.Data, &m)
	if m.UserID != "2" {
		t.Fatalf("member_removed on A: %s", f.Data)
	}
	if d := time.Since(killed); d > 8*time.Second {
		t.Fatalf("member of the killed node removed after %v", d)
	}

	// 100 Centrifugo connections of one user spread over A and C: the
	// 101st is refused (3504), wherever it arrives.
	token := mint(t, "7", []string{"demo"}, false)
	live := []*clusterNode{ns[0], ns[2]}
	connect := func(n *clusterNode) (string, *websocket.Conn) {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/connection/websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		if err := ws.WriteJSON(map[string]any{"id": 1, "connect": map[string]any{"token": token}}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return "close " + strconv.Itoa(ce.Code), ws
			}
			return err.Error(), ws
		}
		if strings.Contains(string(b), `"connect"`) {
			return "connected", ws
		}
		return string(b), ws
	}
	for i := 0; i < 100; i++ {
		if got, _ := connect(live[i%2]); got != "connected" {
			t.Fatalf("connection %d of the user: %s", i+1, got)
		}
	}
	time.Sleep(300 * time.Millisecond) // the last counts reach the other node
	for _, n := range live {
		if got, _ := connect(n); got != "close 3504" {
			t.Fatalf("101st connection on %s: %s, want close 3504", n.name, got)
		}
	}
}

// cfCommand sends one Centrifugo command and returns the reply to it.
func cfCommand(t *testing.T, ws *websocket.Conn, id int, cmd string, body map[string]any) map[string]any {
	t.Helper()
	if err := ws.WriteJSON(map[string]any{"id": id, cmd: body}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("centrifugo %s: %v", cmd, err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["id"] == float64(id) {
				if e, ok := m["error"]; ok {
					t.Fatalf("centrifugo %s: error %v", cmd, e)
				}
				return m[cmd].(map[string]any)
			}
		}
	}
}

func cfConnect(t *testing.T, n *clusterNode, token string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/connection/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	cfCommand(t, ws, 1, "connect", map[string]any{"token": token})
	return ws
}

// A Centrifugo client that leaves node A and comes back on node B with its
// last offset gets exactly what it missed, recovered, with the same epoch;
// the Pusher HTTP API counts subscriptions of every node.
func TestClusterRecoveryAndCounts(t *testing.T) {
	_, _, ns, admin := newCluster(t, 3)
	const channel = "dashboard.project.demo.attendees"
	ws := cfConnect(t, ns[0], admin)
	sub := cfCommand(t, ws, 2, "subscribe", map[string]any{"channel": channel, "recover": true})
	epoch, _ := sub["epoch"].(string)
	offset, _ := sub["offset"].(float64)
	if epoch == "" {
		t.Fatalf("subscribe on A: no epoch in %v", sub)
	}
	ws.Close()
	for i := 0; i < 3; i++ {
		if st, err := createAttendee(ns[2], admin, "demo", "Missed"+strconv.Itoa(i)); err != nil || st != 201 {
			t.Fatalf("create through C: %d %v", st, err)
		}
	}
	var got map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		wsB := cfConnect(t, ns[1], admin)
		got = cfCommand(t, wsB, 2, "subscribe", map[string]any{"channel": channel, "recover": true, "offset": offset, "epoch": epoch})
		pubs, _ := got["publications"].([]any)
		if len(pubs) == 3 || time.Now().After(deadline) {
			break
		}
		wsB.Close()
		time.Sleep(100 * time.Millisecond) // the relay has not kept them all yet
	}
	pubs, _ := got["publications"].([]any)
	if got["recovered"] != true || got["epoch"] != epoch || len(pubs) != 3 {
		t.Fatalf("recover on B: recovered=%v epoch=%v (want %s) publications=%d, want 3", got["recovered"], got["epoch"], epoch, len(pubs))
	}

	// Pusher channel info: one subscription on A, two on B.
	for i, n := range []*clusterNode{ns[0], ns[1], ns[1]} {
		subscribeDashboard(t, n, admin, "demo")
		_ = i
	}
	path := "/apps/app-id/channels/private-dashboard.project.demo.attendees"
	eventually := time.Now().Add(5 * time.Second)
	for {
		info := pusherAPIGet(t, ns[2], path, "info=subscription_count")
		if info["subscription_count"] == float64(3) {
			break
		}
		if time.Now().After(eventually) {
			t.Fatalf("channel info on C: %v, want subscription_count 3", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pusherAPIGet calls the Pusher HTTP API on n, signed with the default app.
func pusherAPIGet(t *testing.T, n *clusterNode, path, query string) map[string]any {
	t.Helper()
	st, b := pusherAPI(t, n, "GET", path, query, "")
	var out map[string]any
	if st != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET %s: %d %s", path, st, b)
	}
	return out
}

// pusherAPI sends a signed Pusher HTTP API request (body_md5 for a body).
func pusherAPI(t *testing.T, n *clusterNode, method, path, query, body string) (int, []byte) {
	t.Helper()
	params := "auth_key=" + testAppKey + "&auth_timestamp=" + strconv.FormatInt(time.Now().Unix(), 10) + "&auth_version=1.0"
	if body != "" {
		sum := md5.Sum([]byte(body))
		params += "&body_md5=" + hex.EncodeToString(sum[:])
	}
	if query != "" {
		params = params + "&" + query
	}
	vals, _ := url.ParseQuery(params)
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var canon []string
	for _, k := range keys {
		canon = append(canon, k+"="+vals.Get(k))
	}
	mac := hmac.New(sha256.New, []byte(testAppSecret))
	mac.Write([]byte(method + "\n" + path + "\n" + strings.Join(canon, "&")))
	req, _ := http.NewRequest(method, "http://"+n.addr+path+"?"+params+"&auth_signature="+hex.EncodeToString(mac.Sum(nil)), strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// A user signed in on node B is reached from node A: sendToUser (an
// event on #server-to-user-{id}) and terminate_connections.
func TestClusterUserAddressed(t *testing.T) {
	_, _, ns, _ := newCluster(t, 2)
	user := mint(t, "42", []string{"demo"}, false)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ns[1].addr+"/app/"+testAppKey+"?protocol=7", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	est := nextPusher(t, ws, "pusher:connection_established")
	var sid struct {
		SocketID string `json:"socket_id"`
	}
	pusherData(est.Data, &sid)
	var ua struct {
		Auth     string `json:"auth"`
		UserData string `json:"user_data"`
	}
	formAuth(t, ns[1], "/pusher/user-auth", user, url.Values{"socket_id": {sid.SocketID}}, &ua)
	if err := ws.WriteJSON(map[string]any{"event": "pusher:signin", "data": map[string]string{"auth": ua.Auth, "user_data": ua.UserData}}); err != nil {
		t.Fatal(err)
	}
	nextPusher(t, ws, "pusher:signin_success")
	if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": "#server-to-user-42"}}); err != nil {
		t.Fatal(err)
	}
	nextPusher(t, ws, "pusher_internal:subscription_succeeded")

	if st, b := pusherAPI(t, ns[0], "POST", "/apps/app-id/events", "", `{"name":"hello","channel":"#server-to-user-42","data":"{\"x\":1}"}`); st != 200 {
		t.Fatalf("sendToUser through A: %d %s", st, b)
	}
	if f := nextPusher(t, ws, "hello"); !strings.Contains(string(f.Data), "x") {
		t.Fatalf("sendToUser on B: %s", f.Data)
	}
	if st, b := pusherAPI(t, ns[0], "POST", "/apps/app-id/users/42/terminate_connections", "", "{}"); st != 200 {
		t.Fatalf("terminate through A: %d %s", st, b)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("connection on B not closed by terminate_connections through A: %v", err)
			}
			return
		}
	}
}

// formAuth posts a form to one of n's auth endpoints with a bearer token
// and decodes its JSON answer into out.
func formAuth(t *testing.T, n *clusterNode, path, token string, vals url.Values, out any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+n.addr+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_ = json.NewDecoder(res.Body).Decode(out)
}

// A Pusher client event sent on node A reaches a subscriber on node B (it
// does not go through the outbox), with the sender's user id, and is not
// echoed to the sender.
func TestClusterClientEvents(t *testing.T) {
	_, _, ns, _ := newCluster(t, 2)
	const room = "presence-chat.lobby"
	a, _ := pusherPresence(t, ns[0], mint(t, "7", []string{"demo"}, false), room)
	b, _ := pusherPresence(t, ns[1], mint(t, "8", []string{"demo"}, false), room)
	nextPusher(t, a, "pusher_internal:member_added")
	if err := a.WriteJSON(map[string]any{"event": "client-typing", "channel": room, "data": map[string]any{"typing": true}}); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f struct {
			Event   string `json:"event"`
			Channel string `json:"channel"`
			UserID  string `json:"user_id"`
			Data    string `json:"data"`
		}
		if err := b.ReadJSON(&f); err != nil {
			t.Fatalf("client event did not reach B: %v", err)
		}
		if f.Event != "client-typing" {
			continue
		}
		if f.Channel != room || f.UserID != "7" || f.Data != `{"typing":true}` {
			t.Fatalf("client event on B: %+v", f)
		}
		break
	}
	_ = a.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		var f pusherFrame
		if err := a.ReadJSON(&f); err != nil {
			return // quiet: not echoed
		}
		if f.Event == "client-typing" {
			t.Fatal("client event echoed to its sender")
		}
	}
}
