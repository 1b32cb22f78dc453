package gateway

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"switchboard/domain"
)

// wsub is a subscriber with its own Writer over a fake socket that counts
// writes: what a protocol adapter's subscription does, minus the protocol.
type wsub struct {
	id     string
	w      *Writer
	mu     sync.Mutex
	out    bytes.Buffer
	writes atomic.Int64 // syscalls, inline or drained
	many   atomic.Int64 // DeliverMany calls (as msub)
}

func newWsub(id string) *wsub {
	s := &wsub{id: id}
	s.w = NewWriter(WriterConfig{
		TryWrite: func(b []byte) (int, error) {
			s.writes.Add(1)
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.out.Write(b)
		},
		Write: func(frames [][]byte) error {
			s.writes.Add(1)
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, f := range frames {
				s.out.Write(f)
			}
			return nil
		},
	})
	return s
}

func (s *wsub) ConnID() string     { return s.id }
func (s *wsub) Deliver(m *Message) { s.w.Deliver(m, []byte("<"+m.Event+">")) }

// msub is a wsub that also takes a backlog in one call, as the Pusher and
// Centrifugo adapters do.
type msub struct{ *wsub }

func (s msub) DeliverMany(ms []*Message) {
	s.many.Add(1)
	frames := make([][]byte, len(ms))
	for i, m := range ms {
		frames[i] = []byte("<" + m.Event + ">")
	}
	s.w.EnqueueMany(frames)
}

// subscribe adds a wsub to channel on n, as a MultiSubscriber when multi.
func subscribe(n *Node, channel string, s *wsub, multi bool) {
	if multi {
		n.Hub.Subscribe(channel, msub{s})
	} else {
		n.Hub.Subscribe(channel, s)
	}
}
func (s *wsub) String() string {
	<-s.w.CloseWith(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// A backlog dispatched as one batch reaches every connection complete and
// in order, with one write per connection instead of one per event.
func TestDispatchBatchCoalesces(t *testing.T) {
	tests := []struct {
		name   string
		subs   int
		events int
		parts  int
		multi  string // which subscribers take a backlog in one call: "", "all", "odd"
	}{
		{"one event: written at once", 3, 1, 2, ""},
		{"small channel", 3, 10, 2, ""},
		{"large channel, parallel parts", 3*minPart + 1, 16, 2, ""},
		{"multi: one event", 3, 1, 2, "all"},
		{"multi: small channel", 3, 10, 2, "all"},
		{"multi: large channel, parallel parts", 3*minPart + 1, 16, 2, "all"},
		{"multi and plain subscribers mixed", 3*minPart + 1, 16, 2, "odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NewNode(nil, nil)
			n.Hub.parts = tt.parts
			subs := make([]*wsub, tt.subs)
			for i := range subs {
				subs[i] = newWsub(fmt.Sprint("c", i))
				subscribe(n, domain.RoomChannel("7"), subs[i], tt.multi == "all" || (tt.multi == "odd" && i%2 == 1))
			}
			var envs []domain.Envelope
			var want string
			for i := range tt.events {
				envs = append(envs, domain.Envelope{Name: fmt.Sprint("e", i), Scope: domain.Scope{Room: "7"}})
				want += fmt.Sprintf("<e%d>", i)
			}
			n.DispatchBatch(envs)
			for i, s := range subs {
				if w := s.writes.Load(); w != 1 {
					t.Fatalf("%s: %d writes for %d events, want 1", s.id, w, tt.events)
				}
				// A MultiSubscriber is visited once for a backlog.
				multi := tt.multi == "all" || (tt.multi == "odd" && i%2 == 1)
				if want := int64(0); multi && tt.events > 1 {
					want = 1
					if got := s.many.Load(); got != want {
						t.Fatalf("%s: %d DeliverMany calls, want %d", s.id, got, want)
					}
				} else if got := s.many.Load(); got != want {
					t.Fatalf("%s: %d DeliverMany calls, want %d", s.id, got, want)
				}
				if got := s.String(); got != want {
					t.Fatalf("%s got %q, want %q", s.id, got, want)
				}
			}
		})
	}
}

// A revocation inside a batch takes effect between the events around it,
// exactly as if they had been dispatched one by one; so does one on the
// first event, before any of them.
func TestDispatchBatchRevocationOrder(t *testing.T) {
	room := domain.RoomChannel("7")
	sc := domain.Scope{Room: "7"}
	revoke := []domain.Revocation{{Member: "alice", Channel: room}}
	tests := []struct {
		name       string
		envs       []domain.Envelope
		alice, bob string
	}{
		{"revoked in the middle", []domain.Envelope{
			{Name: "before", Scope: sc},
			{Name: "removed", Scope: sc, Revoke: revoke},
			{Name: "after", Scope: sc},
		}, "<before><revoked>", "<before><removed><after>"},
		{"revoked by the first", []domain.Envelope{
			{Name: "removed", Scope: sc, Revoke: revoke},
			{Name: "after", Scope: sc},
		}, "<revoked>", "<removed><after>"},
	}
	for _, tt := range tests {
		for _, multi := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/multi=%v", tt.name, multi), func(t *testing.T) {
				n := NewNode(nil, nil)
				alice, bob := newWsub("alice"), newWsub("bob")
				var aliceSub Subscriber = alice
				if multi {
					aliceSub = msub{alice}
				}
				n.Hub.Subscribe(room, aliceSub)
				subscribe(n, room, bob, multi)
				n.OnRevoke(func(user, channel string) {
					if user == "alice" && channel == room && n.Hub.Unsubscribe(room, aliceSub) {
						alice.w.Enqueue([]byte("<revoked>"))
					}
				})
				n.DispatchBatch(tt.envs)
				if got := alice.String(); got != tt.alice {
					t.Fatalf("alice got %q, want %q", got, tt.alice)
				}
				if got := bob.String(); got != tt.bob {
					t.Fatalf("bob got %q, want %q", got, tt.bob)
				}
			})
		}
	}
}

