package actioncable_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
	"switchboard/gateway/actioncable"
	"switchboard/outbox"
)

const broadcastKey = "broadcast-test-key"

// broadcastServer serves the adapter with its broadcast endpoint on a
// real HTTP server, the outbox relayed into the node as in `switchboard
// serve`. It returns the server (for /cable clients) and the base URL.
func broadcastServer(t *testing.T, key string) (*server, string, *domain.DB) {
	t.Helper()
	db := dbtest.SQLite(t, domain.CoreMigrations())
	if err := domain.Migrate(context.Background(), db, gateway.Migrations()); err != nil {
		t.Fatal(err)
	}
	signer, err := domain.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	node := gateway.NewNode(&gateway.Authorizer{Membership: rooms{}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	node.History = gateway.NewHistory(db, gateway.HistoryConfig{})
	broker := gateway.NewLocalBroker()
	broker.Subscribe(node.DispatchBatch)
	a, err := actioncable.New(node, actioncable.Config{Signer: signer, Rooms: rooms{}, DB: db, BroadcastKey: key,
		MaxBroadcastData: 1024, PingInterval: 100 * time.Millisecond, IdleTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, gateway.Pipeline{History: node.History, Broker: broker}, outbox.Config{PollInterval: 50 * time.Millisecond, Mode: outbox.ModePoll})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	e := domain.NewEcho(nil)
	a.Routes(e)
	hs := httptest.NewServer(e)
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), time.Second)
		defer c()
		a.Shutdown(sctx)
		hs.Close()
		cancel()
		<-done
		_ = broker.Close(context.Background())
	})
	s := &server{t: t, node: node, a: a, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/cable", signer: signer}
	return s, hs.URL, db
}

func postBroadcast(t *testing.T, base, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+actioncable.BroadcastPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// What a /cable subscriber receives for each kind of data: the message as
// given (AnyCable's rules for strings), and the same stream's publication
// reaches every identifier bound to it.
func TestBroadcastEndpointDelivers(t *testing.T) {
	s, base, _ := broadcastServer(t, broadcastKey)
	c := s.connect("42")
	id := `{"channel":"NotificationChannel"}`
	c.send("subscribe", id, nil)
	c.expect(confirm(id))
	bearer := "Bearer " + broadcastKey
	for _, tc := range []struct {
		name, body, message string
	}{
		{"JSON text in a string (AnyCable)", `{"stream":"notification-channel-42","data":"{\"text\":\"hi\",\"n\":1}"}`, `{"text":"hi","n":1}`},
		{"an object as given", `{"stream":"notification-channel-42","data":{"text":"hi","n":2}}`, `{"text":"hi","n":2}`},
		{"plain text stays a string", `{"stream":"notification-channel-42","data":"hello world"}`, `"hello world"`},
		{"a JSON string in a string", `{"stream":"notification-channel-42","data":"\"quoted\""}`, `"quoted"`},
		{"a number", `{"stream":"notification-channel-42","data":7}`, `7`},
		{"the gateway's event shape", `{"stream":"notification-channel-42","data":{"event":"newNotification","data":{"id":3}}}`,
			`{"event":"newNotification","data":{"id":3}}`},
		{"meta is accepted", `{"stream":"notification-channel-42","data":"{}","meta":{"exclude_socket":"nobody"}}`, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := postBroadcast(t, base, bearer, tc.body); st != http.StatusCreated || body != "" {
				t.Fatalf("POST: %d %q, want 201 and no body", st, body)
			}
			c.expect(`{"identifier":` + quote(id) + `,"message":` + tc.message + `}`)
		})
	}
	t.Run("a batch, in order, all or nothing", func(t *testing.T) {
		st, body := postBroadcast(t, base, bearer, `[{"stream":"notification-channel-42","data":"1"},{"stream":"notification-channel-42","data":"2"}]`)
		if st != http.StatusCreated {
			t.Fatalf("POST: %d %s", st, body)
		}
		c.expect(`{"identifier":` + quote(id) + `,"message":1}`)
		c.expect(`{"identifier":` + quote(id) + `,"message":2}`)
		st, body = postBroadcast(t, base, bearer, `[{"stream":"notification-channel-42","data":"3"},{"stream":"nowhere","data":"4"}]`)
		if st != http.StatusUnprocessableEntity || !strings.Contains(body, `"field":"[1].stream"`) {
			t.Fatalf("a bad publication in a batch: %d %s", st, body)
		}
		c.silent(300 * time.Millisecond)
	})
	t.Run("other streams do not reach this member", func(t *testing.T) {
		if st, _ := postBroadcast(t, base, bearer, `{"stream":"notification-channel-43","data":"x"}`); st != http.StatusCreated {
			t.Fatalf("POST: %d", st)
		}
		c.silent(300 * time.Millisecond)
	})
}

