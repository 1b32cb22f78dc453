package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/gateway"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

// historyStores runs fn on both stores with the history's tables.
func historyStores(t *testing.T, fn func(t *testing.T, db *domain.DB)) {
	dbtest.ForEach(t, fn, domain.CoreMigrations(), gateway.Migrations())
}

func newHistory(db *domain.DB, c *clock, size int, ttl time.Duration) *gateway.History {
	return gateway.NewHistory(db, gateway.HistoryConfig{
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

// keep runs the relay's keep step for n events on ch, numbered from, in one
// transaction, and returns the envelopes as the relay would hand them on.
func keep(t *testing.T, db *domain.DB, h *gateway.History, ch string, from, n int) []domain.Envelope {
	t.Helper()
	envs := make([]domain.Envelope, n)
	for i := range envs {
		envs[i] = domain.RawEnvelope("e", domain.Scope{Channels: []string{ch}}, json.RawMessage(fmt.Sprintf(`{"n":%d}`, from+i)))
	}
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := (gateway.Pipeline{History: h}).Keep(context.Background(), tx, envs); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return envs
}

func offsets(ms []*gateway.Message) []uint64 {
	out := []uint64{}
	for _, m := range ms {
		out = append(out, m.Offset)
	}
	return out
}

func position(t *testing.T, h *gateway.History, ch string) gateway.StreamPosition {
	t.Helper()
	p, err := h.Position(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, h *gateway.History, ch string, q gateway.Query) ([]*gateway.Message, gateway.StreamPosition) {
	t.Helper()
	got, top, err := h.Read(context.Background(), ch, q)
	if err != nil {
		t.Fatal(err)
	}
	return got, top
}

func TestHistoryNumbersAndBounds(t *testing.T) {
	historyStores(t, func(t *testing.T, db *domain.DB) {
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		h := newHistory(db, c, 3, time.Minute)
		start := position(t, h, "a")
		if start.Offset != 0 || start.Epoch == "" {
			t.Fatalf("fresh stream position %+v", start)
		}
		envs := append(keep(t, db, h, "a", 1, 2), keep(t, db, h, "a", 3, 3)...)
		for i, env := range envs {
			if off, epoch := env.StreamOffset("a"); off != uint64(i+1) || epoch != start.Epoch {
				t.Fatalf("event %d got offset %d epoch %q", i+1, off, epoch)
			}
		}
		if off := keep(t, db, h, "off", 1, 1); len(off[0].Streams) != 0 {
			t.Fatalf("channel without history was numbered: %+v", off[0].Streams)
		}
		// Size 3 keeps offsets 3..5.
		got, top := read(t, h, "a", gateway.Query{Limit: -1})
		if fmt.Sprint(offsets(got)) != "[3 4 5]" || top.Offset != 5 || string(got[0].Data) != `{"n":3}` || got[0].Event != "e" {
			t.Fatalf("read all = %v top %+v", offsets(got), top)
		}
		// TTL: after a minute everything is gone, but the position stays.
		c.add(time.Minute)
		got, top = read(t, h, "a", gateway.Query{Limit: -1})
		if len(got) != 0 || top.Offset != 5 || top.Epoch != start.Epoch {
			t.Fatalf("after ttl: %v top %+v", offsets(got), top)
		}
		if off, _ := keep(t, db, h, "a", 6, 1)[0].StreamOffset("a"); off != 6 {
			t.Fatalf("offset after expiry %d, want 6", off)
		}
	})
}

// The history is in the database: a new process (a new History on the same
// store) sees the same epoch, offsets and publications.
func TestHistorySurvivesRestart(t *testing.T) {
	historyStores(t, func(t *testing.T, db *domain.DB) {
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		before := newHistory(db, c, 10, time.Minute)
		epoch := position(t, before, "a").Epoch
		keep(t, db, before, "a", 1, 4)
		after := newHistory(db, c, 10, time.Minute)
		pubs, top, ok, err := after.Recover(context.Background(), "a", gateway.StreamPosition{Offset: 2, Epoch: epoch})
		if err != nil || !ok || fmt.Sprint(offsets(pubs)) != "[3 4]" || top.Epoch != epoch || string(pubs[1].Data) != `{"n":4}` {
			t.Fatalf("after restart: %v %+v ok=%v err=%v", offsets(pubs), top, ok, err)
		}
		if off, e := keep(t, db, after, "a", 5, 1)[0].StreamOffset("a"); off != 5 || e != epoch {
			t.Fatalf("next offset after restart %d %q, want 5 %q", off, e, epoch)
		}
	})
}

// What Keep wrote in a transaction that rolls back (with the relay's
// position) is gone, offsets included; Recall finds what Keep committed.
func TestHistoryKeepIsTransactional(t *testing.T) {
	historyStores(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		h := newHistory(db, c, 10, time.Minute)
		kept := keep(t, db, h, "a", 1, 2)

		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		lost := []domain.Envelope{domain.RawEnvelope("e", domain.Scope{Channels: []string{"a"}}, json.RawMessage(`{}`))}
		if err := (gateway.Pipeline{History: h}).Keep(ctx, tx, lost); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback()
		if p := position(t, h, "a"); p.Offset != 2 {
			t.Fatalf("top after a rolled-back keep = %d, want 2", p.Offset)
		}

		recalled := []domain.Envelope{{ID: kept[1].ID}, {ID: kept[0].ID}, {ID: lost[0].ID}}
		if err := (gateway.Pipeline{History: h}).Recall(ctx, recalled); err != nil {
			t.Fatal(err)
		}
		for i, want := range []uint64{2, 1, 0} {
			if off, _ := recalled[i].StreamOffset("a"); off != want {
				t.Fatalf("recalled event %d at offset %d, want %d", i, off, want)
			}
		}
	})
}

func TestHistoryRecover(t *testing.T) {
	historyStores(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		h := newHistory(db, c, 5, time.Minute)
		epoch := position(t, h, "a").Epoch
		keep(t, db, h, "a", 1, 8)
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
				pubs, top, ok, err := h.Recover(ctx, "a", tc.since)
				if err != nil || ok != tc.ok || fmt.Sprint(offsets(pubs)) != tc.want {
					t.Fatalf("Recover = %v %v %v, want %v %s", offsets(pubs), ok, err, tc.ok, tc.want)
				}
				if top.Offset != 8 || top.Epoch != epoch {
					t.Fatalf("top = %+v", top)
				}
			})
		}
		// More missed than MaxRecover (10) is a failed recovery, never a partial one.
		big := newHistory(db, c, 50, time.Minute)
		e := position(t, big, "b").Epoch
		keep(t, db, big, "b", 1, 20)
		if pubs, _, ok, _ := big.Recover(ctx, "b", gateway.StreamPosition{Offset: 5, Epoch: e}); ok || pubs != nil {
			t.Fatalf("recovered %d publications over the limit", len(pubs))
		}
		// Expired publications make a gap too.
		c.add(2 * time.Minute)
		if _, _, ok, _ := h.Recover(ctx, "a", gateway.StreamPosition{Offset: 7, Epoch: epoch}); ok {
			t.Fatal("recovered expired publications")
		}
	})
}

