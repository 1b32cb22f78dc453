package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
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
	evSignin                = "pusher:signin"
	evSigninSuccess         = "pusher:signin_success"
	evCacheMiss             = "pusher:cache_miss"
	evSubscriptionError     = "pusher:subscription_error"
	evSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	evMemberAdded           = "pusher_internal:member_added"
	evMemberRemoved         = "pusher_internal:member_removed"
	evSubscriptionCount     = "pusher_internal:subscription_count"
	clientEventPrefix       = "client-"
)

// Close and error codes (protocol §1.6). 4000–4099: don't reconnect;
// 4100–4199: reconnect after backoff; 4200–4299: reconnect now; 4300+:
// sent as pusher:error only, never as a close code (pusher-js would stop
// reconnecting).
const (
	CodeAppNotFound      = 4001
	CodeAppDisabled      = 4003
	CodeOverQuota        = 4004
	CodeUnauthorized     = 4009
	CodeOverCapacity     = 4100
	CodeGenericReconnect = 4200
	CodePongTimeout      = 4201
	CodeClientEvent      = 4301
)

// maxFrameEventLength bounds the event name of any client frame; longer
// names are rejected before anything looks at them.
const maxFrameEventLength = 200

// inFrame is a client→server message. Data stays raw: its shape depends on
// the event.
type inFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// errBadFrame is returned by decodeFrame for anything that is not a usable
// client message.
var errBadFrame = errors.New("pusher: invalid message format")

// errLongEvent is a well-formed frame whose event name is longer than
// maxFrameEventLength; decodeFrame returns the frame with it.
var errLongEvent = errors.New("pusher: event name too long")

// decodeFrame parses one client text frame: a JSON object with a non-empty
// string "event" (≤ 200 bytes), an optional string "channel" and any "data".
func decodeFrame(raw []byte) (inFrame, error) {
	var f inFrame
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return inFrame{}, errBadFrame
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return inFrame{}, errBadFrame
	}
	if f.Event == "" {
		return inFrame{}, errBadFrame
	}
	if string(f.Data) == "null" {
		f.Data = nil
	}
	if len(f.Event) > maxFrameEventLength {
		// Still a well-formed frame: a client event may be allowed a
		// longer name by its app (max_event_name_length), see conn.handle.
		return f, errLongEvent
	}
	return f, nil
}

type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
}

type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
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

func succeededFrame(channel, data string) []byte {
	return encode(outFrame{Event: evSubscriptionSucceeded, Channel: channel, Data: data})
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
	if !channelNameRE.MatchString(name) || (strings.HasPrefix(name, "#") && !strings.HasPrefix(name, userChannelPrefix)) {
		return false, "The channel name is not allowed. Read channel conventions: https://pusher.com/docs/channels/using_channels/channels/#channel-naming-conventions"
	}
	return true, ""
}

var userIDRE = regexp.MustCompile(`^[-a-zA-Z0-9_=@,.;]{1,128}$`)

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

const userChannelPrefix = "#server-to-user-"

// chanInfo classifies a Pusher channel by its anchored prefix (longest
// prefix first, as pusher-js does: private-encrypted- before private-).
type chanInfo struct {
	private   bool // needs a signed auth (private-*, presence-* included)
	presence  bool
	encrypted bool
	cache     bool
	user      bool // #server-to-user-{id}
}

func classify(name string) chanInfo {
	switch {
	case strings.HasPrefix(name, userChannelPrefix):
		return chanInfo{user: true}
	case strings.HasPrefix(name, "private-encrypted-cache-"):
		return chanInfo{private: true, encrypted: true, cache: true}
	case strings.HasPrefix(name, "private-encrypted-"):
		return chanInfo{private: true, encrypted: true}
	case strings.HasPrefix(name, "private-cache-"):
		return chanInfo{private: true, cache: true}
	case strings.HasPrefix(name, "private-"):
		return chanInfo{private: true}
	case strings.HasPrefix(name, "presence-cache-"):
		return chanInfo{private: true, presence: true, cache: true}
	case strings.HasPrefix(name, "presence-"):
		return chanInfo{private: true, presence: true}
	case strings.HasPrefix(name, "cache-"):
		return chanInfo{cache: true}
	}
	return chanInfo{}
}

// canonicalOf returns the Switchboard channel behind a private-/presence-
// name ("private-dashboard.project.demo.attendees" → "dashboard.project.demo.attendees"),
// or "" for app channels.
func canonicalOf(name string) string {
	for _, p := range []string{"private-", "presence-"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if gateway.IsCanonical(rest) || isProjectPresence(p, rest) {
				return rest
			}
		}
	}
	return ""
}

// isProjectPresence recognises presence-dashboard.project.{slug}: "who is
// watching this project's dashboard".
func isProjectPresence(prefix, rest string) bool {
	if prefix != "presence-" {
		return false
	}
	slug, ok := strings.CutPrefix(rest, "dashboard.project.")
	return ok && slug != "" && !strings.Contains(slug, ".")
}

// parseMember reads presence channel_data: user_id may be a string or a
// number (1 and "1" are the same member); user_info is any JSON.
func parseMember(channelData string) (gateway.Member, error) {
	var cd struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(channelData), &cd); err != nil {
		return gateway.Member{}, errors.New("channel_data is not a JSON object")
	}
	var id string
	switch {
	case len(cd.UserID) > 0 && cd.UserID[0] == '"':
		if err := json.Unmarshal(cd.UserID, &id); err != nil {
			return gateway.Member{}, errors.New("channel_data.user_id is invalid")
		}
	case len(cd.UserID) > 0 && (cd.UserID[0] == '-' || (cd.UserID[0] >= '0' && cd.UserID[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(cd.UserID, &n); err != nil {
			return gateway.Member{}, errors.New("channel_data.user_id is invalid")
		}
		id = n.String()
	}
	if id == "" {
		return gateway.Member{}, errors.New("channel_data.user_id is required (string or number)")
	}
	if len(id) > 128 {
		return gateway.Member{}, errors.New("channel_data.user_id is longer than 128 characters")
	}
	info := cd.UserInfo
	if string(info) == "null" {
		info = nil
	}
	return gateway.Member{UserID: id, Info: info}, nil
}

// presenceData is the subscription_succeeded payload of a presence channel.
func presenceData(members []gateway.Member) string {
	ids := make([]string, 0, len(members))
	hash := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		ids = append(ids, m.UserID)
		info := m.Info
		if len(info) == 0 {
			info = json.RawMessage("null")
		}
		hash[m.UserID] = info
	}
	return jsonString(map[string]any{"presence": map[string]any{"ids": ids, "hash": hash, "count": len(ids)}})
}
