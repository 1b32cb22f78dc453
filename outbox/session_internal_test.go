package outbox

import (
	"context"
	"errors"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// The relay's session runs with synchronous_commit off; its connection must
// never go back to the pool, where a request's transaction could pick it
// and answer before its commit is durable. With a pool of one connection,
// every statement after the session shows whether it came back.
func TestAsyncSessionNeverReturnsToThePool(t *testing.T) {
	db := dbtest.Postgres(t)
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	setting := func() string {
		var v string
		if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	boom := errors.New("boom")
	for _, step := range []struct {
		name string
		fn   func(domain.Querier) error
		want error
	}{
		{"statements", func(c domain.Querier) error {
			for range 3 {
				var v, seq string
				if err := c.QueryRowContext(ctx, `SELECT current_setting('synchronous_commit'), current_setting('enable_seqscan')`).Scan(&v, &seq); err != nil {
					return err
				}
				if v != "off" || seq != "off" {
					t.Errorf("session synchronous_commit = %q, enable_seqscan = %q, want off and off", v, seq)
				}
			}
			if n := len(c.(*sessionConn).stmts); n != 1 {
				t.Errorf("a statement run three times was prepared %d times, want 1", n)
			}
			return nil
		}, nil},
		{"a failed statement", func(c domain.Querier) error {
			_, err := c.ExecContext(ctx, `SELECT no_such_column FROM watermill_events`)
			return err
		}, nil},
		{"an error of the caller", func(domain.Querier) error { return boom }, boom},
	} {
		s := asyncSession{db: db}
		err := s.do(ctx, step.fn)
		if step.want != nil && !errors.Is(err, step.want) {
			t.Fatalf("%s: err %v, want %v", step.name, err, step.want)
		}
		s.close()
		if v := setting(); v != "on" {
			t.Fatalf("after %s a pool connection has synchronous_commit %q", step.name, v)
		}
	}
}
