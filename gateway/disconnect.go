package gateway

import (
	"encoding/json"
	"errors"
	"sync"
)

// UserDisconnect asks every protocol to close a user's connections (a
// server-side logout, a banned user): Pusher's terminate_connections and
// Centrifugo's disconnect API are both this, for all three front doors.
// Each adapter ends the connection with its own goodbye: Pusher
// pusher:error 4009 (4200 when Reconnect), Centrifugo its close code,
// ActionCable {"type":"disconnect","reason":"remote","reconnect":...}.
type UserDisconnect struct {
	// User is whose connections close: a Switchboard user id (JWT sub),
	// the key the adapters index connections under (gateway.UserConns).
	User string `json:"user"`
	// Client, when set, closes only the connection with this id (a
	// Centrifugo client id, a Pusher socket id, an ActionCable
	// connection id), and only if it belongs to User.
	Client string `json:"client,omitempty"`
	// Keep lists connection ids left open (Centrifugo's whitelist).
	Keep []string `json:"keep,omitempty"`
	// Reconnect tells clients they may come back (false: they stay
	// disconnected until the app reconnects them).
	Reconnect bool `json:"reconnect,omitempty"`
	// Code and Reason are the close code and reason for protocols whose
	// clients read one the requester may choose (Centrifugo, 3000-4999);
	// zero means each protocol's own.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Spares reports whether connection id is left open by d.
func (d UserDisconnect) Spares(id string) bool {
	if d.Client != "" && d.Client != id {
		return true
	}
	for _, k := range d.Keep {
		if k == id {
			return true
		}
	}
	return false
}

// Validate reports a request that cannot be carried out.
func (d UserDisconnect) Validate() error {
	var errs []error
	if d.User == "" {
		errs = append(errs, errors.New("user is required"))
	}
	if d.Code != 0 && (d.Code < 3000 || d.Code > 4999) {
		errs = append(errs, errors.New("code must be between 3000 and 4999"))
	}
	if len(d.Reason) > 123 {
		errs = append(errs, errors.New("reason must be at most 123 bytes (it travels in a WebSocket close frame)"))
	}
	return errors.Join(errs...)
}

// Disconnector is a protocol adapter that can close this node's
// connections of a user. DisconnectUser queues each connection's goodbye
// (it must not wait for the writes) and returns how many it closed.
type Disconnector interface {
	DisconnectUser(d UserDisconnect) int
}

// disconnectCommand is the command kind of DisconnectUser.
const disconnectCommand = "gateway.disconnect"

// disconnectors is the node's list of adapters that close connections.
type disconnectors struct {
	mu   sync.RWMutex
	list []Disconnector
	once sync.Once
}

// AddDisconnector registers an adapter with DisconnectUser; call before
// serving.
func (n *Node) AddDisconnector(d Disconnector) {
	n.discs.once.Do(func() {
		n.OnCommand(disconnectCommand, func(body json.RawMessage) {
			var req UserDisconnect
			if json.Unmarshal(body, &req) == nil && req.Validate() == nil {
				n.disconnectLocal(req)
			}
		})
	})
	n.discs.mu.Lock()
	defer n.discs.mu.Unlock()
	n.discs.list = append(n.discs.list, d)
}

// DisconnectUser closes d.User's connections on every protocol: this
// node's before it returns (their goodbyes are queued), the other nodes'
// through the peers bus in cluster mode. It returns how many of this
// node's connections it closed.
func (n *Node) DisconnectUser(d UserDisconnect) (int, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	body, err := json.Marshal(d)
	if err != nil {
		return 0, err
	}
	closed := n.disconnectLocal(d)
	if n.Peers != nil {
		n.Peers.command(disconnectCommand, body)
	}
	return closed, nil
}

func (n *Node) disconnectLocal(d UserDisconnect) int {
	n.discs.mu.RLock()
	list := n.discs.list
	n.discs.mu.RUnlock()
	closed := 0
	for _, a := range list {
		closed += a.DisconnectUser(d)
	}
	return closed
}
