package domain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/lib/pq"
)

// Sink receives committed events in outbox order. An error makes the relay
// retry the same event (head-of-line): order is kept and nothing is skipped.
type Sink func(ctx context.Context, env Envelope) error

// RelayConfig tunes the relay. Zero values mean the documented defaults.
type RelayConfig struct {
	// PollInterval bounds the wait for a wake-up (NOTIFY on PostgreSQL, an
	// in-process commit signal on both stores). Zero means 500ms.
	PollInterval time.Duration
	// Retention is how long relayed rows stay in the outbox. Zero means 24h.
	Retention time.Duration
	// PruneEvery is the pruning period. Zero means 1 minute.
	PruneEvery time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *RelayConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every invalid field at once.
func (c RelayConfig) Validate() error {
	var errs []error
	if c.PollInterval < 0 {
		errs = append(errs, errors.New("relay: PollInterval must not be negative"))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("relay: Retention must not be negative"))
	}
	if c.PruneEvery < 0 {
		errs = append(errs, errors.New("relay: PruneEvery must not be negative"))
	}
	return errors.Join(errs...)
}

// Relay forwards committed outbox rows to a Sink: a watermill-sql subscriber
// in the one consumer group RelayGroup, woken by commits instead of polling.
type Relay struct {
	db   *DB
	sink Sink
	cfg  RelayConfig
	seen *idRing
}

// NewRelay returns a relay of db's outbox into sink.
func NewRelay(db *DB, sink Sink, cfg RelayConfig) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || sink == nil {
		return nil, errors.New("relay: db and sink are required")
	}
	return &Relay{db: db, sink: sink, cfg: cfg, seen: newIDRing(8192)}, nil
}

// Run relays until ctx is done, then stops the subscriber so the position
// of everything already forwarded is committed before it returns.
func (r *Relay) Run(ctx context.Context) error {
	stop := make(chan struct{})
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()

	// Wake-ups: commits in this process, and NOTIFY from any process.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.forwardWakes(stop, r.db.committed, wake)
	}()
	if r.db.Dialect == Postgres {
		l, err := r.listen()
		if err != nil {
			close(stop)
			return err
		}
		defer l.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case _, ok := <-l.Notify: // nil after a reconnect: wake anyway
					if !ok {
						return
					}
					signal(wake)
				}
			}
		}()
	}

	schema, offsets := schemaAdapters(r.db.Dialect)
	ackDeadline := 30 * time.Second
	sub, err := wmsql.NewSubscriber(r.db.DB, wmsql.SubscriberConfig{
		ConsumerGroup:  RelayGroup,
		PollInterval:   r.cfg.PollInterval,
		ResendInterval: 100 * time.Millisecond,
		RetryInterval:  time.Second,
		AckDeadline:    &ackDeadline,
		BackoffManager: &wakeBackoff{wake: wake, stop: stop, maxWait: r.cfg.PollInterval, retry: time.Second},
		SchemaAdapter:  schema,
		OffsetsAdapter: offsets,
	}, watermill.NewSlogLoggerWithLevelMapping(r.cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		close(stop)
		return fmt.Errorf("relay: %w", err)
	}
	// The subscription must outlive ctx: cancelling its context would roll
	// back the batch transaction and lose the acked position. Close() ends it
	// cleanly instead.
	msgs, err := sub.Subscribe(context.WithoutCancel(ctx), OutboxTopic)
	if err != nil {
		close(stop)
		return fmt.Errorf("relay: subscribe: %w", err)
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		r.pruneLoop(stop)
	}()

	go func() {
		<-ctx.Done()
		// Keep consuming briefly: watermill waits for an ack in a select
		// that also watches Close, so closing right after our last Ack can
		// drop it and redeliver that event after a restart. The grace lets
		// the ack land and the batch's position commit first.
		time.Sleep(closeGrace)
		close(stop)
		_ = sub.Close()
	}()

	for msg := range msgs {
		var env Envelope
		if err := json.Unmarshal(msg.Payload, &env); err != nil {
			// A row we cannot read would block the outbox forever; log it loudly and move on.
			r.cfg.Logger.Error("relay: undecodable outbox row skipped", "uuid", msg.UUID, "err", err)
			msg.Ack()
			continue
		}
		if r.seen.contains(env.ID) {
			msg.Ack()
			continue
		}
		if err := r.sink(ctx, env); err != nil {
			r.cfg.Logger.Warn("relay: sink failed, will retry", "event", env.Name, "id", env.ID, "err", err)
			msg.Nack()
			continue
		}
		r.seen.add(env.ID)
		msg.Ack()
	}
	r.cfg.Logger.Debug("relay stopped")
	return nil
}

