package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/gateway"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func msg(ch string, n int) *gateway.Message {
	return &gateway.Message{Channel: ch, Event: "e", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

func newHistory(c *clock, size int, ttl time.Duration) *gateway.History {
	return gateway.NewHistory(gateway.HistoryConfig{
		Options: func(ch string) gateway.HistoryOptions {
			if ch == "off" {
				return gateway.HistoryOptions{}
			}
			return gateway.HistoryOptions{Size: size, TTL: ttl}
		},
		MaxRecover: 10,
		Now:        c.now,
	})
}

func offsets(ms []*gateway.Message) []uint64 {
	out := []uint64{}
	for _, m := range ms {
		out = append(out, m.Offset)
	}
	return out
}

func TestHistoryNumbersAndBounds(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newHistory(c, 3, time.Minute)
	start := h.Position("a")
	if start.Offset != 0 || start.Epoch == "" {
		t.Fatalf("fresh stream position %+v", start)
	}
	for i := 1; i <= 5; i++ {
		m := msg("a", i)
		h.Intercept(m)
		if m.Offset != uint64(i) || m.Epoch != start.Epoch {
			t.Fatalf("message %d got offset %d epoch %q", i, m.Offset, m.Epoch)
		}
	}
	off := msg("off", 1)
	h.Intercept(off)
	if off.Offset != 0 || off.Epoch != "" {
		t.Fatalf("channel without history was numbered: %+v", off)
	}
	// Size 3 keeps offsets 3..5.
	got, top, err := h.Read("a", gateway.Query{Limit: -1})
	if err != nil || fmt.Sprint(offsets(got)) != "[3 4 5]" || top.Offset != 5 {
		t.Fatalf("read all = %v top %+v err %v", offsets(got), top, err)
	}
	// TTL: after a minute everything is gone, but the position stays.
	c.add(time.Minute)
	got, top, _ = h.Read("a", gateway.Query{Limit: -1})
	if len(got) != 0 || top.Offset != 5 || top.Epoch != start.Epoch {
		t.Fatalf("after ttl: %v top %+v", offsets(got), top)
	}
	m := msg("a", 6)
	h.Intercept(m)
	if m.Offset != 6 {
		t.Fatalf("offset after expiry %d, want 6", m.Offset)
	}
}

func TestHistoryRecover(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newHistory(c, 5, time.Minute)
	epoch := h.Position("a").Epoch
	for i := 1; i <= 8; i++ {
		h.Intercept(msg("a", i))
	}
	for _, tc := range []struct {
		name  string
		since gateway.StreamPosition
		ok    bool
		want  string
	}{
		{"up to date", gateway.StreamPosition{Offset: 8, Epoch: epoch}, true, "[]"},
		{"missed three", gateway.StreamPosition{Offset: 5, Epoch: epoch}, true, "[6 7 8]"},
		{"missed exactly what is kept", gateway.StreamPosition{Offset: 3, Epoch: epoch}, true, "[4 5 6 7 8]"},
		{"first ones trimmed", gateway.StreamPosition{Offset: 2, Epoch: epoch}, false, "[]"},
		{"other epoch", gateway.StreamPosition{Offset: 7, Epoch: "old"}, false, "[]"},
		{"ahead of the stream", gateway.StreamPosition{Offset: 9, Epoch: epoch}, false, "[]"},
		{"no epoch means any", gateway.StreamPosition{Offset: 7}, true, "[8]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pubs, top, ok := h.Recover("a", tc.since)
			if ok != tc.ok || fmt.Sprint(offsets(pubs)) != tc.want {
				t.Fatalf("Recover = %v %v, want %v %s", offsets(pubs), ok, tc.ok, tc.want)
			}
			if top.Offset != 8 || top.Epoch != epoch {
				t.Fatalf("top = %+v", top)
			}
		})
	}
	// More missed than MaxRecover (10) is a failed recovery, never a partial one.
	big := newHistory(c, 50, time.Minute)
	e := big.Position("b").Epoch
	for i := 1; i <= 20; i++ {
		big.Intercept(msg("b", i))
	}
	if pubs, _, ok := big.Recover("b", gateway.StreamPosition{Offset: 5, Epoch: e}); ok || pubs != nil {
		t.Fatalf("recovered %d publications over the limit", len(pubs))
	}
	// Expired publications make a gap too.
	c.add(2 * time.Minute)
	if _, _, ok := h.Recover("a", gateway.StreamPosition{Offset: 7, Epoch: epoch}); ok {
		t.Fatal("recovered expired publications")
	}
}

