// Package pusher speaks the Pusher Channels protocol 7 (pusher-js 8,
// laravel-echo 2, the official server SDKs) on top of the gateway hub.
package pusher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"switchboard/gateway/webhooks"
)

// Defaults of the per-app limits. The seed fixes connections per user and
// subscriptions per connection at 100; the rest follow Pusher's documented
// limits (protocol note §8.4).
const (
	DefaultMaxConnectionsPerUser   = 100
	DefaultMaxSubscriptions        = 100
	DefaultMaxChannelNameLength    = 200
	DefaultMaxPresenceMembers      = 100
	DefaultMaxPresenceMemberSize   = 1024
	DefaultClientEventsPerSecond   = 10
	DefaultMaxEventDataSize        = 10 * 1024
	DefaultMaxEventChannels        = 100
	DefaultMaxBatchSize            = 10
	DefaultMaxEventNameLength      = 200
	DefaultCacheTTL                = 30 * time.Minute
	DefaultActivityTimeout         = 30 * time.Second
	DefaultMaxTimestampSkewSeconds = 600
	// DefaultUserAuthenticationTimeout is how long a connection of an app
	// with EnableUserAuthentication may stay without signing in or
	// subscribing to a private/presence channel (soketi's default too).
	DefaultUserAuthenticationTimeout = 30 * time.Second
)

// DefaultAuthPrefixes are the non-canonical private/presence channels that
// /broadcasting/auth signs for any authenticated bearer: chat-style app
// channels ("private-chat.42", "presence-chat.lobby") in every private and
// presence flavour. Switchboard's canonical channels never need listing:
// they follow gateway.Authorizer.
var DefaultAuthPrefixes = []string{
	"private-chat.", "presence-chat.",
	"private-encrypted-chat.", "private-cache-chat.", "presence-cache-chat.", "private-encrypted-cache-chat.",
}

// App is one Pusher application: its credentials, switches and limits.
// Zero values mean the documented defaults (setDefaults).
type App struct {
	ID     string
	Key    string
	Secret string
	// Enabled switches the app on (nil means enabled). A disabled app's
	// WebSocket connections get pusher:error 4003 and close 4003; its HTTP
	// API calls are refused with 403.
	Enabled *bool
	// EncryptionMasterKey (base64 of 32 bytes) enables private-encrypted-*
	// channels: the auth endpoint derives each channel's shared_secret from it.
	EncryptionMasterKey string
	// ClientEvents enables client-* events (nil means enabled).
	ClientEvents *bool
	// SubscriptionCount enables pusher_internal:subscription_count.
	SubscriptionCount bool
	// Webhooks are the app's webhooks (gateway/webhooks): where to POST
	// which events.
	Webhooks []webhooks.Hook
	// AuthPrefixes are the non-canonical private/presence channel prefixes
	// /broadcasting/auth may sign (nil means DefaultAuthPrefixes; an empty,
	// non-nil list means none).
	AuthPrefixes []string

	ActivityTimeout               time.Duration // advertised in connection_established
	CacheTTL                      time.Duration // cache channels keep their last event this long
	MaxChannelNameLength          int
	MaxSubscriptionsPerConnection int
	MaxConnectionsPerUser         int
	MaxPresenceMembers            int
	MaxPresenceMemberSize         int // bytes of user_info
	ClientEventsPerSecond         int // per connection
	MaxEventDataSize              int // bytes of an HTTP API event's data
	MaxEventChannels              int // channels per HTTP API event
	MaxBatchSize                  int // events per batch_events call
	MaxEventNameLength            int // HTTP API events and client events
	// MaxConnections caps the app's concurrent connections in the cluster
	// (0 or -1: no cap); the connection over it gets pusher:error 4004 and
	// close 4004.
	MaxConnections int
	// EnableUserAuthentication closes connections that neither sign in nor
	// subscribe to a private/presence channel within
	// UserAuthenticationTimeout (zero means 30s) with 4009.
	EnableUserAuthentication  bool
	UserAuthenticationTimeout time.Duration

	masterKey []byte // decoded EncryptionMasterKey
	// canonical is set on the default app only: its private-/presence-
	// channels named after Switchboard's canonical channels are those
	// channels. Other apps are isolated tenants whose names never reach
	// Switchboard's channels, whatever they are called.
	canonical bool
}

func (a *App) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&a.MaxChannelNameLength, DefaultMaxChannelNameLength)
	def(&a.MaxSubscriptionsPerConnection, DefaultMaxSubscriptions)
	def(&a.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser)
	def(&a.MaxPresenceMembers, DefaultMaxPresenceMembers)
	def(&a.MaxPresenceMemberSize, DefaultMaxPresenceMemberSize)
	def(&a.ClientEventsPerSecond, DefaultClientEventsPerSecond)
	def(&a.MaxEventDataSize, DefaultMaxEventDataSize)
	def(&a.MaxEventChannels, DefaultMaxEventChannels)
	def(&a.MaxBatchSize, DefaultMaxBatchSize)
	def(&a.MaxEventNameLength, DefaultMaxEventNameLength)
	if a.ActivityTimeout == 0 {
		a.ActivityTimeout = DefaultActivityTimeout
	}
	if a.CacheTTL == 0 {
		a.CacheTTL = DefaultCacheTTL
	}
	if a.AuthPrefixes == nil {
		a.AuthPrefixes = DefaultAuthPrefixes
	}
	if a.EnableUserAuthentication && a.UserAuthenticationTimeout == 0 {
		a.UserAuthenticationTimeout = DefaultUserAuthenticationTimeout
	}
}

