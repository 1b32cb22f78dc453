package notifications_test

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/notifications"
)

// TestConcurrentCreatesAnnounceEveryCount proves the count in each event is
// the database's: n concurrent creates announce 1..n, each exactly once.
func TestConcurrentCreatesAnnounceEveryCount(t *testing.T) {
	const n = 20
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := notifications.NewStore(db)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Create(as("backend", true), "42", notifications.Input{Type: "t", Title: "t", Body: "b"})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var counts []int
		for _, env := range dbtest.Outbox(t, db) {
			if env.Name != "updateNewNotificationCount" {
				continue
			}
			var d struct {
				N int `json:"new_notifications_count"`
			}
			if err := json.Unmarshal(env.Data, &d); err != nil {
				t.Fatal(err)
			}
			counts = append(counts, d.N)
		}
		slices.Sort(counts)
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("announced counts %v, want 1..%d each once", counts, n)
			}
		}
		if len(counts) != n {
			t.Fatalf("%d count events, want %d", len(counts), n)
		}
	}, notifications.Migrations())
}
