// Package pusher speaks the Pusher Channels protocol 7 (pusher-js 8,
// laravel-echo 2) on top of the gateway hub.
package pusher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// App is one Pusher application: its credentials and limits.
type App struct {
	ID     string `json:"id" yaml:"id"`
	Key    string `json:"key" yaml:"key"`
	Secret string `json:"secret" yaml:"secret"`
	// EncryptionMasterKey (base64, 32 bytes) enables private-encrypted-*.
	EncryptionMasterKey string `json:"encryption_master_key,omitempty" yaml:"encryption_master_key"`
	// ActivityTimeout is advertised in connection_established. Zero means 30s.
	ActivityTimeout time.Duration `json:"activity_timeout,omitempty" yaml:"activity_timeout"`
	// MaxChannelNameLength: zero means 200.
	MaxChannelNameLength int `json:"max_channel_name_length,omitempty" yaml:"max_channel_name_length"`
	// MaxSubscriptionsPerConnection: zero means 100 (the seed's limit).
	MaxSubscriptionsPerConnection int `json:"max_subscriptions_per_connection,omitempty" yaml:"max_subscriptions_per_connection"`
}

func (a *App) setDefaults() {
	if a.ActivityTimeout == 0 {
		a.ActivityTimeout = 30 * time.Second
	}
	if a.MaxChannelNameLength == 0 {
		a.MaxChannelNameLength = 200
	}
	if a.MaxSubscriptionsPerConnection == 0 {
		a.MaxSubscriptionsPerConnection = 100
	}
}

// Validate reports every problem with the app at once.
func (a App) Validate() error {
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
	if a.ActivityTimeout < 0 || a.MaxChannelNameLength < 0 || a.MaxSubscriptionsPerConnection < 0 {
		errs = append(errs, fmt.Errorf("pusher app %q: limits must not be negative", a.ID))
	}
	return errors.Join(errs...)
}

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
