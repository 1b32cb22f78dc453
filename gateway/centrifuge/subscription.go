package centrifuge

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/centrifugal/protocol"

	"switchboard/gateway"
)

// maxSubscribeBuffer bounds what a subscription buffers while its
// subscribe reply is being built (a few milliseconds); a channel busier
// than that closes the connection with 3010 so the client resubscribes.
const maxSubscribeBuffer = 1024

// subscription is the hub Subscriber for one channel of one connection.
type subscription struct {
	c  *conn
	ch channel

	mu        sync.Mutex
	buffering bool // subscribe reply not sent yet: hold live messages
	overflow  bool
	present   bool // joined presence
	buf       []*gateway.Message
	covered   uint64 // stream offset the subscribe reply reached
	expires   time.Time
	expTimer  *time.Timer
}

func (s *subscription) ConnID() string { return s.c.id }

// Protocol lets the debug console count an event's fan-out per protocol
// (gateway.ProtocolSubscriber).
func (s *subscription) Protocol() gateway.Protocol { return gateway.ProtoCentrifuge }

// Deliver enqueues the publication push, encoded once per message for all
// centrifuge subscribers of the channel.
func (s *subscription) Deliver(m *gateway.Message) {
	s.mu.Lock()
	ok := s.admit(m)
	s.mu.Unlock()
	if ok {
		s.send(m)
	}
}

// admit decides, under s.mu, whether m goes out now. While the subscribe
// reply is being built every message is buffered. Afterwards a positioned
// message goes out only above the highest offset the client already has
// (from the reply, or sent since), so offsets reach the client strictly
// increasing and never twice, whatever order messages arrive in:
//   - one that got its offset before the reply read the stream position
//     but whose fan-out reached this subscription after the reply (its
//     publisher was descheduled in between);
//   - one kept by a process that was killed before delivering it, found
//     again by the next process (outbox Recall) and delivered among newer
//     ones: its old offset is below them, and the client has it from
//     before the crash or from its recovery.
func (s *subscription) admit(m *gateway.Message) bool {
	if s.buffering {
		if len(s.buf) < maxSubscribeBuffer {
			s.buf = append(s.buf, m)
		} else {
			s.overflow = true
		}
		return false
	}
	if m.Offset == 0 {
		return true
	}
	if m.Offset <= s.covered {
		return false
	}
	s.covered = m.Offset
	return true
}

// DeliverMany is Deliver for a backlog of the channel's messages: one
// write for all of them.
func (s *subscription) DeliverMany(ms []*gateway.Message) {
	var arr [gateway.MaxBrokerBatch]*gateway.Message
	admitted := arr[:0]
	s.mu.Lock()
	for _, m := range ms {
		if s.admit(m) {
			admitted = append(admitted, m)
		}
	}
	s.mu.Unlock()
	var farr [gateway.MaxBrokerBatch][]byte
	frames := farr[:0]
	for _, m := range admitted {
		if f := s.frame(m); f != nil {
			frames = append(frames, f)
		}
	}
	s.c.w.DeliverMany(frames)
}

func (s *subscription) send(m *gateway.Message) {
	if f := s.frame(m); f != nil {
		s.c.w.Deliver(m, f)
	}
}

// frame is m's publication push, encoded once for every centrifuge
// subscriber of the channel (nil if it cannot be encoded).
func (s *subscription) frame(m *gateway.Message) []byte {
	return m.Frame("centrifuge", func(m *gateway.Message) []byte {
		b, err := encodeReply(&protocol.Reply{Push: &protocol.Push{Channel: clientChannel(m.Channel), Pub: publication(m)}})
		if err != nil {
			s.c.a.log.Error("encode publication", "channel", m.Channel, "err", err)
			return nil
		}
		return gateway.TextFrame(b)
	})
}

// flush ends buffering: messages at or below the position the subscribe
// reply gave (last) were already covered by it and are dropped; the rest
// go out in order, after the reply (see admit).
func (s *subscription) flush(last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow {
		s.buf = nil
		go s.c.closeWith(DisconnectInsufficient)
		return
	}
	buf := s.buf
	s.buf, s.buffering, s.covered = nil, false, last
	for _, m := range buf {
		if s.admit(m) {
			s.send(m)
		}
	}
}