func TestHistoryRead(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newHistory(c, 10, time.Minute)
	epoch := h.Position("a").Epoch
	for i := 1; i <= 6; i++ {
		h.Intercept(msg("a", i))
	}
	for _, tc := range []struct {
		name string
		q    gateway.Query
		want string
		err  error
	}{
		{"limit zero is position only", gateway.Query{}, "[]", nil},
		{"first two", gateway.Query{Limit: 2}, "[1 2]", nil},
		{"since", gateway.Query{Limit: -1, Since: &gateway.StreamPosition{Offset: 4, Epoch: epoch}}, "[5 6]", nil},
		{"reverse", gateway.Query{Limit: 3, Reverse: true}, "[6 5 4]", nil},
		{"reverse since", gateway.Query{Limit: -1, Reverse: true, Since: &gateway.StreamPosition{Offset: 3, Epoch: epoch}}, "[2 1]", nil},
		{"wrong epoch", gateway.Query{Limit: 1, Since: &gateway.StreamPosition{Offset: 1, Epoch: "x"}}, "[]", gateway.ErrUnrecoverablePosition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, top, err := h.Read("a", tc.q)
			if !errors.Is(err, tc.err) || fmt.Sprint(offsets(got)) != tc.want || top.Offset != 6 {
				t.Fatalf("Read = %v %+v %v, want %s %v", offsets(got), top, err, tc.want, tc.err)
			}
		})
	}
	h.Remove("a")
	if p := h.Position("a"); p.Offset != 0 || p.Epoch == epoch {
		t.Fatalf("after Remove: %+v (old epoch %q)", p, epoch)
	}
}

// Domain events routed by Node.Dispatch go through the interceptor, so a
// canonical channel's events are numbered and recoverable.
func TestHistoryInterceptsDispatch(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newHistory(c, 10, time.Minute)
	n := gateway.NewNode(nil, nil)
	n.Intercept(h.Intercept)
	for i := 0; i < 3; i++ {
		n.Dispatch(domain.RawEnvelope("AttendeeCreated", domain.Scope{Project: "demo", Family: domain.FamilyAttendees}, json.RawMessage(`{"id":1}`)))
	}
	got, top, _ := h.Read("dashboard.project.demo.attendees", gateway.Query{Limit: -1})
	if fmt.Sprint(offsets(got)) != "[1 2 3]" || top.Offset != 3 || got[0].Event != "AttendeeCreated" {
		t.Fatalf("dispatched events in history: %v top %+v", offsets(got), top)
	}
}

// Idle streams lose expired publications on the periodic sweep and are
// forgotten after MetaTTL: a recovery then fails instead of replaying.
func TestHistorySweep(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h := gateway.NewHistory(gateway.HistoryConfig{
		Options: func(string) gateway.HistoryOptions { return gateway.HistoryOptions{Size: 10, TTL: time.Minute} },
		MetaTTL: time.Hour,
		Now:     c.now,
	})
	epoch := h.Position("idle").Epoch
	h.Intercept(msg("idle", 1))
	c.add(2 * time.Minute)
	h.Intercept(msg("busy", 1)) // triggers the sweep
	if _, top, ok := h.Recover("idle", gateway.StreamPosition{Epoch: epoch}); ok || top.Offset != 1 || top.Epoch != epoch {
		t.Fatalf("expired publication recovered (ok=%v top=%+v)", ok, top)
	}
	c.add(2 * time.Hour)
	h.Intercept(msg("busy", 2))
	if p := h.Position("idle"); p.Epoch == epoch || p.Offset != 0 {
		t.Fatalf("stream idle past MetaTTL kept: %+v", p)
	}
}