func TestHistoryRead(t *testing.T) {
	historyStores(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		h := newHistory(db, c, 10, time.Minute)
		epoch := position(t, h, "a").Epoch
		keep(t, db, h, "a", 1, 6)
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
				got, top, err := h.Read(ctx, "a", tc.q)
				if !errors.Is(err, tc.err) || fmt.Sprint(offsets(got)) != tc.want || top.Offset != 6 {
					t.Fatalf("Read = %v %+v %v, want %s %v", offsets(got), top, err, tc.want, tc.err)
				}
			})
		}
		if err := h.Remove(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if p := position(t, h, "a"); p.Offset != 0 || p.Epoch == epoch {
			t.Fatalf("after Remove: %+v (old epoch %q)", p, epoch)
		}
	})
}

// Events the relay hands on carry their offsets; Node.Dispatch puts them on
// the messages of each channel, one by one and as a backlog.
func TestDispatchCarriesStreamOffsets(t *testing.T) {
	n := gateway.NewNode(nil, nil)
	var got []string
	sub := &recorder{id: "c", deliver: func(m *gateway.Message) { got = append(got, fmt.Sprintf("%s:%d:%s", m.Channel, m.Offset, m.Epoch)) }}
	n.Hub.Subscribe("a", sub)
	n.Hub.Subscribe("b", sub)
	env := func(off uint64) domain.Envelope {
		e := domain.RawEnvelope("e", domain.Scope{Channels: []string{"a", "b"}}, json.RawMessage(`{}`))
		e.Streams = []domain.StreamOffset{{Channel: "b", Offset: off, Epoch: "E"}}
		return e
	}
	n.Dispatch(env(1))
	n.DispatchBatch([]domain.Envelope{env(2), env(3)})
	one := domain.RawEnvelope("e", domain.Scope{Channels: []string{"b"}}, json.RawMessage(`{}`))
	one.Streams = []domain.StreamOffset{{Channel: "b", Offset: 4, Epoch: "E"}}
	two := one
	two.Streams = []domain.StreamOffset{{Channel: "b", Offset: 5, Epoch: "E"}}
	n.DispatchBatch([]domain.Envelope{one, two})
	want := "[a:0: b:1:E a:0: b:2:E a:0: b:3:E b:4:E b:5:E]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

// Expired publications are pruned, and streams idle past MetaTTL are
// forgotten: a recovery then fails instead of replaying.
func TestHistoryPrune(t *testing.T) {
	historyStores(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		h := gateway.NewHistory(db, gateway.HistoryConfig{
			Options: func(string) gateway.HistoryOptions { return gateway.HistoryOptions{Size: 10, TTL: time.Minute} },
			MetaTTL: time.Hour,
			Now:     c.now,
		})
		epoch := position(t, h, "idle").Epoch
		keep(t, db, h, "idle", 1, 1)
		c.add(2 * time.Minute)
		keep(t, db, h, "busy", 1, 1)
		if n, err := h.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("pruned %d rows (%v), want the one expired publication", n, err)
		}
		if _, top, ok, _ := h.Recover(ctx, "idle", gateway.StreamPosition{Epoch: epoch}); ok || top.Offset != 1 || top.Epoch != epoch {
			t.Fatalf("expired publication recovered (ok=%v top=%+v)", ok, top)
		}
		c.add(2 * time.Hour)
		if _, err := h.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if p := position(t, h, "idle"); p.Epoch == epoch || p.Offset != 0 {
			t.Fatalf("stream idle past MetaTTL kept: %+v", p)
		}
		if n := dbtest.Count(t, db, "switchboard_history"); n != 0 {
			t.Fatalf("%d history rows left", n)
		}
	})
}