// Bad input is refused with a clear error and publishes nothing; no input
// is a 500.
func TestBroadcastEndpointRefuses(t *testing.T) {
	_, base, db := broadcastServer(t, broadcastKey)
	bearer := "Bearer " + broadcastKey
	big := `"` + strings.Repeat("x", 2000) + `"`
	for _, tc := range []struct {
		name, auth, body string
		status           int
		says             string
	}{
		{"no key", "", `{"stream":"notification-channel-42","data":"x"}`, 401, "broadcast key"},
		{"wrong key", "Bearer nope", `{"stream":"notification-channel-42","data":"x"}`, 401, "broadcast key"},
		{"an API key header is not the broadcast key", "apikey " + broadcastKey, `{"stream":"notification-channel-42","data":"x"}`, 401, "broadcast key"},
		{"not JSON", bearer, `{"stream":`, 400, "malformed JSON"},
		{"not a publication", bearer, `"hello"`, 400, "publication"},
		{"no stream", bearer, `{"data":"x"}`, 422, "stream: is required"},
		{"not a Switchboard channel", bearer, `{"stream":"my_stream","data":"x"}`, 422, "not a Switchboard channel"},
		{"namespace channel", bearer, `{"stream":"voice:calls","data":"x"}`, 422, "not a Switchboard channel"},
		{"no data", bearer, `{"stream":"notification-channel-42"}`, 422, "data: is required"},
		{"null data", bearer, `{"stream":"notification-channel-42","data":null}`, 422, "data: is required"},
		{"data too big", bearer, `{"stream":"notification-channel-42","data":` + big + `}`, 413, "more than the 1024 allowed"},
		{"empty batch", bearer, `[]`, 422, "no publication"},
		{"batch too big", bearer, `[` + strings.TrimSuffix(strings.Repeat(`{"stream":"notification-channel-42","data":"x"},`, 101), ",") + `]`, 422, "at most 100"},
		{"exclude_socket too long", bearer, `{"stream":"notification-channel-42","data":"x","meta":{"exclude_socket":"` + strings.Repeat("a", 200) + `"}}`, 422, "exclude_socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := postBroadcast(t, base, tc.auth, tc.body)
			if st != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %s, want %d saying %q", st, body, tc.status, tc.says)
			}
		})
	}
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM watermill_events`).Scan(&n); err != nil {
		t.Fatalf("outbox table: %v", err)
	}
	if n != 0 {
		t.Fatalf("%d outbox rows after refused broadcasts", n)
	}
}

func TestBroadcastEndpointDisabledWithoutKey(t *testing.T) {
	_, base, _ := broadcastServer(t, "")
	st, body := postBroadcast(t, base, "Bearer ", `{"stream":"notification-channel-42","data":"x"}`)
	if st != http.StatusUnauthorized || !strings.Contains(body, "disabled") {
		t.Fatalf("%d %s", st, body)
	}
}

// A remote disconnect closes the user's /cable connections with Rails'
// "remote" disconnect, and no others.
func TestDisconnectUser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reconnect bool
	}{{"stay away", false}, {"come back", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, nil)
			jane1, jane2, bob := s.connect("42"), s.connect("42"), s.connect("43")
			if n := s.a.DisconnectUser(gateway.UserDisconnect{User: "42", Reconnect: tc.reconnect}); n != 2 {
				t.Fatalf("closed %d connections, want 2", n)
			}
			want := `{"type":"disconnect","reason":"remote","reconnect":false}`
			if tc.reconnect {
				want = `{"type":"disconnect","reason":"remote","reconnect":true}`
			}
			for _, c := range []*client{jane1, jane2} {
				c.expect(want)
				if _, _, err := c.next(2 * time.Second); err == nil || err == errTimeout {
					t.Fatalf("the connection stayed open after the disconnect: %v", err)
				}
			}
			bob.send("subscribe", `{"channel":"NotificationChannel"}`, nil)
			bob.expect(confirm(`{"channel":"NotificationChannel"}`))
		})
	}
}
