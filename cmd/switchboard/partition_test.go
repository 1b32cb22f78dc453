package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/domain/dbtest"
	"switchboard/internal/faultproxy"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

// A database that goes away fails fast and says so, and the product comes
// back by itself: through a proxy the test controls (the shared PostgreSQL
// is never touched), the path is cut without a reset (a partition), then
// reset, then restored.
func TestDatabasePartition(t *testing.T) {
	const dbTimeout = 2 * time.Second
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	logs := &syncBuffer{}
	addr, _ := startServeLogging(t, u.String(), logs, map[string]string{
		"SWITCHBOARD_DB_TIMEOUT": dbTimeout.String(),
		"SWITCHBOARD_API_KEY":    "k",
		"SWITCHBOARD_LOG_LEVEL":  "info",
	})
	base := "http://" + addr
	admin := mint(t, "1", nil, true)
	client := &http.Client{Timeout: 20 * time.Second}
	write := func(i int) (int, http.Header, []byte, time.Duration) {
		req, _ := http.NewRequest("POST", base+"/api/v1/projects/demo/attendees",
			strings.NewReader(fmt.Sprintf(`{"first_name":"P%d","last_name":"Q","email":"p%d@x.io"}`, i, i)))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("write %d: no answer: %v", i, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b, time.Since(start)
	}
	health := func() (int, string, time.Duration) {
		start := time.Now()
		res, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), time.Since(start)
	}
	waitHealth := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, body, took := health()
			if took > 1100*time.Millisecond {
				t.Fatalf("healthz took %v (must answer within 1s)", took)
			}
			if st == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("healthz still %d %s, want %d", st, body, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if st, body := post(t, base+"/api/v1/projects", admin, `{"slug":"demo","name":"Demo"}`); st != 201 {
		t.Fatalf("create project: %d %s", st, body)
	}
	committed := 0 // writes answered 201
	if st, _, body, _ := write(0); st != 201 {
		t.Fatalf("write before the cut: %d %s", st, body)
	}
	committed++

	outage := func(name string, cut func()) {
		t.Run(name, func(t *testing.T) {
			cut()
			var wg sync.WaitGroup
			for i := 1; i <= 8; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					st, h, body, took := write(i)
					var e struct {
						Error struct{ Code, Message string }
					}
					_ = json.Unmarshal(body, &e)
					if st != http.StatusServiceUnavailable || e.Error.Code != "database_unavailable" || h.Get("Retry-After") == "" {
						t.Errorf("write %d during the outage: %d %s (Retry-After %q)", i, st, body, h.Get("Retry-After"))
					}
					if took > dbTimeout+300*time.Millisecond {
						t.Errorf("write %d answered after %v, want within the %v database timeout (+ margin)", i, took, dbTimeout)
					}
				}(i)
			}
			wg.Wait()
			waitHealth(http.StatusServiceUnavailable)
			if _, body, _ := health(); !strings.Contains(body, "database_unavailable") {
				t.Errorf("healthz during the outage says %s", body)
			}
			proxy.Pass()
			waitHealth(http.StatusOK)
			// Writes work again at once, and the relay delivers them.
			if st, _, body, _ := write(100); st != 201 {
				t.Fatalf("write after the outage: %d %s", st, body)
			}
			committed++
		})
	}
	outage("partition", proxy.Partition)
	outage("reset", proxy.Reset)

	// A write answered 503 may have committed; retried with the same
	// Idempotency-Key it yields exactly one row and one event, whether the
	// first try committed (the retry is told so) or not (the retry writes).
	t.Run("idempotent retry after a 503", func(t *testing.T) {
		keyed := func() (int, string) {
			req, _ := http.NewRequest("POST", base+"/api/v1/projects/demo/attendees",
				strings.NewReader(`{"first_name":"Idem","last_name":"Potent","email":"idem@x.io"}`))
			req.Header.Set("Authorization", "Bearer "+admin)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "partition-1")
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("keyed write: %v", err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		proxy.Partition()
		if st, body := keyed(); st != http.StatusServiceUnavailable {
			t.Fatalf("keyed write during the partition: %d %s", st, body)
		}
		waitHealth(http.StatusServiceUnavailable) // an outage, logged
		proxy.Pass()
		waitHealth(http.StatusOK)
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, body := keyed()
			if st == http.StatusCreated || (st == http.StatusConflict && strings.Contains(body, "idempotency_key_committed")) {
				break
			}
			if st != http.StatusConflict || !strings.Contains(body, "idempotency_key_in_use") || time.Now().After(deadline) {
				t.Fatalf("retry: %d %s", st, body)
			}
			time.Sleep(250 * time.Millisecond)
		}
		// Once settled, a further retry never writes again.
		if st, body := keyed(); st != http.StatusCreated && st != http.StatusConflict {
			t.Fatalf("second retry: %d %s", st, body)
		}
	})

	// Three outages: the partition, the reset, the keyed retry's partition.
	if n := logs.count("level=ERROR msg=\"database unreachable"); n != 3 {
		t.Errorf("%d 'database unreachable' log lines for three outages, want 3:\n%s", n, logs.b.String())
	}
	if n := logs.count("database reachable again"); n != 3 {
		t.Errorf("%d 'database reachable again' log lines, want 3", n)
	}
	// Writes answered 503 may still have committed (a request held by
	// the cut network goes on when it heals: the documented caveat), so
	// count the rows that exist. Every committed event reaches the history
	// once: the relay resumed by itself.
	req, _ := http.NewRequest("GET", base+"/api/v1/projects/demo/attendees?limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Data []any }
	_ = json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if len(list.Data) < committed {
		t.Fatalf("%d attendees, but %d writes answered 201", len(list.Data), committed)
	}
	idem := 0
	for _, a := range list.Data {
		if m, _ := a.(map[string]any); m["email"] == "idem@x.io" {
			idem++
		}
	}
	if idem != 1 {
		t.Fatalf("%d attendees written under one Idempotency-Key, want 1", idem)
	}
	committed = len(list.Data)
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("POST", base+"/api/history", strings.NewReader(`{"channel":"dashboard.project.demo.attendees","limit":-1}`))
		req.Header.Set("Authorization", "apikey k")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			Result struct{ Publications []any } `json:"result"`
		}
		_ = json.NewDecoder(res.Body).Decode(&h)
		res.Body.Close()
		if got := len(h.Result.Publications); got >= committed {
			if got > committed {
				t.Fatalf("%d publications for %d committed writes", got, committed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d committed events relayed after the outages", len(h.Result.Publications), committed)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
