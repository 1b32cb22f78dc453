package gateway

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"switchboard/domain"
)

// HistoryOptions say whether and how a channel keeps a stream.
type HistoryOptions struct {
	// Size is the most publications kept; zero disables history.
	Size int
	// TTL is how long a publication is kept; zero disables history.
	TTL time.Duration
}

// Enabled reports whether the options keep a stream at all (both a size and
// a TTL are needed, as in Centrifugo).
func (o HistoryOptions) Enabled() bool { return o.Size > 0 && o.TTL > 0 }

// StreamPosition is a place in a channel's stream: the top offset of an
// epoch. A new epoch means the stream was lost (expired, removed), so
// positions of the old epoch cannot be recovered.
type StreamPosition struct {
	Offset uint64
	Epoch  string
}

// HistoryConfig configures a History.
type HistoryConfig struct {
	// Options returns the history options of a hub channel; more can be
	// added with History.Provide. Channels whose options are not Enabled
	// get no offsets and keep nothing.
	Options func(channel string) HistoryOptions
	// MetaTTL is how long an idle stream's epoch and top offset outlive its
	// last publication, so a client that reconnects after the data expired
	// learns it missed something instead of seeing a fresh stream.
	// Zero means 24h.
	MetaTTL time.Duration
	// MaxRecover caps the publications a recovery returns; a client further
	// behind is told recovered=false. Zero means 300 (Centrifugo's default).
	MaxRecover int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// History keeps a bounded, expiring stream per channel in the database:
// the durable Centrifugo history (offsets, epochs, recovery) and the last
// event of Pusher cache channels. It survives restarts, and every node on
// the database reads the same streams.
//
// Streams are written only by the relay, through Pipeline.Keep, in the
// relay's own transaction: an event gets its offsets before it leaves for
// any hub, and is in the history before any client could have seen it, so
// a client that saw offset N live finds N here after any crash. Offsets
// follow the outbox's commit order (one relay per database, see
// outbox.Claim).
type History struct {
	db  *domain.DB
	cfg HistoryConfig

	mu        sync.RWMutex
	providers []func(string) HistoryOptions
}

// NewHistory returns the history kept in db (see Migrations for its
// tables).
func NewHistory(db *domain.DB, cfg HistoryConfig) *History {
	if cfg.MetaTTL <= 0 {
		cfg.MetaTTL = 24 * time.Hour
	}
	if cfg.MaxRecover <= 0 {
		cfg.MaxRecover = 300
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &History{db: db, cfg: cfg}
	if cfg.Options != nil {
		h.providers = append(h.providers, cfg.Options)
	}
	return h
}

// Provide adds a source of options (a protocol adapter's channels); a
// channel gets the largest size and TTL any source gives it. Call before
// serving.
func (h *History) Provide(fn func(channel string) HistoryOptions) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.providers = append(h.providers, fn)
}

// Options returns channel's history options.
func (h *History) Options(channel string) HistoryOptions {
	h.mu.RLock()
	ps := h.providers
	h.mu.RUnlock()
	var o HistoryOptions
	for _, p := range ps {
		po := p(channel)
		if !po.Enabled() {
			continue
		}
		o.Size, o.TTL = max(o.Size, po.Size), max(o.TTL, po.TTL)
	}
	return o
}

// MaxRecover is the most publications a recovery returns.
func (h *History) MaxRecover() int { return h.cfg.MaxRecover }

// keep numbers and stores envs' publications on history-enabled channels
// through q, and records each in env.Streams. It runs in the relay's
// transaction (see Pipeline.Keep); on PostgreSQL it writes in one
// statement, so the relay may run it on an autocommit session instead.
func (h *History) keep(ctx context.Context, q domain.Querier, envs []domain.Envelope) error {
	type pending struct {
		env  int
		opts HistoryOptions
	}
	var order []string
	byChannel := map[string][]pending{}
	for i := range envs {
		for _, ch := range envs[i].Scope.ChannelNames() {
			opts := h.Options(ch)
			if !opts.Enabled() {
				continue
			}
			if _, seen := byChannel[ch]; !seen {
				order = append(order, ch)
			}
			byChannel[ch] = append(byChannel[ch], pending{env: i, opts: opts})
		}
	}
	if len(order) == 0 {
		return nil
	}
	now := h.cfg.Now()
	b := keepBatch{now: now.UnixMilli()}
	for _, ch := range order {
		ps := byChannel[ch]
		size := int64(ps[len(ps)-1].opts.Size)
		b.streams = append(b.streams, keptStream{channel: ch, n: int64(len(ps)), size: size, stride: max(1, size/8)})
		for k, p := range ps {
			env := &envs[p.env]
			var tags string
			if len(env.Tags) > 0 {
				t, err := json.Marshal(env.Tags)
				if err != nil {
					return fmt.Errorf("history: tags of %s: %w", env.ID, err)
				}
				tags = string(t)
			}
			// A batch larger than the stream stores only its last size
			// publications: the others are out of reach of any read the
			// moment it commits, and a trim could not find them later
			// (see trimRange).
			b.events = append(b.events, keptEvent{env: p.env, channel: ch, k: int64(k + 1), n: int64(len(ps)), tags: tags,
				expires: now.Add(p.opts.TTL).UnixMilli(), store: int64(len(ps)-k) <= size})
		}
	}
	var tops map[string]StreamPosition
	var err error
	if h.db.Dialect == domain.Postgres {
		tops, err = b.writePostgres(ctx, q, envs)
	} else {
		tops, err = b.write(ctx, q, envs)
	}
	if err != nil {
		return err
	}
	for _, e := range b.events {
		top := tops[e.channel]
		envs[e.env].Streams = append(envs[e.env].Streams, domain.StreamOffset{Channel: e.channel, Offset: uint64(e.offset(int64(top.Offset))), Epoch: top.Epoch})
	}
	return nil
}

// keepBatch is what one relay batch adds to the streams: the channels it
// moves, and each event's place among that channel's new publications.
type keepBatch struct {
	now     int64
	streams []keptStream
	events  []keptEvent
}

type keptStream struct {
	channel string
	// n is the publications the batch adds; size and stride bound the
	// stream (see trimRange).
	n, size, stride int64
}

type keptEvent struct {
	env     int
	channel string
	// k is the event's place among its channel's n new publications,
	// from 1 (see offset).
	k, n    int64
	tags    string // JSON, empty for none
	expires int64
	store   bool
}

// offset is the event's offset once its channel's stream is at top.
func (e keptEvent) offset(top int64) int64 { return top - e.n + e.k }

// trimRange says which old publications a stream that moved from top-n to
// top drops, if any: those in (lo, hi]. Streams are trimmed by size now and
// then (when top crosses a multiple of stride), and reads never look below
// top-size, so rows left between trims are invisible. The range has a
// floor because every earlier trim already dropped what lies below it:
// an open range walks every deleted row the table has not vacuumed yet,
// which made the trim the slowest step of a batch under load (see
// BENCHMARKS.md, Session 11). Rows a change of size leaves below the floor
// expire with their TTL (Prune).
func trimRange(top int64, s keptStream) (lo, hi int64, ok bool) {
	first := top - s.n + 1
	if top <= s.size || top/s.stride == (first-1)/s.stride {
		return 0, 0, false
	}
	return first - 1 - s.size - s.stride, top - s.size, true
}

// keepPostgres moves the streams, stores the publications and trims, in one
// statement: one round trip, and atomic without a transaction. Offsets are
// computed from the tops the same statement returns. The trim's bounds are
// computed apart (tr) so that the DELETE's only condition on the history
// is the bounded range: joined to the streams directly, the planner added
// "channel = s.channel" as a second bitmap scan of every index entry of
// the channel, dead ones included (4 ms a batch, 16 ms once bloated).
// tr is trimRange, and the stored offset keptEvent.offset, in SQL.
const keepPostgres = `WITH s AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS s(channel, epoch, n, size, stride)
), adv AS (
  INSERT INTO switchboard_streams (channel, epoch, top, touched)
  SELECT channel, epoch, n, $6 FROM s
  ON CONFLICT (channel) DO UPDATE SET top = switchboard_streams.top + excluded.top, touched = excluded.touched
  RETURNING channel, top, epoch
), ins AS (
  INSERT INTO switchboard_history (channel, "offset", event_id, name, data, tags, expires_at)
  SELECT e.channel, a.top - s.n + e.k, e.event_id, e.name, e.data, NULLIF(e.tags, ''), e.expires_at
  FROM unnest($7::text[], $8::bigint[], $9::text[], $10::text[], $11::bytea[], $12::text[], $13::bigint[])
    AS e(channel, k, event_id, name, data, tags, expires_at)
  JOIN adv a USING (channel) JOIN s USING (channel)
), tr AS MATERIALIZED (
  SELECT a.channel, a.top - s.n - s.size - s.stride AS lo, a.top - s.size AS hi FROM adv a JOIN s USING (channel)
  WHERE a.top > s.size AND a.top / s.stride <> (a.top - s.n) / s.stride
), trimmed AS (
  DELETE FROM switchboard_history h USING tr
  WHERE h.channel = tr.channel AND h."offset" > tr.lo AND h."offset" <= tr.hi
)
SELECT channel, top, epoch FROM adv`

func (b *keepBatch) writePostgres(ctx context.Context, q domain.Querier, envs []domain.Envelope) (map[string]StreamPosition, error) {
	var chs, epochs []string
	var ns, sizes, strides []int64
	for _, s := range b.streams {
		chs, epochs = append(chs, s.channel), append(epochs, newEpoch())
		ns, sizes, strides = append(ns, s.n), append(sizes, s.size), append(strides, s.stride)
	}
	var ech, ids, names, tags []string
	var ks, exps []int64
	var data [][]byte
	for _, e := range b.events {
		if !e.store {
			continue
		}
		env := &envs[e.env]
		ech, ks, ids, names = append(ech, e.channel), append(ks, e.k), append(ids, env.ID), append(names, env.Name)
		data, tags, exps = append(data, []byte(env.Data)), append(tags, e.tags), append(exps, e.expires)
	}
	rows, err := q.QueryContext(ctx, keepPostgres, pq.StringArray(chs), pq.StringArray(epochs), pq.Int64Array(ns),
		pq.Int64Array(sizes), pq.Int64Array(strides), b.now,
		pq.StringArray(ech), pq.Int64Array(ks), pq.StringArray(ids), pq.StringArray(names), pq.ByteaArray(data),
		pq.StringArray(tags), pq.Int64Array(exps))
	if err != nil {
		return nil, fmt.Errorf("history: keep: %w", err)
	}
	return scanTops(rows, len(b.streams))
}

// write is keepPostgres for SQLite, where it takes several statements of
// the relay's transaction.
func (b *keepBatch) write(ctx context.Context, q domain.Querier, envs []domain.Envelope) (map[string]StreamPosition, error) {
	var adv strings.Builder
	args := make([]any, 0, 4*len(b.streams))
	adv.WriteString(`INSERT INTO switchboard_streams (channel, epoch, top, touched) VALUES `)
	for i, s := range b.streams {
		if i > 0 {
			adv.WriteByte(',')
		}
		fmt.Fprintf(&adv, "($%d,$%d,$%d,$%d)", 4*i+1, 4*i+2, 4*i+3, 4*i+4)
		args = append(args, s.channel, newEpoch(), s.n, b.now)
	}
	adv.WriteString(` ON CONFLICT (channel) DO UPDATE SET top = switchboard_streams.top + excluded.top, touched = excluded.touched
RETURNING channel, top, epoch`)
	rows, err := q.QueryContext(ctx, adv.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("history: advance streams: %w", err)
	}
	tops, err := scanTops(rows, len(b.streams))
	if err != nil {
		return nil, err
	}
	for _, s := range b.streams {
		lo, hi, ok := trimRange(int64(tops[s.channel].Offset), s)
		if !ok {
			continue
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM switchboard_history WHERE channel = $1 AND "offset" <= $2 AND "offset" > $3`, s.channel, hi, lo); err != nil {
			return nil, fmt.Errorf("history: trim %s: %w", s.channel, err)
		}
	}
	var ins strings.Builder
	args = make([]any, 0, 7*len(b.events))
	ins.WriteString(`INSERT INTO switchboard_history (channel, "offset", event_id, name, data, tags, expires_at) VALUES `)
	for _, e := range b.events {
		if !e.store {
			continue
		}
		env := &envs[e.env]
		if len(args) > 0 {
			ins.WriteByte(',')
		}
		k := len(args)
		fmt.Fprintf(&ins, "($%d,$%d,$%d,$%d,$%d,$%d,$%d)", k+1, k+2, k+3, k+4, k+5, k+6, k+7)
		var tags any
		if e.tags != "" {
			tags = e.tags
		}
		args = append(args, e.channel, e.offset(int64(tops[e.channel].Offset)), env.ID, env.Name, []byte(env.Data), tags, e.expires)
	}
	if len(args) == 0 {
		return tops, nil
	}
	if _, err := q.ExecContext(ctx, ins.String(), args...); err != nil {
		return nil, fmt.Errorf("history: store: %w", err)
	}
	return tops, nil
}

// scanTops reads the (channel, top, epoch) rows of an advance and closes
// them; every one of want streams must be there.
func scanTops(rows *sql.Rows, want int) (map[string]StreamPosition, error) {
	defer rows.Close()
	tops := make(map[string]StreamPosition, want)
	for rows.Next() {
		var ch string
		var p StreamPosition
		var top int64
		if err := rows.Scan(&ch, &top, &p.Epoch); err != nil {
			return nil, fmt.Errorf("history: advance streams: %w", err)
		}
		p.Offset = uint64(top)
		tops[ch] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: advance streams: %w", err)
	}
	if len(tops) != want {
		return nil, fmt.Errorf("history: advance streams: %d of %d streams returned", len(tops), want)
	}
	return tops, nil
}

// recall sets env.Streams of events kept before (see Pipeline.Recall).
func (h *History) recall(ctx context.Context, envs []domain.Envelope) error {
	idx := map[string]int{}
	var b strings.Builder
	args := make([]any, 0, len(envs))
	b.WriteString(`SELECT h.event_id, h.channel, h."offset", s.epoch FROM switchboard_history h
JOIN switchboard_streams s ON s.channel = h.channel WHERE h.event_id IN (`)
	for i, env := range envs {
		envs[i].Streams = nil
		idx[env.ID] = i
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", i+1)
		args = append(args, env.ID)
	}
	b.WriteString(`) ORDER BY h.channel, h."offset"`)
	rows, err := h.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return fmt.Errorf("history: recall: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, ch, epoch string
		var off int64
		if err := rows.Scan(&id, &ch, &off, &epoch); err != nil {
			return fmt.Errorf("history: recall: %w", err)
		}
		if i, ok := idx[id]; ok {
			envs[i].Streams = append(envs[i].Streams, domain.StreamOffset{Channel: ch, Offset: uint64(off), Epoch: epoch})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("history: recall: %w", err)
	}
	return nil
}

// Position returns the current top of channel's stream, creating the
// stream (and its epoch) if it does not exist yet, so that a subscriber that
// arrives before the first publication gets a position it can recover from.
func (h *History) Position(ctx context.Context, channel string) (StreamPosition, error) {
	var p StreamPosition
	var top int64
	err := h.db.QueryRowContext(ctx, `SELECT top, epoch FROM switchboard_streams WHERE channel = $1`, channel).Scan(&top, &p.Epoch)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := h.db.ExecContext(ctx, `INSERT INTO switchboard_streams (channel, epoch, top, touched) VALUES ($1, $2, 0, $3)
ON CONFLICT (channel) DO NOTHING`, channel, newEpoch(), h.cfg.Now().UnixMilli()); err != nil {
			return StreamPosition{}, fmt.Errorf("history: create stream %s: %w", channel, err)
		}
		err = h.db.QueryRowContext(ctx, `SELECT top, epoch FROM switchboard_streams WHERE channel = $1`, channel).Scan(&top, &p.Epoch)
	}
	if err != nil {
		return StreamPosition{}, fmt.Errorf("history: position of %s: %w", channel, err)
	}
	p.Offset = uint64(top)
	return p, nil
}

// Recover returns the publications after since, in order, when they are
// all still there: ok is false when the epoch changed, publications were
// trimmed or expired, or more than MaxRecover were missed. A client must
// then reload its state (Centrifugo's recovered=false); no partial list is
// ever returned. top is the current position either way.
func (h *History) Recover(ctx context.Context, channel string, since StreamPosition) (pubs []*Message, top StreamPosition, ok bool, err error) {
	top, err = h.Position(ctx, channel)
	if err != nil {
		return nil, top, false, err
	}
	if since.Epoch != "" && since.Epoch != top.Epoch {
		return nil, top, false, nil
	}
	if since.Offset > top.Offset {
		return nil, top, false, nil
	}
	missed := top.Offset - since.Offset
	if missed == 0 {
		return nil, top, true, nil
	}
	opts := h.Options(channel)
	if missed > uint64(h.cfg.MaxRecover) || missed > uint64(opts.Size) {
		return nil, top, false, nil
	}
	pubs, err = h.query(ctx, channel, top, `AND "offset" > $4 AND "offset" <= $5 ORDER BY "offset" ASC`,
		int64(since.Offset), int64(top.Offset))
	if err != nil {
		return nil, top, false, err
	}
	if uint64(len(pubs)) != missed || pubs[0].Offset != since.Offset+1 {
		return nil, top, false, nil
	}
	return pubs, top, true, nil
}

// Query is a history read: the publications after Since (all kept ones when
// Since is nil), at most Limit of them (Limit < 0: up to MaxRecover; 0: none,
// just the position), newest first when Reverse.
type Query struct {
	Since   *StreamPosition
	Limit   int
	Reverse bool
}

// ErrUnrecoverablePosition is returned by Read when Since names another
// epoch (Centrifugo's error 112).
var ErrUnrecoverablePosition = errors.New("unrecoverable position")

// Read answers a history query on channel.
func (h *History) Read(ctx context.Context, channel string, q Query) ([]*Message, StreamPosition, error) {
	top, err := h.Position(ctx, channel)
	if err != nil {
		return nil, top, err
	}
	if q.Since != nil && q.Since.Epoch != "" && q.Since.Epoch != top.Epoch {
		return nil, top, ErrUnrecoverablePosition
	}
	limit := q.Limit
	if limit < 0 || limit > h.cfg.MaxRecover {
		limit = h.cfg.MaxRecover
	}
	if limit == 0 {
		return nil, top, nil
	}
	var cond string
	var args []any
	switch {
	case q.Since != nil && !q.Reverse:
		cond, args = `AND "offset" > $4`, []any{int64(q.Since.Offset)}
	case q.Since != nil && q.Reverse:
		// Newest first; with a position, only what is older than it.
		cond, args = `AND "offset" < $4`, []any{int64(q.Since.Offset)}
	}
	order := `ASC`
	if q.Reverse {
		order = `DESC`
	}
	msgs, err := h.query(ctx, channel, top, cond+` ORDER BY "offset" `+order+` LIMIT `+fmt.Sprint(limit), args...)
	return msgs, top, err
}

// Last returns channel's newest live publication and when it expires, or
// nil (Pusher cache channels).
func (h *History) Last(ctx context.Context, channel string) (*Message, time.Time, error) {
	opts := h.Options(channel)
	if !opts.Enabled() {
		return nil, time.Time{}, nil
	}
	var m Message
	var off, expires int64
	var tags sql.NullString
	var epoch string
	var data []byte
	err := h.db.QueryRowContext(ctx, `SELECT h."offset", h.event_id, h.name, h.data, h.tags, h.expires_at, s.epoch
FROM switchboard_history h JOIN switchboard_streams s ON s.channel = h.channel
WHERE h.channel = $1 AND h.expires_at > $2 AND h."offset" > s.top - $3 ORDER BY h."offset" DESC LIMIT 1`,
		channel, h.cfg.Now().UnixMilli(), int64(opts.Size)).Scan(&off, &m.ID, &m.Event, &data, &tags, &expires, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("history: last of %s: %w", channel, err)
	}
	m.Channel, m.Offset, m.Epoch, m.Data = channel, uint64(off), epoch, data
	if tags.Valid && tags.String != "" {
		if err := json.Unmarshal([]byte(tags.String), &m.Tags); err != nil {
			return nil, time.Time{}, fmt.Errorf("history: tags in %s: %w", channel, err)
		}
	}
	return &m, time.UnixMilli(expires), nil
}

// query returns the live publications of channel (within Size of top, not
// expired) matching cond, whose placeholders start at $4.
func (h *History) query(ctx context.Context, channel string, top StreamPosition, cond string, args ...any) ([]*Message, error) {
	opts := h.Options(channel)
	if !opts.Enabled() {
		return nil, nil
	}
	floor := int64(top.Offset) - int64(opts.Size)
	q := `SELECT "offset", event_id, name, data, tags FROM switchboard_history
WHERE channel = $1 AND "offset" > $2 AND expires_at > $3 ` + cond
	all := append([]any{channel, floor, h.cfg.Now().UnixMilli()}, args...)
	rows, err := h.db.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, fmt.Errorf("history: read %s: %w", channel, err)
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		var off int64
		var tags sql.NullString
		m := &Message{Channel: channel, Epoch: top.Epoch}
		var data []byte
		if err := rows.Scan(&off, &m.ID, &m.Event, &data, &tags); err != nil {
			return nil, fmt.Errorf("history: read %s: %w", channel, err)
		}
		m.Offset, m.Data = uint64(off), data
		if tags.Valid && tags.String != "" {
			if err := json.Unmarshal([]byte(tags.String), &m.Tags); err != nil {
				return nil, fmt.Errorf("history: tags in %s: %w", channel, err)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: read %s: %w", channel, err)
	}
	return out, nil
}

// PositionOf returns where the relay kept publication eventID in
// channel's stream; ok is false while it is not kept (not relayed yet) and
// once it left the history.
func (h *History) PositionOf(ctx context.Context, channel, eventID string) (p StreamPosition, ok bool, err error) {
	var off int64
	err = h.db.QueryRowContext(ctx, `SELECT h."offset", s.epoch FROM switchboard_history h
JOIN switchboard_streams s ON s.channel = h.channel WHERE h.channel = $1 AND h.event_id = $2`, channel, eventID).Scan(&off, &p.Epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return StreamPosition{}, false, nil
	}
	if err != nil {
		return StreamPosition{}, false, fmt.Errorf("history: position of %s in %s: %w", eventID, channel, err)
	}
	p.Offset = uint64(off)
	return p, true, nil
}

// Clear drops channel's publications but keeps its stream's epoch and top
// offset (Centrifugo's history_remove): subscribers keep their position,
// and one that recovers from before the clear is told recovered=false.
func (h *History) Clear(ctx context.Context, channel string) error {
	if _, err := h.db.ExecContext(ctx, `DELETE FROM switchboard_history WHERE channel = $1`, channel); err != nil {
		return fmt.Errorf("history: clear %s: %w", channel, err)
	}
	return nil
}

// Remove drops channel's stream; its next publication starts a new epoch.
func (h *History) Remove(ctx context.Context, channel string) error {
	if _, err := h.db.ExecContext(ctx, `DELETE FROM switchboard_history WHERE channel = $1`, channel); err != nil {
		return fmt.Errorf("history: remove %s: %w", channel, err)
	}
	if _, err := h.db.ExecContext(ctx, `DELETE FROM switchboard_streams WHERE channel = $1`, channel); err != nil {
		return fmt.Errorf("history: remove %s: %w", channel, err)
	}
	return nil
}

// Prune deletes expired publications, streams idle for longer than
// MetaTTL (with whatever they still hold) and publication idempotency keys
// past their window. It returns the rows deleted.
func (h *History) Prune(ctx context.Context) (int64, error) {
	now := h.cfg.Now()
	idle := now.Add(-h.cfg.MetaTTL).UnixMilli()
	var n int64
	for _, s := range []struct {
		q   string
		arg int64
	}{
		{`DELETE FROM switchboard_history WHERE expires_at <= $1`, now.UnixMilli()},
		{`DELETE FROM switchboard_history WHERE channel IN (SELECT channel FROM switchboard_streams WHERE touched < $1)`, idle},
		{`DELETE FROM switchboard_streams WHERE touched < $1`, idle},
		{`DELETE FROM switchboard_publish_keys WHERE created_at < $1`, now.Add(-PublishKeyWindow).UnixMilli()},
	} {
		res, err := h.db.ExecContext(ctx, s.q, s.arg)
		if err != nil {
			return n, fmt.Errorf("history: prune: %w", err)
		}
		m, _ := res.RowsAffected()
		n += m
	}
	return n, nil
}

// Migrations create the history's tables and the publications'
// idempotency keys (publishkeys.go). Times are Unix milliseconds, the same
// on both stores.
func Migrations() []domain.Migration {
	return append([]domain.Migration{{
		Module: "gateway", Version: 1,
		Postgres: `
CREATE TABLE switchboard_streams (
    channel TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    top BIGINT NOT NULL,
    touched BIGINT NOT NULL
);
CREATE TABLE switchboard_history (
    channel TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data BYTEA NOT NULL,
    tags TEXT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (channel, "offset")
);
CREATE INDEX switchboard_history_event ON switchboard_history (event_id);
CREATE INDEX switchboard_history_expires ON switchboard_history (expires_at);
`,
		SQLite: `
CREATE TABLE switchboard_streams (
    channel TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    top INTEGER NOT NULL,
    touched INTEGER NOT NULL
);
CREATE TABLE switchboard_history (
    channel TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    tags TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (channel, "offset")
);
CREATE INDEX switchboard_history_event ON switchboard_history (event_id);
CREATE INDEX switchboard_history_expires ON switchboard_history (expires_at);
`,
	}}, publishKeyMigrations...)
}

// newEpoch is a short random string: it only has to differ from the epochs
// this stream had before.
func newEpoch() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
