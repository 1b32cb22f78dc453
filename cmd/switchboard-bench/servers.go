package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/lib/pq" // PostgreSQL for the outbox scenarios' schemas

	"switchboard/bench/load"
)

// benchSecret signs every token of a run; both servers verify with it. The
// credentials are long enough for Switchboard's production checks, which
// refuse to start on PostgreSQL with a short JWT secret or the default app
// key and secret.
const (
	benchSecret    = "switchboard-bench-secret-of-at-least-32-bytes"
	benchAppKey    = "bench-app-key"
	benchAppSecret = "bench-app-secret-0123456789"
)

// Channel names: the canonical attendees channel of project "bench" (the
// one the REST attendee POST publishes to) and a second project channel for
// the idle scenario's two subscriptions.
const (
	benchSlug     = "bench"
	channelMain   = "dashboard.project.bench.attendees"
	channelSecond = "dashboard.project.bench.access"
)

// server is one process under test, started by the benchmark.
type server struct {
	kind      string // "switchboard" or "peer"
	store     string // switchboard: "sqlite" or "postgres"
	addr      string
	debugAddr string
	token     string
	cmd       *exec.Cmd
	cleanup   []func()
	http      *http.Client
	// log is a copy of the process's stderr (it logs at warn), kept when a
	// measurement on it failed (keepLog) and removed on stop otherwise.
	log     *os.File
	keepLog bool
}

// logDir is where servers' stderr copies go (the -profile directory, or a
// temporary one made by run); "" = no copies.
var logDir string

var logSeq atomic.Int64

// stderr returns the writer for the server's stderr: the tool's stderr with
// a prefix, plus a file in logDir.
func (s *server) stderr(prefix string) io.Writer {
	w := io.Writer(&prefixWriter{prefix: prefix, w: os.Stderr})
	if logDir == "" {
		return w
	}
	f, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%s-%d-%d.log", s.kind, time.Now().Unix(), logSeq.Add(1))))
	if err != nil {
		return w
	}
	s.log = f
	return io.MultiWriter(w, f)
}

// logMark is the current size of the server's log copy (see logSince).
func (s *server) logMark() int64 {
	if s.log == nil {
		return 0
	}
	st, err := s.log.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// logSince keeps the log file and returns its path and the first line
// the server logged after mark (warnings and errors; "" when none).
func (s *server) logSince(mark int64) (path, first string) {
	if s.log == nil {
		return "", ""
	}
	s.keepLog = true
	b, err := os.ReadFile(s.log.Name())
	if err == nil && int64(len(b)) > mark {
		first, _, _ = strings.Cut(strings.TrimSpace(string(b[mark:])), "\n")
	}
	return s.log.Name(), first
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type startOpts struct {
	bin      string // switchboard binary
	store    string // sqlite | postgres
	pgURL    string // base PostgreSQL URL
	logLevel string
	env      []string // extra environment, e.g. SWITCHBOARD_RELAY_MODE=poll
	dsn      string   // a schema already made (cluster nodes share one); "" = a fresh one
	project  bool     // create the bench project (false for the 2nd, 3rd node of a cluster)
}

// startSwitchboard runs the real binary on a fresh SQLite file or a fresh
// PostgreSQL schema, creates project "bench" and mints a bearer with
// `switchboard token`.
func startSwitchboard(ctx context.Context, o startOpts) (*server, error) {
	s := &server{kind: "switchboard", store: o.store, http: load.NewHTTPClient()}
	var err error
	if s.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	if s.debugAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	s.cleanup = append(s.cleanup, func() { os.RemoveAll(dir) })
	env := append(os.Environ(),
		"SWITCHBOARD_ADDR="+s.addr, "SWITCHBOARD_DEBUG_ADDR="+s.debugAddr,
		"SWITCHBOARD_DATA_DIR="+filepath.Join(dir, "data"), "SWITCHBOARD_JWT_SECRET="+benchSecret,
		"SWITCHBOARD_APP_KEY="+benchAppKey, "SWITCHBOARD_APP_SECRET="+benchAppSecret,
		"SWITCHBOARD_LOG_LEVEL="+o.logLevel, "DATABASE_URL=")
	env = append(env, o.env...)
	if o.store == "postgres" && o.dsn != "" {
		env = append(env, "DATABASE_URL="+o.dsn)
	} else if o.store == "postgres" {
		dsn, drop, err := newSchema(o.pgURL)
		if err != nil {
			return nil, err
		}
		s.cleanup = append(s.cleanup, drop)
		env = append(env, "DATABASE_URL="+dsn)
	}
	tc := exec.CommandContext(ctx, o.bin, "token", "--sub", "bench", "--name", "Bench", "--projects", benchSlug, "--admin", "--ttl", "6h")
	tc.Env = env
	tok, err := tc.Output()
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("switchboard token: %w", err)
	}
	s.token = strings.TrimSpace(string(tok))
	s.cmd = exec.Command(o.bin, "serve")
	s.cmd.Env = env
	s.cmd.Stderr = s.stderr("[switchboard] ")
	if err := s.cmd.Start(); err != nil {
		s.stop()
		return nil, fmt.Errorf("start switchboard: %w", err)
	}
	if err := s.waitHealthy(ctx, "/healthz"); err != nil {
		s.stop()
		return nil, err
	}
	if o.dsn != "" && !o.project {
		return s, nil
	}
	body := `{"slug":"` + benchSlug + `","name":"Bench"}`
	if code, b, err := s.post(ctx, "/api/v1/projects", body); err != nil || code != http.StatusCreated {
		s.stop()
		return nil, fmt.Errorf("create project: %d %s %v", code, b, err)
	}
	return s, nil
}

// startPeer runs this binary's `peer` subcommand as its own process, so its
// RSS and CPU are measured exactly like Switchboard's.
func startPeer(ctx context.Context, extra ...string) (*server, error) {
	s := &server{kind: "peer", http: load.NewHTTPClient()}
	var err error
	if s.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	s.debugAddr = s.addr
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(self, append([]string{"peer", "-addr", s.addr, "-secret", benchSecret}, extra...)...)
	s.cmd.Stderr = s.stderr("[peer] ")
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start peer: %w", err)
	}
	if err := s.waitHealthy(ctx, "/healthz"); err != nil {
		s.stop()
		return nil, err
	}
	s.token, err = mintToken(benchSecret, "bench")
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) waitHealthy(ctx context.Context, path string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := s.http.Get("http://" + s.addr + path); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not become healthy on %s", s.kind, s.addr)
}

