package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"switchboard/gateway/webhooks"
)

// appSpec is one app in SWITCHBOARD_APPS_FILE. Durations are whole seconds
// so the same file reads the same in YAML and JSON.
type appSpec struct {
	ID                            string          `json:"id" yaml:"id"`
	Key                           string          `json:"key" yaml:"key"`
	Secret                        string          `json:"secret" yaml:"secret"`
	EncryptionMasterKey           string          `json:"encryption_master_key" yaml:"encryption_master_key"`
	ClientEvents                  *bool           `json:"client_events" yaml:"client_events"`
	SubscriptionCount             bool            `json:"subscription_count" yaml:"subscription_count"`
	AuthPrefixes                  []string        `json:"auth_prefixes" yaml:"auth_prefixes"`
	ActivityTimeout               int             `json:"activity_timeout" yaml:"activity_timeout"`
	CacheTTL                      int             `json:"cache_ttl" yaml:"cache_ttl"`
	MaxChannelNameLength          int             `json:"max_channel_name_length" yaml:"max_channel_name_length"`
	MaxSubscriptionsPerConnection int             `json:"max_subscriptions_per_connection" yaml:"max_subscriptions_per_connection"`
	MaxConnectionsPerUser         int             `json:"max_connections_per_user" yaml:"max_connections_per_user"`
	MaxPresenceMembers            int             `json:"max_presence_members" yaml:"max_presence_members"`
	MaxPresenceMemberSize         int             `json:"max_presence_member_size" yaml:"max_presence_member_size"`
	ClientEventsPerSecond         int             `json:"client_events_per_second" yaml:"client_events_per_second"`
	MaxEventDataSize              int             `json:"max_event_data_size" yaml:"max_event_data_size"`
	MaxEventChannels              int             `json:"max_event_channels" yaml:"max_event_channels"`
	MaxBatchSize                  int             `json:"max_batch_size" yaml:"max_batch_size"`
	MaxEventNameLength            int             `json:"max_event_name_length" yaml:"max_event_name_length"`
	Enabled                       *bool           `json:"enabled" yaml:"enabled"`
	MaxConnections                int             `json:"max_connections" yaml:"max_connections"`
	EnableUserAuthentication      bool            `json:"enable_user_authentication" yaml:"enable_user_authentication"`
	UserAuthenticationTimeout     int             `json:"user_authentication_timeout" yaml:"user_authentication_timeout"`
	Webhooks                      []webhooks.Hook `json:"webhooks" yaml:"webhooks"`
}

type appsFile struct {
	Apps []appSpec `json:"apps" yaml:"apps"`
}

func (s appSpec) app() App {
	return App{
		ID: s.ID, Key: s.Key, Secret: s.Secret, EncryptionMasterKey: s.EncryptionMasterKey,
		ClientEvents: s.ClientEvents, SubscriptionCount: s.SubscriptionCount, AuthPrefixes: s.AuthPrefixes,
		Webhooks:                      s.Webhooks,
		ActivityTimeout:               time.Duration(s.ActivityTimeout) * time.Second,
		CacheTTL:                      time.Duration(s.CacheTTL) * time.Second,
		MaxChannelNameLength:          s.MaxChannelNameLength,
		MaxSubscriptionsPerConnection: s.MaxSubscriptionsPerConnection,
		MaxConnectionsPerUser:         s.MaxConnectionsPerUser,
		MaxPresenceMembers:            s.MaxPresenceMembers,
		MaxPresenceMemberSize:         s.MaxPresenceMemberSize,
		ClientEventsPerSecond:         s.ClientEventsPerSecond,
		MaxEventDataSize:              s.MaxEventDataSize,
		MaxEventChannels:              s.MaxEventChannels,
		MaxBatchSize:                  s.MaxBatchSize,
		MaxEventNameLength:            s.MaxEventNameLength,
		Enabled:                       s.Enabled,
		MaxConnections:                s.MaxConnections,
		EnableUserAuthentication:      s.EnableUserAuthentication,
		UserAuthenticationTimeout:     time.Duration(s.UserAuthenticationTimeout) * time.Second,
	}
}

// LoadApps reads the apps file at path: YAML (.yaml/.yml) or JSON (.json,
// or any file starting with '{'), shaped {"apps":[{id,key,secret,...}]}.
// Unknown fields are errors: a misspelt limit must not silently fall back
// to its default.
func LoadApps(path string) ([]App, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pusher apps file: %w", err)
	}
	apps, err := ParseApps(raw, filepath.Ext(path))
	if err != nil {
		return nil, fmt.Errorf("pusher apps file %s: %w", path, err)
	}
	return apps, nil
}

// ParseApps decodes an apps document; ext (".json", ".yaml", ...) picks the
// format, with content sniffing when it says neither.
func ParseApps(raw []byte, ext string) ([]App, error) {
	var f appsFile
	ext = strings.ToLower(ext)
	trimmed := bytes.TrimSpace(raw)
	if ext == ".json" || (ext != ".yaml" && ext != ".yml" && len(trimmed) > 0 && trimmed[0] == '{') {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, err // yaml.v3 errors already say "yaml: ..."
		}
	}
	if len(f.Apps) == 0 {
		return nil, errors.New("no apps defined (want a top-level \"apps\" list)")
	}
	out := make([]App, 0, len(f.Apps))
	for _, s := range f.Apps {
		out = append(out, s.app())
	}
	return out, nil
}
