package gateway

import (
	"crypto/rand"
	"encoding/base32"
	"sync"
	"time"
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
// epoch. A new epoch means the stream was lost (restart, expiry), so
// positions of the old epoch cannot be recovered.
type StreamPosition struct {
	Offset uint64
	Epoch  string
}

// HistoryConfig configures a History.
type HistoryConfig struct {
	// Options returns the history options of a hub channel. Channels whose
	// options are not Enabled get no offsets and keep nothing. Required.
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

// History keeps a bounded, expiring stream per channel: every message
// published to a history-enabled channel gets the next offset of the
// channel's epoch and is stored. It is installed with Node.Intercept, so
// domain events routed by Node.Dispatch are numbered and stored exactly like
// server-API publications. Adapters that do not know streams (Pusher) ignore
// Message.Offset and Message.Epoch.
//
// Offsets are assigned in the order interceptors run; Node.Publish is called
// by the single broker subscriber, so that is the delivery order too.
// Safe for concurrent use.
type History struct {
	cfg       HistoryConfig
	mu        sync.Mutex
	streams   map[string]*stream
	lastSweep time.Time
}

type stream struct {
	epoch   string
	top     uint64
	pubs    []*Message // oldest first, at most Size
	times   []time.Time
	touched time.Time
}

// NewHistory returns an empty History.
func NewHistory(cfg HistoryConfig) *History {
	if cfg.MetaTTL <= 0 {
		cfg.MetaTTL = 24 * time.Hour
	}
	if cfg.MaxRecover <= 0 {
		cfg.MaxRecover = 300
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Options == nil {
		cfg.Options = func(string) HistoryOptions { return HistoryOptions{} }
	}
	return &History{cfg: cfg, streams: map[string]*stream{}}
}

// Intercept numbers and stores m when its channel keeps history. It is a
// gateway.Interceptor.
func (h *History) Intercept(m *Message) {
	opts := h.cfg.Options(m.Channel)
	if !opts.Enabled() {
		return
	}
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.maybeSweep(now)
	s := h.streamLocked(m.Channel, now)
	s.trim(now, opts)
	s.top++
	m.Offset = s.top
	m.Epoch = s.epoch
	s.pubs = append(s.pubs, m)
	s.times = append(s.times, now)
	if len(s.pubs) > opts.Size {
		drop := len(s.pubs) - opts.Size
		// Copy down instead of reslicing so the backing array does not grow
		// without bound on a busy channel.
		s.pubs = append(s.pubs[:0], s.pubs[drop:]...)
		s.times = append(s.times[:0], s.times[drop:]...)
	}
	s.touched = now
}

// Position returns the current top of channel's stream, creating the
// stream (and its epoch) if it does not exist yet, so that a subscriber that
// arrives before the first publication gets a position it can recover from.
func (h *History) Position(channel string) StreamPosition {
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.maybeSweep(now)
	s := h.streamLocked(channel, now)
	return StreamPosition{Offset: s.top, Epoch: s.epoch}
}

// Recover returns the publications after since, in order, when they are
// all still there: ok is false when the epoch changed, publications were
// trimmed or expired, or more than MaxRecover were missed. A client must
// then reload its state (Centrifugo's recovered=false); no partial list is
// ever returned. top is the current position either way.
func (h *History) Recover(channel string, since StreamPosition) (pubs []*Message, top StreamPosition, ok bool) {
	opts := h.cfg.Options(channel)
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streamLocked(channel, now)
	s.trim(now, opts)
	top = StreamPosition{Offset: s.top, Epoch: s.epoch}
	if since.Epoch != "" && since.Epoch != s.epoch {
		return nil, top, false
	}
	if since.Offset > s.top {
		return nil, top, false
	}
	missed := s.top - since.Offset
	if missed == 0 {
		return nil, top, true
	}
	if missed > uint64(h.cfg.MaxRecover) || missed > uint64(len(s.pubs)) {
		return nil, top, false
	}
	out := make([]*Message, missed)
	copy(out, s.pubs[uint64(len(s.pubs))-missed:])
	if out[0].Offset != since.Offset+1 {
		return nil, top, false
	}
	return out, top, true
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
var ErrUnrecoverablePosition = errorString("unrecoverable position")

type errorString string

func (e errorString) Error() string { return string(e) }

// Read answers a history query on channel.
func (h *History) Read(channel string, q Query) ([]*Message, StreamPosition, error) {
	opts := h.cfg.Options(channel)
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streamLocked(channel, now)
	s.trim(now, opts)
	top := StreamPosition{Offset: s.top, Epoch: s.epoch}
	if q.Since != nil && q.Since.Epoch != "" && q.Since.Epoch != s.epoch {
		return nil, top, ErrUnrecoverablePosition
	}
	limit := q.Limit
	if limit < 0 || limit > h.cfg.MaxRecover {
		limit = h.cfg.MaxRecover
	}
	if limit == 0 {
		return nil, top, nil
	}
	var sel []*Message
	if !q.Reverse {
		for _, m := range s.pubs {
			if q.Since == nil || m.Offset > q.Since.Offset {
				sel = append(sel, m)
			}
		}
	} else {
		// Newest first; with a position, only what is older than it.
		for i := len(s.pubs) - 1; i >= 0; i-- {
			if m := s.pubs[i]; q.Since == nil || m.Offset < q.Since.Offset {
				sel = append(sel, m)
			}
		}
	}
	if len(sel) > limit {
		sel = sel[:limit]
	}
	return sel, top, nil
}

// Remove drops channel's stream; its next publication starts a new epoch.
func (h *History) Remove(channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams, channel)
}

func (h *History) streamLocked(channel string, now time.Time) *stream {
	s := h.streams[channel]
	if s == nil {
		s = &stream{epoch: newEpoch(), touched: now}
		h.streams[channel] = s
	}
	return s
}

// trim drops publications past their TTL.
func (s *stream) trim(now time.Time, opts HistoryOptions) {
	if opts.TTL <= 0 {
		s.pubs, s.times = nil, nil
		return
	}
	i := 0
	for i < len(s.times) && now.Sub(s.times[i]) >= opts.TTL {
		i++
	}
	if i > 0 {
		s.pubs = append(s.pubs[:0], s.pubs[i:]...)
		s.times = append(s.times[:0], s.times[i:]...)
	}
}

// maybeSweep, at most once a minute, drops expired publications of every
// stream (an idle channel is otherwise only trimmed when next used) and
// forgets streams idle for longer than MetaTTL, so channels that stopped
// being used do not hold memory forever.
func (h *History) maybeSweep(now time.Time) {
	if now.Sub(h.lastSweep) < time.Minute {
		return
	}
	h.lastSweep = now
	for ch, s := range h.streams {
		if now.Sub(s.touched) >= h.cfg.MetaTTL {
			delete(h.streams, ch)
			continue
		}
		s.trim(now, h.cfg.Options(ch))
	}
}

// newEpoch is a short random string: it only has to differ from the epochs
// this process (or a previous one) handed out before.
func newEpoch() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