func (r *Relay) listen() (*pq.Listener, error) {
	connected := make(chan struct{})
	var once sync.Once
	l := pq.NewListener(r.db.DSN, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if ev == pq.ListenerEventConnected {
			once.Do(func() { close(connected) })
		}
		if err != nil {
			r.cfg.Logger.Warn("relay: notify listener", "event", ev, "err", err)
		}
	})
	if err := l.Listen("switchboard_outbox_" + r.db.Schema); err != nil {
		l.Close()
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	// The listener connects in the background and Listen returns before
	// LISTEN is active. Wait for it: the relay's first query must not run
	// before a commit by another process can wake it, or such a commit
	// would wait for the poll.
	select {
	case <-connected:
	case <-time.After(listenWait):
		r.cfg.Logger.Warn("relay: notify listener not connected yet; relying on the poll until it is", "waited", listenWait)
	}
	return l, nil
}

// listenWait bounds the wait for the LISTEN connection at start.
const listenWait = 5 * time.Second

func (r *Relay) forwardWakes(stop <-chan struct{}, in <-chan struct{}, out chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-in:
			signal(out)
		}
	}
}

func (r *Relay) pruneLoop(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n, err := r.Prune(context.Background())
			if err != nil {
				r.cfg.Logger.Warn("relay: prune", "err", err)
			} else if n > 0 {
				r.cfg.Logger.Debug("relay: pruned outbox", "rows", n)
			}
		}
	}
}

// Prune deletes outbox rows older than the retention window that the relay
// has already forwarded. It returns the number of rows deleted.
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	secs := int64(r.cfg.Retention / time.Second)
	var q string
	if r.db.Dialect == Postgres {
		q = `DELETE FROM "watermill_events" WHERE created_at < (CURRENT_TIMESTAMP - make_interval(secs => $1))::timestamp
AND transaction_id < (SELECT last_processed_transaction_id FROM "watermill_offsets_events" WHERE consumer_group = $2)`
	} else {
		q = `DELETE FROM "watermill_events" WHERE created_at < datetime('now', '-' || $1 || ' seconds')
AND "offset" <= (SELECT offset_acked FROM "watermill_offsets_events" WHERE consumer_group = $2)`
	}
	res, err := r.db.ExecContext(ctx, q, secs, RelayGroup)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return res.RowsAffected()
}

// closeGrace is how long the relay keeps consuming after its context ends,
// so the last forwarded event's position is committed before it stops.
const closeGrace = 250 * time.Millisecond

// wakeBackoff replaces watermill's fixed poll sleep: after an empty poll it
// waits for a commit signal (or maxWait as the safety net).
type wakeBackoff struct {
	wake    chan struct{}
	stop    <-chan struct{}
	maxWait time.Duration
	retry   time.Duration
}

func (w *wakeBackoff) HandleError(_ watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		return w.retry
	}
	if !noMsg {
		return 0
	}
	t := time.NewTimer(w.maxWait)
	defer t.Stop()
	select {
	case <-w.wake:
	case <-t.C:
	case <-w.stop:
	}
	return 0
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// idRing remembers the last n event ids so a batch redelivered within this
// process (ack deadline, a retried commit) is not fanned out twice.
type idRing struct {
	mu   sync.Mutex
	ids  []string
	set  map[string]struct{}
	next int
}

func newIDRing(n int) *idRing {
	return &idRing{ids: make([]string, n), set: make(map[string]struct{}, n)}
}

func (r *idRing) contains(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

func (r *idRing) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.ids[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ids[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ids)
}
