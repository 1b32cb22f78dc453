package outbox

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// readAfter returns rows in commit order by number, across digit
// boundaries of the transaction id (a text sort would put 100 before 9),
// starting right after the given position.
func TestReadAfterOrder(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	// Transactions far below xmin, inserted out of order.
	for _, r := range []struct {
		xid uint64
		off int64
	}{{100, 5}, {9, 1}, {10, 3}, {9, 2}, {1000, 4}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO watermill_events ("offset", uuid, payload, transaction_id) VALUES ($1, $2, '{"id":"x"}', $3::text::xid8)`,
			r.off, fmt.Sprint(r.off), strconv.FormatUint(r.xid, 10)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		after position
		want  string
	}{
		{position{}, "[9/1 9/2 10/3 100/5 1000/4]"},
		{position{xid: 9, offset: 1}, "[9/2 10/3 100/5 1000/4]"},
		{position{xid: 10, offset: 3}, "[100/5 1000/4]"},
		{position{xid: 1000, offset: 4}, "[]"},
	} {
		rows, err := readAfter(ctx, db, domain.Postgres, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%d/%d", r.pos.xid, r.pos.offset))
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("after %+v: %v, want %s", tc.after, got, tc.want)
		}
	}
}
