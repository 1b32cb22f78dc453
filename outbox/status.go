package outbox

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/domain"
)

// Status is what the relay tells about itself, for readiness and metrics:
// whether it runs, whether it is retrying a failure, how far behind it is,
// and what it has delivered. One Status outlives the relays of a node (a
// cluster node relays in turns, each turn a new Relay), so the caller makes
// it and passes it in Config.Status. The zero value is ready; all methods
// are safe for concurrent use. It is updated once per batch, never per
// delivery to a connection.
type Status struct {
	running atomic.Bool
	failing atomic.Pointer[string] // the error being retried, nil when none
	batches atomic.Uint64
	events  atomic.Uint64
	lag     lagHistogram

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]time.Time // batch handed over → its oldest event's OccurredAt
}

// Running reports whether a relay has started relaying (it read its
// positions) and not stopped.
func (s *Status) Running() bool { return s.running.Load() }

// Failing returns the error the running relay is retrying (a database
// that does not answer, a broken replication connection), or "" when it
// is not retrying anything.
func (s *Status) Failing() string {
	if p := s.failing.Load(); p != nil {
		return *p
	}
	return ""
}

// Lag is how long the oldest event handed over and not yet delivered to
// every hub has waited since it was written (its OccurredAt, taken in the
// writing transaction), or 0 when nothing handed over waits: an idle
// relay is not behind. Events not read yet (a relay that cannot read)
// show in Failing and in Backlog, not here.
func (s *Status) Lag(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest time.Time
	for _, t := range s.pending {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return max(now.Sub(oldest), 0)
}

// Batches and Events count what the relay delivered: batches handed to
// the sink whose delivery it confirmed, and the events in them.
func (s *Status) Batches() uint64 { return s.batches.Load() }

// Events: see Batches.
func (s *Status) Events() uint64 { return s.events.Load() }

// lagBounds are the upper bounds, in seconds, of the relay lag histogram:
// from the milliseconds a live relay takes to the minutes of a restart
// after an outage.
var lagBounds = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// LagBuckets returns the upper bounds, in seconds, of LagHistogram's
// buckets (+Inf not included).
func LagBuckets() []float64 { return append([]float64(nil), lagBounds[:]...) }

// LagHistogram returns the histogram of every delivered event's lag (from
// OccurredAt to its delivery to every hub): cumulative counts per bound of
// LagBuckets, the number of events and the sum of their lags in seconds.
func (s *Status) LagHistogram() (cumulative []uint64, count uint64, sum float64) {
	return s.lag.snapshot()
}

func (s *Status) setRunning(on bool) { s.running.Store(on) }

// setFailing records err as the error being retried; nil clears it.
func (s *Status) setFailing(err error) {
	if err == nil {
		s.failing.Store(nil)
		return
	}
	msg := err.Error()
	s.failing.Store(&msg)
}

// handedOver records a batch given to the sink and returns its key for
// delivered or dropped.
func (s *Status) handedOver(envs []domain.Envelope) uint64 {
	var oldest time.Time
	for _, env := range envs {
		if !env.OccurredAt.IsZero() && (oldest.IsZero() || env.OccurredAt.Before(oldest)) {
			oldest = env.OccurredAt
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if !oldest.IsZero() {
		if s.pending == nil {
			s.pending = map[uint64]time.Time{}
		}
		s.pending[s.seq] = oldest
	}
	return s.seq
}

// delivered records that every hub has the batch of key, at now.
func (s *Status) delivered(key uint64, envs []domain.Envelope, now time.Time) {
	s.dropped(key)
	s.batches.Add(1)
	s.events.Add(uint64(len(envs)))
	for _, env := range envs {
		if !env.OccurredAt.IsZero() {
			s.lag.observe(now.Sub(env.OccurredAt))
		}
	}
}

// dropped forgets the batch of key (the sink refused it; it is read again).
func (s *Status) dropped(key uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, key)
}

// lagHistogram counts durations into LagBuckets with atomics: the relay
// observes and a scrape reads at the same time, and the metrics exporter
// turns it into a Prometheus histogram (the outbox does not import
// Prometheus).
type lagHistogram struct {
	counts [len(lagBounds) + 1]atomic.Uint64 // per bucket (not cumulative), then +Inf
	nanos  atomic.Uint64                     // sum of the observed durations
}

func (h *lagHistogram) observe(d time.Duration) {
	d = max(d, 0) // clocks of two nodes may disagree a little
	secs := d.Seconds()
	i := 0
	for i < len(lagBounds) && secs > lagBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.nanos.Add(uint64(d))
}

func (h *lagHistogram) snapshot() (cumulative []uint64, count uint64, sum float64) {
	cumulative = make([]uint64, len(lagBounds))
	for i := range lagBounds {
		count += h.counts[i].Load()
		cumulative[i] = count
	}
	count += h.counts[len(lagBounds)].Load()
	return cumulative, count, float64(h.nanos.Load()) / float64(time.Second)
}

// BacklogCap bounds Backlog's count, so a scrape of a database with a huge
// backlog reads a bounded number of index entries.
const BacklogCap = 100_000

// Backlog counts the outbox rows committed and not yet delivered to every
// hub (after the relay's delivered position), up to BacklogCap. Any node
// may ask: the position is in the database, shared by the nodes of a
// cluster, so they all report the same number. Logical decoding deletes
// delivered rows within milliseconds and leaves the position alone, so
// there it counts the rows left, the few being deleted included.
func Backlog(ctx context.Context, db *domain.DB) (int64, error) {
	_, delivered, err := positionsOf(ctx, db)
	if err != nil {
		return 0, err
	}
	var q string
	var args []any
	if db.Dialect == domain.Postgres {
		q = `SELECT count(*) FROM (SELECT 1 FROM "watermill_events" e
WHERE (e.transaction_id, e."offset") > ($1::text::xid8, $2) LIMIT ` + strconv.Itoa(BacklogCap) + `) b`
		args = []any{strconv.FormatUint(delivered.xid, 10), delivered.offset}
	} else {
		q = `SELECT count(*) FROM (SELECT 1 FROM "watermill_events" WHERE "offset" > $1 LIMIT ` + strconv.Itoa(BacklogCap) + `) b`
		args = []any{delivered.offset}
	}
	var n int64
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox backlog: %w", err)
	}
	return n, nil
}