func (s *server) post(ctx context.Context, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// stop sends SIGTERM, waits up to 20 s, then kills; then removes temp state.
func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	s.cleanup = nil
	if s.log != nil {
		s.log.Close()
		if !s.keepLog {
			os.Remove(s.log.Name())
		}
		s.log = nil
	}
}

// hasCentrifugo reports whether the server answers the Centrifugo
// WebSocket path (Switchboard's front door is being built on a branch).
func (s *server) hasCentrifugo() bool {
	resp, err := s.http.Get("http://" + s.addr + "/connection/websocket")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed
}

// target returns the subscription target for proto on channels (canonical names).
func (s *server) target(proto load.Protocol, channels ...string) load.Target {
	t := load.Target{Protocol: proto, Token: s.token}
	if s.kind == "switchboard" {
		// One user per connection, as on a real dashboard: Switchboard
		// limits connections per user (100 by default) across protocols;
		// the peer has no such limit.
		var n atomic.Int64
		t.TokenFor = func() string {
			tok, _ := mintToken(benchSecret, fmt.Sprintf("bench-%d", n.Add(1)))
			return tok
		}
	}
	switch proto {
	case load.Pusher:
		t.WSURL = "ws://" + s.addr + "/app/" + benchAppKey + "?protocol=7&client=switchboard-bench&version=8.0"
		t.AuthURL = "http://" + s.addr + "/broadcasting/auth"
		for _, c := range channels {
			t.Channels = append(t.Channels, "private-"+c)
		}
	case load.Centrifugo:
		t.WSURL = "ws://" + s.addr + "/connection/websocket"
		t.Channels = channels
	}
	return t
}

// padTo is the size of the stamped first name; it brings the event object
// clients receive to about 300 bytes on both servers.
const padTo = 72

func stampedName(stamp string) string {
	if n := padTo - len(stamp); n > 0 {
		return stamp + strings.Repeat("x", n)
	}
	return stamp
}

// publisher returns the HTTP publish path of the server: on Switchboard the
// REST attendee POST (a row and its AttendeeCreated event written in one
// transaction, then relayed from the outbox); on the peer its /api/publish
// with an object of the same shape and size as AttendeeCreated.
func (s *server) publisher() *load.Publisher {
	p := &load.Publisher{Token: s.token, Client: s.http}
	if s.kind == "switchboard" {
		p.URL = "http://" + s.addr + "/api/v1/projects/" + benchSlug + "/attendees"
		p.Body = func(stamp string) []byte {
			b, _ := json.Marshal(map[string]string{"first_name": stampedName(stamp), "last_name": "Bench", "email": "bench@example.com"})
			return b
		}
		return p
	}
	p.URL = "http://" + s.addr + "/api/publish"
	p.Body = func(stamp string) []byte {
		data := map[string]any{"attendee_id": 123456, "project_id": 1, "first_name": stampedName(stamp),
			"last_name": "Bench", "email": "bench@example.com", "attendee_type_id": nil,
			"created_at":     time.Now().UTC().Format(time.RFC3339),
			"x-triggered-by": map[string]string{"operation_id": "v1.project.attendees.store", "request_id": "01JDBENCHBENCHBENCHBENCH00"}}
		b, _ := json.Marshal(map[string]any{"channel": channelMain, "data": data})
		return b
	}
	return p
}

// gc makes the server run a garbage collection through its pprof endpoint.
func (s *server) gc() {
	if resp, err := s.http.Get("http://" + s.debugAddr + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// goroutines reads the server's goroutine count from its pprof endpoint.
func (s *server) goroutines() (int, error) {
	resp, err := s.http.Get("http://" + s.debugAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufioFirstLine(resp.Body)
	if err != nil {
		return 0, err
	}
	// "goroutine profile: total 123"
	i := strings.LastIndexByte(line, ' ')
	return strconv.Atoi(strings.TrimSpace(line[i+1:]))
}

func bufioFirstLine(r io.Reader) (string, error) {
	b := make([]byte, 128)
	n, err := io.ReadFull(r, b)
	if n == 0 {
		return "", err
	}
	line, _, _ := bytes.Cut(b[:n], []byte("\n"))
	return string(line), nil
}

// newSchema creates a fresh schema in the PostgreSQL database and returns a
// DSN pointing at it and a func that drops it.
func newSchema(base string) (string, func(), error) {
	db, err := sql.Open("postgres", base)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("postgres (%s): %w", base, err)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + name, func() {
		_, _ = db.Exec(`DROP SCHEMA ` + name + ` CASCADE`)
		_, _ = db.Exec(`DROP PUBLICATION IF EXISTS switchboard_outbox_` + name) // the relay's, in logical mode
		db.Close()
	}, nil
}

// prefixWriter labels a child's log lines and keeps only warnings and
// errors' worth of noise out of the report (the children log at warn).
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, line)
	}
	return len(b), nil
}
