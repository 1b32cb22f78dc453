package pusher

import (
	"encoding/json"
	"regexp"
	"strings"

	"switchboard/gateway"
)

// Event names of the protocol.
const (
	evConnectionEstablished = "pusher:connection_established"
	evError                 = "pusher:error"
	evPing                  = "pusher:ping"
	evPong                  = "pusher:pong"
	evSubscribe             = "pusher:subscribe"
	evUnsubscribe           = "pusher:unsubscribe"
	evSubscriptionError     = "pusher:subscription_error"
	evSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
)

// Close and error codes (protocol §1.6). 4000–4099: don't reconnect;
// 4100–4199: reconnect after backoff; 4200–4299: reconnect now.
const (
	CodeAppNotFound      = 4001
	CodeOverQuota        = 4004
	CodeUnauthorized     = 4009
	CodeOverCapacity     = 4100
	CodeGenericReconnect = 4200
	CodePongTimeout      = 4201
	CodeClientEvent      = 4301
)

// inFrame is a client→server message. Data stays raw: its shape depends on
// the event.
type inFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
}

// outFrame is a server→client message.
type outFrame struct {
	Event   string `json:"event"`
	Channel string `json:"channel,omitempty"`
	Data    any    `json:"data,omitempty"`
	UserID  string `json:"user_id,omitempty"`
}

func encode(f outFrame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		// Only our own values are encoded here; failing means a bug.
		b, _ = json.Marshal(outFrame{Event: evError, Data: errorData{Message: "internal encoding error"}})
	}
	return gateway.TextFrame(b)
}

// jsonString renders v as a JSON string holding JSON, Pusher's "data is a
// string" convention that every client library accepts.
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type errorData struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
}

func errorFrame(code int, msg string) []byte {
	c := code
	return encode(outFrame{Event: evError, Data: errorData{Code: &c, Message: msg}})
}

type subErrorData struct {
	Type   string `json:"type"`
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func subscriptionErrorFrame(channel, typ, msg string, status int) []byte {
	return encode(outFrame{Event: evSubscriptionError, Channel: channel, Data: subErrorData{Type: typ, Error: msg, Status: status}})
}

// eventFrame encodes a hub message for a Pusher channel name: data as a
// JSON string, as the HTTP API delivers it.
func eventFrame(channel string, m *gateway.Message) []byte {
	data := string(m.Data)
	if m.Tags != nil && m.Tags["raw_string"] == "1" {
		// Already a JSON string literal: send it through unchanged.
		var s string
		if json.Unmarshal(m.Data, &s) == nil {
			data = s
		}
	}
	f := outFrame{Event: m.Event, Channel: channel, Data: data}
	if m.Tags != nil {
		f.UserID = m.Tags["user_id"]
	}
	return encode(f)
}

var channelNameRE = regexp.MustCompile(`^#?[-a-zA-Z0-9_=@,.;]+$`)

// validChannelName applies Pusher's naming rules.
func validChannelName(name string, max int) (ok bool, reason string) {
	if len(name) > max {
		return false, "The channel name is longer than the allowed " + itoa(max) + " characters."
	}
	if !channelNameRE.MatchString(name) || (strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "#server-to-user-")) {
		return false, "The channel name is not allowed. Read channel conventions: https://pusher.com/docs/channels/using_channels/channels/#channel-naming-conventions"
	}
	return true, ""
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// channelType classifies a Pusher channel by its (anchored) prefix.
type channelType int

const (
	chPublic channelType = iota
	chPrivate
	chPresence
	chUser // #server-to-user-{id}
)

func typeOf(name string) channelType {
	switch {
	case strings.HasPrefix(name, "private-"):
		return chPrivate
	case strings.HasPrefix(name, "presence-"):
		return chPresence
	case strings.HasPrefix(name, "#server-to-user-"):
		return chUser
	}
	return chPublic
}