// expireAt arms the subscription-token expiry: without a sub_refresh by
// expires+grace the client gets unsubscribe 2501 and resubscribes with a
// new token. A zero time disarms it.
func (s *subscription) expireAt(expires time.Time, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expires = expires
	if s.expTimer != nil {
		s.expTimer.Stop()
		s.expTimer = nil
	}
	if expires.IsZero() {
		return
	}
	s.expTimer = time.AfterFunc(time.Until(expires)+grace, func() {
		s.mu.Lock()
		due := !s.expires.IsZero() && time.Now().After(s.expires.Add(grace))
		s.mu.Unlock()
		if due {
			s.c.dropSub(s)
			s.c.pushUnsubscribe(s.ch.name, 2501, "subscription expired")
		}
	})
}

// clientChannel is the name clients use for a hub channel.
func clientChannel(hub string) string {
	if rest, ok := strings.CutPrefix(hub, hubPrefix); ok {
		return rest
	}
	return hub
}

// Envelope tags that carry a publication's Centrifugo shape through the
// outbox (gateway.Message.Tags).
const (
	tagRaw        = "centrifugo.raw"    // "1": Data is the publication data as is
	tagFromUser   = "centrifugo.user"   // client publications: publisher's user
	tagFromClient = "centrifugo.client" // ... its client id
	tagFromInfo   = "centrifugo.info"   // ... its connection info (JSON)
)

// publication is the Centrifugo publication of a hub message. Server-API and
// client publications, and verbatim broadcasts (gateway.TagVerbatim),
// carry their data as published; domain events become
// {"type": event name, "data": event object}, the seed's event shape, so a
// client can tell AttendeeCreated from AttendeeUpdated.
func publication(m *gateway.Message) *protocol.Publication {
	p := &protocol.Publication{Offset: m.Offset}
	if m.Tags[tagRaw] == "1" || m.Verbatim() {
		p.Data = protocol.Raw(m.Data)
	} else {
		b, err := json.Marshal(struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}{m.Event, m.Data})
		if err != nil {
			b = []byte("null")
		}
		p.Data = b
	}
	if u, ok := m.Tags[tagFromClient]; ok {
		p.Info = &protocol.ClientInfo{User: m.Tags[tagFromUser], Client: u}
		if i := m.Tags[tagFromInfo]; i != "" {
			p.Info.ConnInfo = protocol.Raw(i)
		}
	} else if m.From != nil {
		p.Info = &protocol.ClientInfo{User: m.From.UserID, Client: m.From.ConnID, ConnInfo: protocol.Raw(m.From.Info)}
	}
	return p
}

// pushJoinLeave sends a join or leave push to every centrifuge subscriber of
// ch, encoded once. Join/leave are not publications: they skip the history
// and are never seen by other protocols.
func (a *Adapter) pushJoinLeave(ch channel, info *protocol.ClientInfo, join bool) {
	p := &protocol.Push{Channel: ch.name}
	if join {
		p.Join = &protocol.Join{Info: info}
	} else {
		p.Leave = &protocol.Leave{Info: info}
	}
	b, err := encodeReply(&protocol.Reply{Push: p})
	if err != nil {
		a.log.Error("encode join/leave", "channel", ch.name, "err", err)
		return
	}
	f := gateway.TextFrame(b)
	for _, sub := range a.node.Hub.Subscribers(ch.hub) {
		if s, ok := sub.(*subscription); ok {
			s.mu.Lock()
			buffering := s.buffering
			s.mu.Unlock()
			// A subscriber still building its reply learns the presence
			// from presence(); a join before its reply would confuse it.
			if !buffering {
				s.c.w.Enqueue(f)
			}
		}
	}
}

func validJSON(b []byte) bool { return len(b) > 0 && json.Valid(b) }

var _ gateway.MultiSubscriber = (*subscription)(nil)

// remotePresence pushes the join or leave of a connection of another node
// (cluster mode) to this node's subscribers of channels with join_leave.
func (a *Adapter) remotePresence(hub, conn string, m gateway.Member, joined, userChanged bool) {
	if !joined && userChanged {
		return // the user's departure after the grace: each connection's leave went out when it happened
	}
	seen := map[string]bool{}
	for _, sub := range a.node.Hub.Subscribers(hub) {
		s, ok := sub.(*subscription)
		if !ok || seen[s.ch.name] || !s.ch.opts.JoinLeave {
			continue
		}
		seen[s.ch.name] = true
		a.pushJoinLeave(s.ch, &protocol.ClientInfo{User: m.UserID, Client: conn, ConnInfo: protocol.Raw(m.Info)}, joined)
	}
}
