package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/lib/pq"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// A process that wakes its own relay (LocalWake) commits without NOTIFY;
// any other writer of the database still NOTIFYs, and both kinds of write
// are relayed.
func TestLocalWakeSkipsNotify(t *testing.T) {
	dsn, drop := dbtest.NewSchema(t)
	t.Cleanup(drop)
	ctx := context.Background()
	open := func(local bool) *domain.DB {
		db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: dsn, LocalWake: local})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	local, foreign := open(true), open(false)
	if err := domain.Migrate(ctx, local, domain.CoreMigrations()); err != nil {
		t.Fatal(err)
	}
	l := pq.NewListener(dsn, 10*time.Millisecond, time.Second, nil)
	defer l.Close()
	if err := l.Listen("switchboard_outbox_" + local.Schema); err != nil {
		t.Fatal(err)
	}
	notified := func() bool {
		select {
		case n := <-l.Notify:
			return n != nil
		case <-time.After(500 * time.Millisecond):
			return false
		}
	}
	tests := []struct {
		name   string
		db     *domain.DB
		notify bool
	}{
		{"serve's own sessions: no NOTIFY", local, false},
		{"another writer: NOTIFY", foreign, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := emit(t, tt.db, i, false); err != nil {
				t.Fatal(err)
			}
			if got := notified(); got != tt.notify {
				t.Fatalf("notified = %v, want %v", got, tt.notify)
			}
		})
	}
	// Both events reach a relay on the local handle.
	c := newCollector()
	runRelayPolling(t, local, c, 50*time.Millisecond)
	for range tests {
		select {
		case <-c.ch:
		case <-time.After(5 * time.Second):
			t.Fatal("an event was not relayed")
		}
	}
}