// recorder is a Subscriber that reports each delivery.
type recorder struct {
	id      string
	deliver func(m *gateway.Message)
}

func (r *recorder) ConnID() string             { return r.id }
func (r *recorder) Deliver(m *gateway.Message) { r.deliver(m) }

// Trimming keeps the table bounded whatever the batch sizes (a stream holds
// at most size + stride rows, stride = size/8), never drops a row a read
// can see, and numbers an event on several channels in each; a batch may
// also be kept on an autocommit connection, where PostgreSQL writes it in
// one statement (the relay's session, outbox/session.go).
func TestHistoryTrimsAndNumbersBatches(t *testing.T) {
	cases := []struct {
		name    string
		size    int
		batches []int
		conn    bool
	}{
		{"ones", 8, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, false},
		{"mixed", 16, []int{3, 40, 1, 7, 16, 2, 9, 33, 5, 1, 64, 4}, false},
		{"larger than size", 5, []int{12, 1, 30, 2, 6}, false},
		{"autocommit", 16, []int{3, 40, 1, 7, 16, 2, 9, 33}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			historyStores(t, func(t *testing.T, db *domain.DB) {
				ctx := context.Background()
				c := &clock{t: time.Unix(1_700_000_000, 0)}
				h := gateway.NewHistory(db, gateway.HistoryConfig{
					Options: func(ch string) gateway.HistoryOptions {
						if ch == "off" {
							return gateway.HistoryOptions{}
						}
						return gateway.HistoryOptions{Size: tc.size, TTL: time.Hour}
					},
					MaxRecover: 1000,
					Now:        c.now,
				})
				p := gateway.Pipeline{History: h}
				top := 0
				for _, n := range tc.batches {
					envs := make([]domain.Envelope, n)
					for i := range envs {
						envs[i] = domain.RawEnvelope("e", domain.Scope{Channels: []string{"a", "b", "off"}}, json.RawMessage(fmt.Sprintf(`{"n":%d}`, top+i+1)))
						envs[i].Tags = map[string]string{"n": fmt.Sprint(top + i + 1)}
					}
					if tc.conn {
						conn, err := db.Conn(ctx)
						if err != nil {
							t.Fatal(err)
						}
						err = p.Keep(ctx, conn, envs)
						_ = conn.Close()
						if err != nil {
							t.Fatal(err)
						}
					} else {
						tx, err := db.BeginTx(ctx, nil)
						if err != nil {
							t.Fatal(err)
						}
						if err := p.Keep(ctx, tx, envs); err != nil {
							t.Fatal(err)
						}
						if err := tx.Commit(); err != nil {
							t.Fatal(err)
						}
					}
					for i, env := range envs {
						want := uint64(top + i + 1)
						if len(env.Streams) != 2 {
							t.Fatalf("event %d streams %+v, want a and b", want, env.Streams)
						}
						for _, ch := range []string{"a", "b"} {
							if off, _ := env.StreamOffset(ch); off != want {
								t.Fatalf("event %d on %s got offset %d", want, ch, off)
							}
						}
					}
					top += n
					stride := max(1, tc.size/8)
					for _, ch := range []string{"a", "b"} {
						var rows, lowest int
						if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MIN("offset"), 0) FROM switchboard_history WHERE channel = $1`, ch).Scan(&rows, &lowest); err != nil {
							t.Fatal(err)
						}
						if bound := tc.size + stride; rows > bound {
							t.Fatalf("after top %d the stream %s holds %d rows (lowest %d), want at most %d", top, ch, rows, lowest, bound)
						}
						got, pos := read(t, h, ch, gateway.Query{Limit: -1})
						want := min(top, tc.size)
						if len(got) != want || pos.Offset != uint64(top) || got[len(got)-1].Offset != uint64(top) {
							t.Fatalf("read %s after top %d: %v (top %d), want the last %d", ch, top, offsets(got), pos.Offset, want)
						}
						if last := got[len(got)-1]; last.Tags["n"] != fmt.Sprint(top) || string(last.Data) != fmt.Sprintf(`{"n":%d}`, top) {
							t.Fatalf("last publication of %s: tags %v data %s", ch, last.Tags, last.Data)
						}
					}
				}
			})
		})
	}
}
