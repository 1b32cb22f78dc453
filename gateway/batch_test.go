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
	}{
		{"one event: written at once", 3, 1, 2},
		{"small channel", 3, 10, 2},
		{"large channel, parallel parts", 3*minPart + 1, 16, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NewNode(nil, nil)
			n.Hub.parts = tt.parts
			subs := make([]*wsub, tt.subs)
			for i := range subs {
				subs[i] = newWsub(fmt.Sprint("c", i))
				n.Hub.Subscribe(domain.RoomChannel("7"), subs[i])
			}
			var envs []domain.Envelope
			var want string
			for i := range tt.events {
				envs = append(envs, domain.Envelope{Name: fmt.Sprint("e", i), Scope: domain.Scope{Room: "7"}})
				want += fmt.Sprintf("<e%d>", i)
			}
			n.DispatchBatch(envs)
			for _, s := range subs {
				if w := s.writes.Load(); w != 1 {
					t.Fatalf("%s: %d writes for %d events, want 1", s.id, w, tt.events)
				}
				if got := s.String(); got != want {
					t.Fatalf("%s got %q, want %q", s.id, got, want)
				}
			}
		})
	}
}

// A revocation inside a batch takes effect between the events around it,
// exactly as if they had been dispatched one by one.
func TestDispatchBatchRevocationOrder(t *testing.T) {
	n := NewNode(nil, nil)
	alice, bob := newWsub("alice"), newWsub("bob")
	room := domain.RoomChannel("7")
	n.Hub.Subscribe(room, alice)
	n.Hub.Subscribe(room, bob)
	n.OnRevoke(func(user, channel string) {
		if user == "alice" && channel == room && n.Hub.Unsubscribe(room, alice) {
			alice.w.Enqueue([]byte("<revoked>"))
		}
	})
	sc := domain.Scope{Room: "7"}
	n.DispatchBatch([]domain.Envelope{
		{Name: "before", Scope: sc},
		{Name: "removed", Scope: sc, Revoke: []domain.Revocation{{Member: "alice", Channel: room}}},
		{Name: "after", Scope: sc},
	})
	if got, want := alice.String(), "<before><revoked>"; got != want {
		t.Fatalf("alice got %q, want %q", got, want)
	}
	if got, want := bob.String(), "<before><removed><after>"; got != want {
		t.Fatalf("bob got %q, want %q", got, want)
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
