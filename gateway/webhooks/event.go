package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Event types of Pusher's webhooks (protocol note §9).
const (
	ChannelOccupied   = "channel_occupied"
	ChannelVacated    = "channel_vacated"
	MemberAdded       = "member_added"
	MemberRemoved     = "member_removed"
	ClientEvent       = "client_event"
	CacheMiss         = "cache_miss"
	SubscriptionCount = "subscription_count"
)

var eventTypes = map[string]bool{ChannelOccupied: true, ChannelVacated: true, MemberAdded: true, MemberRemoved: true,
	ClientEvent: true, CacheMiss: true, SubscriptionCount: true}

// Event is one webhook event object, in Pusher's shape: name and channel
// always, the rest by type.
type Event struct {
	Name              string `json:"name"`
	Channel           string `json:"channel"`
	UserID            string `json:"user_id,omitempty"`
	Event             string `json:"event,omitempty"`
	Data              string `json:"data,omitempty"`
	SocketID          string `json:"socket_id,omitempty"`
	SubscriptionCount *int   `json:"subscription_count,omitempty"`
}

// Hook is one webhook of an app, in the shape soketi's apps files use.
type Hook struct {
	URL        string            `json:"url" yaml:"url"`
	EventTypes []string          `json:"event_types" yaml:"event_types"`
	Headers    map[string]string `json:"headers" yaml:"headers"`
	Filter     Filter            `json:"filter" yaml:"filter"`
}

// Filter limits a hook to channels by name.
type Filter struct {
	ChannelNameStartsWith string `json:"channel_name_starts_with" yaml:"channel_name_starts_with"`
	ChannelNameEndsWith   string `json:"channel_name_ends_with" yaml:"channel_name_ends_with"`
}

// Validate reports what is wrong with h.
func (h Hook) Validate() error {
	var errs []error
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("webhook url %q: want an http(s) URL", h.URL))
	}
	if len(h.EventTypes) == 0 {
		errs = append(errs, fmt.Errorf("webhook %s: event_types is empty", h.URL))
	}
	for _, t := range h.EventTypes {
		if !eventTypes[t] {
			errs = append(errs, fmt.Errorf("webhook %s: unknown event type %q (want channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count)", h.URL, t))
		}
	}
	for k := range h.Headers {
		if strings.EqualFold(k, "Content-Type") || strings.EqualFold(k, "X-Pusher-Key") || strings.EqualFold(k, "X-Pusher-Signature") {
			errs = append(errs, fmt.Errorf("webhook %s: header %s is set by the server", h.URL, k))
		}
	}
	return errors.Join(errs...)
}

// Wants reports whether h takes e.
func (h Hook) Wants(e Event) bool {
	ok := false
	for _, t := range h.EventTypes {
		if t == e.Name {
			ok = true
			break
		}
	}
	return ok && strings.HasPrefix(e.Channel, h.Filter.ChannelNameStartsWith) && strings.HasSuffix(e.Channel, h.Filter.ChannelNameEndsWith)
}

// Body is the request body: {"time_ms", "events"}.
func Body(now time.Time, events []Event) []byte {
	b, _ := json.Marshal(struct {
		TimeMS int64   `json:"time_ms"`
		Events []Event `json:"events"`
	}{now.UnixMilli(), events})
	return b
}

// Sign is X-Pusher-Signature: hex HMAC-SHA256 of the body with the secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Headers are a request's headers: the hook's own, then Pusher's.
func Headers(h Hook, key, secret string, body []byte) map[string]string {
	out := map[string]string{}
	for k, v := range h.Headers {
		out[k] = v
	}
	out["Content-Type"] = "application/json"
	out["X-Pusher-Key"] = key
	out["X-Pusher-Signature"] = Sign(secret, body)
	return out
}
