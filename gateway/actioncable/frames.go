package actioncable

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"switchboard/gateway"
)

// Subprotocol is the only one @rails/actioncable accepts: if the server
// selects anything else the client closes and never reconnects.
const Subprotocol = "actioncable-v1-json"

// Disconnect reasons (Rails' INTERNAL.disconnect_reasons, plus the limits).
const (
	ReasonUnauthorized  = "unauthorized"
	ReasonServerRestart = "server_restart"
	ReasonTooSlow       = "too_slow"
	ReasonTooManyConns  = "too_many_connections"
	ReasonTokenExpired  = "token_expired"
	// ReasonRemote: the app closed the user's connections (Rails'
	// remote_connections.where(...).disconnect; here gateway.UserDisconnect).
	ReasonRemote = "remote"
)

// Client commands.
const (
	cmdSubscribe   = "subscribe"
	cmdUnsubscribe = "unsubscribe"
	cmdMessage     = "message"
)

// command is a client→server frame. Identifier stays the raw string the
// client sent: it is echoed byte for byte, never re-serialized.
type command struct {
	Command    string `json:"command"`
	Identifier string `json:"identifier"`
	Data       string `json:"data"`
}

// welcomeFrame is constant: @rails/actioncable only reads its type.
var welcomeFrame = gateway.TextFrame([]byte(`{"type":"welcome"}`))

// pingFrame is Rails' heartbeat, {"type":"ping","message":<unix seconds>}.
func pingFrame(now time.Time) []byte {
	b := make([]byte, 0, 40)
	b = append(b, `{"type":"ping","message":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '}')
	return gateway.TextFrame(b)
}

// disconnectFrame always carries an explicit reconnect boolean: the client
// destructures it, and a missing key means "never reconnect".
func disconnectFrame(reason string, reconnect bool) []byte {
	b, _ := json.Marshal(struct {
		Type      string `json:"type"`
		Reason    string `json:"reason"`
		Reconnect bool   `json:"reconnect"`
	}{"disconnect", reason, reconnect})
	return gateway.TextFrame(b)
}

// confirmFrame and rejectFrame answer a subscribe with the identifier as
// the client wrote it (the client matches with ===).
func confirmFrame(identifier string) []byte { return typedFrame(identifier, "confirm_subscription") }
func rejectFrame(identifier string) []byte  { return typedFrame(identifier, "reject_subscription") }

func typedFrame(identifier, typ string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"identifier":`)
	writeString(&b, identifier)
	b.WriteString(`,"type":`)
	writeString(&b, typ)
	b.WriteByte('}')
	return gateway.TextFrame(b.Bytes())
}

// broadcastFrame is {"identifier":..., "message":{"event":..., "data":...}}:
// the seed's event name and payload, the way the Rails channels broadcast
// them. Client events also carry the sender's user id. A verbatim message
// (the broadcast endpoint's, gateway.TagVerbatim) is the message itself:
// {"identifier":..., "message":<data>}, as ActionCable.server.broadcast
// and AnyCable deliver it.
func broadcastFrame(identifier string, m *gateway.Message) []byte {
	var b bytes.Buffer
	b.Grow(len(identifier) + len(m.Event) + len(m.Data) + 64)
	b.WriteString(`{"identifier":`)
	writeString(&b, identifier)
	if m.Verbatim() && len(m.Data) > 0 {
		b.WriteString(`,"message":`)
		b.Write(m.Data)
		b.WriteByte('}')
		return gateway.TextFrame(b.Bytes())
	}
	b.WriteString(`,"message":{"event":`)
	writeString(&b, m.Event)
	b.WriteString(`,"data":`)
	if len(m.Data) == 0 {
		b.WriteString("null")
	} else {
		// The envelope's data is already the exact wire object; copying it
		// avoids re-encoding every broadcast.
		b.Write(m.Data)
	}
	if m.From != nil && m.From.UserID != "" {
		b.WriteString(`,"user_id":`)
		writeString(&b, m.From.UserID)
	}
	b.WriteString("}}")
	return gateway.TextFrame(b.Bytes())
}

// writeString writes s as a JSON string without HTML escaping, so the
// bytes stay as close to the client's own as JSON allows.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}
