package domain

import (
	"context"
	"time"
)

// ShiftPlaceholders exposes shiftPlaceholders to the external tests.
var ShiftPlaceholders = shiftPlaceholders

// WithIdempotencyClaim puts a key claim on ctx as the Idempotent middleware
// does.
func WithIdempotencyClaim(ctx context.Context, scope, key, attempt string) context.Context {
	return context.WithValue(ctx, idemClaimKey{}, idemClaim{scope: scope, key: key, attempt: attempt})
}

// GroupConns is how many groups a DB commits at once.
const GroupConns = groupConns

// PauseGroupCommit holds db's committers before they fill their next group
// (each may have taken that group's first request) and returns the
// release. GroupQueued is how many requests wait in the queue meanwhile.
func PauseGroupCommit(db *DB) (release func()) {
	db.group.gate.Lock()
	return db.group.gate.Unlock
}

func GroupQueued(db *DB) int { return len(db.group.reqs) }

// IDsHeld is how many ids db holds drawn ahead for table.
func IDsHeld(db *DB, table string) int {
	v, ok := db.idBlocks.Load(table)
	if !ok {
		return 0
	}
	b := v.(*idBlock)
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ids)
}

// IDDrawSize is the size of the draw that follows one of size made since
// ago (size 0: the first draw).
func IDDrawSize(size int, since time.Duration) int {
	now := time.Now()
	b := &idBlock{size: size, drawnAt: now.Add(-since)}
	return b.grow(now)
}

// AddIDs puts drawn ids in a block that holds held and last handed out
// last, and returns what it holds then.
func AddIDs(held []int64, last int64, drawn []int64) []int64 {
	b := &idBlock{ids: held, last: last}
	b.add(drawn)
	return b.ids
}