// Validate reports every problem with the app at once, and decodes the
// master key.
func (a *App) Validate() error {
	var errs []error
	if a.ID == "" {
		errs = append(errs, errors.New("pusher app: id is required"))
	}
	if a.Key == "" {
		errs = append(errs, fmt.Errorf("pusher app %q: key is required", a.ID))
	}
	if a.Secret == "" {
		errs = append(errs, fmt.Errorf("pusher app %q: secret is required", a.ID))
	}
	if strings.ContainsAny(a.ID, ":/") {
		errs = append(errs, fmt.Errorf("pusher app %q: id must not contain ':' or '/'", a.ID))
	}
	for _, n := range []int{a.MaxChannelNameLength, a.MaxSubscriptionsPerConnection, a.MaxConnectionsPerUser,
		a.MaxPresenceMembers, a.MaxPresenceMemberSize, a.ClientEventsPerSecond, a.MaxEventDataSize,
		a.MaxEventChannels, a.MaxBatchSize, a.MaxEventNameLength} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("pusher app %q: limits must not be negative", a.ID))
			break
		}
	}
	if a.MaxConnections < -1 {
		errs = append(errs, fmt.Errorf("pusher app %q: max_connections must be -1 (no limit), 0 (no limit) or positive", a.ID))
	}
	if a.ActivityTimeout < 0 || a.CacheTTL < 0 || a.UserAuthenticationTimeout < 0 {
		errs = append(errs, fmt.Errorf("pusher app %q: durations must not be negative", a.ID))
	}
	if a.EncryptionMasterKey != "" {
		k, err := base64.StdEncoding.DecodeString(a.EncryptionMasterKey)
		if err != nil || len(k) != 32 {
			errs = append(errs, fmt.Errorf("pusher app %q: encryption_master_key must be base64 of 32 bytes", a.ID))
		} else {
			a.masterKey = k
		}
	}
	for _, h := range a.Webhooks {
		if err := h.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pusher app %q: %w", a.ID, err))
		}
	}
	return errors.Join(errs...)
}

// enabledOn reports whether the app is enabled.
func (a *App) enabledOn() bool { return a.Enabled == nil || *a.Enabled }

// connLimit is the app's connection cap, or 0 for none.
func (a *App) connLimit() int { return max(a.MaxConnections, 0) }

// clientEventsOn reports whether the app accepts client-* events.
func (a *App) clientEventsOn() bool { return a.ClientEvents == nil || *a.ClientEvents }

// Sign returns "key:hex(HMAC-SHA256(secret, toSign))", Pusher's auth format.
func (a *App) Sign(toSign string) string {
	return a.Key + ":" + a.signature(toSign)
}

func (a *App) signature(toSign string) string {
	m := hmac.New(sha256.New, []byte(a.Secret))
	m.Write([]byte(toSign))
	return hex.EncodeToString(m.Sum(nil))
}

// ChannelAuth is the auth string for a private or presence subscription.
// channelData is the exact JSON string the client sends, or "".
func (a *App) ChannelAuth(socketID, channel, channelData string) string {
	s := socketID + ":" + channel
	if channelData != "" {
		s += ":" + channelData
	}
	return a.Sign(s)
}

// VerifyChannelAuth checks a subscribe's auth in constant time.
func (a *App) VerifyChannelAuth(auth, socketID, channel, channelData string) bool {
	want := a.ChannelAuth(socketID, channel, channelData)
	return hmac.Equal([]byte(auth), []byte(want))
}

// UserAuth is the auth string of pusher:signin: the signed string is
// "socket_id::user::user_data".
func (a *App) UserAuth(socketID, userData string) string {
	return a.Sign(socketID + "::user::" + userData)
}

// VerifyUserAuth checks a signin's auth in constant time.
func (a *App) VerifyUserAuth(auth, socketID, userData string) bool {
	return hmac.Equal([]byte(auth), []byte(a.UserAuth(socketID, userData)))
}

// SharedSecret is an encrypted channel's key, derived as the official SDKs
// do: base64(SHA256(channel_name ++ master_key)). ok is false when the app
// has no master key.
func (a *App) SharedSecret(channel string) (secret string, ok bool) {
	if len(a.masterKey) == 0 {
		return "", false
	}
	h := sha256.New()
	h.Write([]byte(channel))
	h.Write(a.masterKey)
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), true
}

// mayAuthPrefix reports whether /broadcasting/auth may sign the
// non-canonical channel name for any authenticated bearer.
func (a *App) mayAuthPrefix(name string) bool {
	for _, p := range a.AuthPrefixes {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
