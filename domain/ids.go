package domain

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// idBlock holds ids drawn ahead from one table's sequence.
type idBlock struct {
	mu      sync.Mutex
	ids     []int64
	last    int64     // the last id handed out
	size    int       // ids per draw, see grow
	drawnAt time.Time // when the last draw began
	drawing bool      // a draw ahead is under way
}

// Draw sizes: a draw is one round trip, so a busy table draws more at once
// (fewer round trips), a quiet one less (fewer ids lost when the process
// stops: unused ids are lost like the values of a rolled-back insert).
const (
	idBatchMin = 32
	idBatchMax = 1024
)

// grow returns the size of the draw that begins now: doubled when the last
// one was used up within a second, halved after a quiet half minute.
func (b *idBlock) grow(now time.Time) int {
	since := now.Sub(b.drawnAt)
	switch {
	case b.size == 0:
		b.size = idBatchMin
	case since < time.Second && b.size < idBatchMax:
		b.size *= 2
	case since > 30*time.Second && b.size > idBatchMin:
		b.size /= 2
	}
	b.drawnAt = now
	return b.size
}

// nextID returns a new id for table's "id" column (PostgreSQL). Ids come
// from blocks drawn from the column's sequence. When a block runs half
// empty, the next one is drawn in the background on a pool connection, so
// writers do not queue behind a round trip: with one block drawn on
// demand, 18 of 32 writers of the outbox benchmark waited here (see
// BENCHMARKS.md, session 14). When the block is empty after all, the caller
// draws on q, its own transaction's connection when it holds one, since
// the pool may have none to spare.
func (db *DB) nextID(ctx context.Context, q Querier, table string) (int64, error) {
	v, _ := db.idBlocks.LoadOrStore(table, &idBlock{})
	b := v.(*idBlock)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ids) == 0 {
		ids, err := drawIDs(ctx, q, table, b.grow(time.Now()))
		if err != nil {
			return 0, err
		}
		b.ids = ids // in order; fresh from the sequence, even one reset meanwhile
	}
	id := b.ids[0]
	b.ids = b.ids[1:]
	b.last = id
	if len(b.ids) <= b.size/2 && !b.drawing {
		b.drawing = true
		go db.drawAhead(table, b, b.grow(time.Now()))
	}
	return id, nil
}

// drawAhead adds a block of n ids to b. A failure is left to the next
// caller that finds b empty, which draws on its own and reports it. A
// caller may have drawn meanwhile, and its ids may be later in the
// sequence: the ids are kept in order, and any below one already handed
// out are dropped (a gap), so ids stay increasing within a process.
func (db *DB) drawAhead(table string, b *idBlock, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), db.Timeout())
	defer cancel()
	ids, err := drawIDs(ctx, db, table, n)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drawing = false
	if err == nil {
		b.add(ids)
	}
}

// add puts drawn ids in b, in order, without those below the last one
// handed out.
func (b *idBlock) add(ids []int64) {
	b.ids = append(b.ids, ids...)
	slices.Sort(b.ids)
	keep, _ := slices.BinarySearch(b.ids, b.last+1)
	b.ids = b.ids[keep:]
}

// drawIDs draws n values of table's id sequence in one round trip.
func drawIDs(ctx context.Context, q Querier, table string, n int) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2) ORDER BY 1`, table, n)
	if err != nil {
		return nil, fmt.Errorf("ids for %s: %w", table, err)
	}
	defer rows.Close()
	ids := make([]int64, 0, n)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("ids for %s: %w", table, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ids for %s: %w", table, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("ids for %s: no sequence values", table)
	}
	return ids, nil
}
