// Package gateway is the real-time side of Switchboard: it takes committed
// events from the broker, maps them to channels, and fans them out through a
// hub that protocol adapters (gateway/pusher, gateway/centrifuge,
// gateway/actioncable) attach to.
package gateway

import (
	"encoding/json"
	"sync"
	"sync/atomic"
)

// ClientInfo describes a publishing or present client.
type ClientInfo struct {
	ConnID string          `json:"client"`
	UserID string          `json:"user"`
	Info   json.RawMessage `json:"conn_info,omitempty"`
}

// Message is one publication on one channel, shared read-only by every
// subscriber. Adapters encode it through Frame so the bytes are built once
// per channel and wire format, not once per subscriber.
type Message struct {
	Channel string          // hub channel name
	Event   string          // event name ("AttendeeCreated", "client-typing", ...)
	Data    json.RawMessage // the event object clients receive
	ID      string          // envelope id, when it came from the outbox
	Offset  uint64          // position in the channel's stream (1-based), 0 if untracked
	Epoch   string          // stream epoch that Offset belongs to
	// From is set for client-originated publications.
	From *ClientInfo
	// ExceptConn is a connection id that must not receive this message
	// (Pusher's socket_id exclusion, client events not echoed).
	ExceptConn string
	// Tags carries protocol-specific extras (e.g. Pusher's user_id on
	// presence client events). Read-only once published.
	Tags map[string]string

	// batch is set when m is dispatched as part of a backlog (see Batch).
	batch *Batch

	// first is the first encoding built, read without the lock: nearly
	// every channel has subscribers of one key only, and the fan-out asks
	// for it once per subscriber from several goroutines.
	first  atomic.Pointer[frameEntry]
	mu     sync.Mutex
	frames []frameEntry // further encodings, under mu
}

type frameEntry struct {
	key   string
	frame []byte
}

// Frame returns the encoding of m for key, building it with encode the first
// time. key names the wire format and anything else the bytes depend on
// (e.g. the protocol and the client-facing channel name). Safe for
// concurrent use. The fan-out asks once per subscriber: keys interned with
// the unique package compare by pointer instead of byte by byte.
func (m *Message) Frame(key string, encode func(*Message) []byte) []byte {
	if f := m.first.Load(); f != nil && f.key == key {
		return f.frame
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.first.Load(); f != nil && f.key == key {
		return f.frame
	}
	for _, f := range m.frames {
		if f.key == key {
			return f.frame
		}
	}
	b := encode(m)
	if m.first.Load() == nil {
		m.first.Store(&frameEntry{key: key, frame: b})
	} else {
		m.frames = append(m.frames, frameEntry{key: key, frame: b})
	}
	return b
}