// Batches that are not one channel's plain events (several channels, a
// connection excluded) still reach everyone in order, one write each.
func TestDispatchBatchMixed(t *testing.T) {
	room7, room8 := domain.RoomChannel("7"), domain.RoomChannel("8")
	tests := []struct {
		name         string
		envs         []domain.Envelope
		both, second string // what a connection on both rooms / on room 7 only ("c2") receives
	}{
		{"two channels", []domain.Envelope{
			{Name: "a", Scope: domain.Scope{Room: "7"}},
			{Name: "b", Scope: domain.Scope{Room: "8"}},
			{Name: "c", Scope: domain.Scope{Room: "7"}},
		}, "<a><b><c>", "<a><c>"},
		{"a connection excluded", []domain.Envelope{
			{Name: "a", Scope: domain.Scope{Room: "7"}},
			{Name: "b", Scope: domain.Scope{Room: "7"}, Except: "c2"},
			{Name: "c", Scope: domain.Scope{Room: "7"}},
		}, "<a><b><c>", "<a><c>"},
	}
	for _, tt := range tests {
		for _, multi := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/multi=%v", tt.name, multi), func(t *testing.T) {
				n := NewNode(nil, nil)
				both, second := newWsub("c1"), newWsub("c2")
				subscribe(n, room7, both, multi)
				subscribe(n, room8, both, multi)
				subscribe(n, room7, second, multi)
				n.DispatchBatch(tt.envs)
				for _, c := range []struct {
					s    *wsub
					want string
				}{{both, tt.both}, {second, tt.second}} {
					if w := c.s.writes.Load(); w != 1 {
						t.Fatalf("%s: %d writes, want 1", c.s.id, w)
					}
					if m := c.s.many.Load(); m != 0 {
						t.Fatalf("%s: %d DeliverMany calls for a batch that is not one channel's", c.s.id, m)
					}
					if got := c.s.String(); got != c.want {
						t.Fatalf("%s got %q, want %q", c.s.id, got, c.want)
					}
				}
			})
		}
	}
}

// A message whose batch was already flushed (e.g. replayed from a
// subscribe buffer later) is written normally, not stranded.
func TestDeliverAfterFlush(t *testing.T) {
	h := NewHub()
	s := newWsub("c")
	b := &Batch{}
	h.Flush(b)
	s.w.Deliver(&Message{Event: "late", batch: b}, []byte("<late>"))
	if w := s.writes.Load(); w != 1 {
		t.Fatalf("%d writes, want the frame written at once", w)
	}
	if got := s.String(); got != "<late>" {
		t.Fatalf("got %q", got)
	}
}
