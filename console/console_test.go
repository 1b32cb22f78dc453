package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/console"
	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

const (
	jwtSecret = "console-test-jwt-secret-of-at-least-32-bytes"
	appSecret = "console-test-app-secret-0123456789"
)

type harness struct {
	t      *testing.T
	node   *gateway.Node
	signer *domain.Signer
	c      *console.Console
	srv    *httptest.Server
	hooks  *fakeHooks

	mu        sync.Mutex
	published []domain.Envelope
}

// newHarness serves a console on a fresh node. Its Publish "relays" at
// once: the event is dispatched on the node, as the relay would.
func newHarness(t *testing.T, mod func(*console.Config)) *harness {
	t.Helper()
	signer, err := domain.NewSigner(jwtSecret, domain.WithMaxTTL(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, node: gateway.NewNode(nil, nil), signer: signer, hooks: newFakeHooks()}
	cfg := console.Config{
		Node: h.node, Signer: signer, SessionSecret: "console-test-session-secret",
		Apps: []console.App{{ID: "app-id", Secret: appSecret}},
		Publish: func(ctx context.Context, env domain.Envelope) error {
			h.mu.Lock()
			h.published = append(h.published, env)
			h.mu.Unlock()
			h.node.DispatchBatch([]domain.Envelope{env})
			return nil
		},
		Relay:    &fakeRelay{lag: 1500 * time.Microsecond},
		Backlog:  func(context.Context) (int64, error) { return 3, nil },
		Webhooks: h.hooks, WakeWebhooks: func() { h.hooks.woken.Add(1) },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	e := domain.NewEcho(nil)
	c.Routes(e)
	h.srv = httptest.NewServer(e)
	t.Cleanup(func() {
		c.Close()
		h.srv.Close()
	})
	return h
}

func (h *harness) mint(c domain.Claims, ttl time.Duration) string {
	h.t.Helper()
	tok, err := h.signer.Mint(c, ttl)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) admin() string {
	return h.mint(domain.Claims{Name: "Staff", Admin: true, RegisteredClaims: jwt.RegisteredClaims{Subject: "1"}}, time.Hour)
}

func (h *harness) member() string {
	return h.mint(domain.Claims{Name: "Jane", Projects: []string{"*"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "42"}}, time.Hour)
}

type answer struct {
	status int
	code   string
	body   []byte
}

func (a answer) String() string {
	if a.code != "" {
		return fmt.Sprintf("%d %s", a.status, a.code)
	}
	return fmt.Sprint(a.status)
}

func (h *harness) call(method, path, bearer, body string, header ...string) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, body: b}
	if res.StatusCode >= 400 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			h.t.Errorf("%s %s: %d without an error body: %s", method, path, res.StatusCode, b)
		}
		a.code = eb.Error.Code
	}
	if res.StatusCode >= 500 {
		h.t.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return a
}

// session logs in with body and returns the session.
func (h *harness) session(body string) console.Session {
	h.t.Helper()
	a := h.call("POST", "/console/api/session", "", body)
	if a.status != http.StatusCreated {
		h.t.Fatalf("login %s: %s %s", body, a, a.body)
	}
	var s console.Session
	if err := json.Unmarshal(a.body, &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) adminSession() string {
	return h.session(`{"token":"` + h.admin() + `"}`).Token
}

// --- the event stream -------------------------------------------------

type sseMsg struct {
	event, id, data string
}

type sseClient struct {
	msgs   chan sseMsg
	cancel context.CancelFunc
	status int
}

// stream opens the event stream at path; lastID ("" none) is sent as
// Last-Event-ID.
func (h *harness) stream(path, lastID string) *sseClient {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	c := &sseClient{msgs: make(chan sseMsg, 1000), cancel: cancel, status: res.StatusCode}
	h.t.Cleanup(cancel)
	go func() {
		defer res.Body.Close()
		defer close(c.msgs)
		r := bufio.NewReader(res.Body)
		var m sseMsg
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if m.data != "" || m.event != "" {
					c.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "event: "):
				m.event = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				m.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				m.data = line[len("data: "):]
			}
		}
	}()
	return c
}

// next returns the next log line for which ok holds, within d.
func (c *sseClient) next(t *testing.T, d time.Duration, what string, ok func(console.LogLine) bool) (console.LogLine, sseMsg) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m, open := <-c.msgs:
			if !open {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if m.event != "" {
				continue
			}
			var l console.LogLine
			if err := json.Unmarshal([]byte(m.data), &l); err != nil {
				t.Fatalf("line %q: %v", m.data, err)
			}
			if ok(l) {
				return l, m
			}
		case <-timeout:
			t.Fatalf("no %s within %s", what, d)
		}
	}
}

// --- fakes --------------------------------------------------------------

type fakeRelay struct{ lag time.Duration }

func (r *fakeRelay) Running() bool               { return true }
func (r *fakeRelay) Failing() string             { return "" }
func (r *fakeRelay) Lag(time.Time) time.Duration { return r.lag }
func (r *fakeRelay) Events() uint64              { return 7 }

type fakeHooks struct {
	mu    sync.Mutex
	ds    []webhooks.Delivery
	woken atomic.Int32
}

func newFakeHooks() *fakeHooks {
	return &fakeHooks{ds: []webhooks.Delivery{
		{ID: 1, AppID: "app-id", URL: "https://hooks.example/a", Status: webhooks.StatusFailed},
		{ID: 2, AppID: "app-id", URL: "https://hooks.example/b", Status: webhooks.StatusPending},
	}}
}

func (f *fakeHooks) List(_ context.Context, status string, p domain.Page) (domain.List[webhooks.Delivery], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := domain.List[webhooks.Delivery]{Data: []webhooks.Delivery{}}
	for _, d := range f.ds {
		if status == "" || d.Status == status {
			out.Data = append(out.Data, d)
		}
	}
	return out, nil
}

func (f *fakeHooks) Retry(_ context.Context, id int64, _ time.Time) (webhooks.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.ds {
		if d.ID == id {
			f.ds[i].Status = webhooks.StatusPending
			return f.ds[i], nil
		}
	}
	return webhooks.Delivery{}, domain.NotFound("webhook delivery %d does not exist", id)
}

// protoSub is a subscription of a connection speaking proto.
type protoSub struct {
	id    string
	proto gateway.Protocol
	got   atomic.Int32
}

func (s *protoSub) ConnID() string             { return s.id }
func (s *protoSub) Deliver(*gateway.Message)   { s.got.Add(1) }
func (s *protoSub) Protocol() gateway.Protocol { return s.proto }
