package centrifuge

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/centrifugal/protocol"
	"go.yaml.in/yaml/v3"

	"switchboard/gateway"
)

// ChannelOptions are the per-namespace settings (a subset of Centrifugo's
// namespace options, with its names).
type ChannelOptions struct {
	// Presence keeps who is subscribed (presence, presence_stats).
	Presence bool `json:"presence" yaml:"presence"`
	// JoinLeave pushes join/leave to every subscriber (Centrifugo's
	// join_leave + force_push_join_leave). Needs Presence.
	JoinLeave bool `json:"join_leave" yaml:"join_leave"`
	// HistorySize and HistoryTTL enable the stream: offsets, history and
	// recovery on reconnect. Both must be set.
	HistorySize int      `json:"history_size" yaml:"history_size"`
	HistoryTTL  Duration `json:"history_ttl" yaml:"history_ttl"`
	// UserLimited: "ns:{id}" may only be read by user {id} (the seed's
	// user:{id}).
	UserLimited bool `json:"user_limited" yaml:"user_limited"`
	// Allow lists the users who may subscribe; "*" means every
	// authenticated connection. A connection token's `channels` claim grants
	// channels on top of it.
	Allow []string `json:"allow" yaml:"allow"`
	// AllowPublish lets subscribers publish from the client (through the
	// outbox, like the server API). Off by default, as in Centrifugo.
	AllowPublish bool `json:"allow_publish" yaml:"allow_publish"`
}

// History returns the stream options.
func (o ChannelOptions) History() gateway.HistoryOptions {
	return gateway.HistoryOptions{Size: o.HistorySize, TTL: time.Duration(o.HistoryTTL)}
}

// Namespace is a channel namespace: channels named "name:rest".
type Namespace struct {
	Name           string `json:"name" yaml:"name"`
	ChannelOptions `yaml:",inline"`
}

// Duration is a time.Duration that reads "90s"/"10m" from config files (and
// plain numbers as seconds).
type Duration time.Duration

// UnmarshalJSON accepts "10m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration: want \"10m\" or seconds, got %s", b)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML accepts "10m" or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return d.UnmarshalJSON([]byte(strconvQuoteIfNeeded(n.Value, n.Tag)))
}

func strconvQuoteIfNeeded(v, tag string) string {
	if tag == "!!int" || tag == "!!float" {
		return v
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// MarshalJSON writes the duration as "10m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Channels is the channel configuration: namespaces, and the options of the
// canonical Switchboard channels (dashboard.project.*, notification-channel-*,
// ...) whose readers are decided by gateway.Authorizer, as over Pusher.
type Channels struct {
	Namespaces []Namespace `json:"namespaces" yaml:"namespaces"`
	// Canonical applies to Switchboard's own channels. Its Allow and
	// UserLimited are ignored: the Authorizer decides.
	Canonical ChannelOptions `json:"canonical" yaml:"canonical"`
}

// DefaultChannels is the seed's channel map: voice:calls, voice:agents,
// voice:queue:{id}, tickets:all, tickets:mine, tickets:{id}, user:{id} and
// presence:online, with history so reconnecting clients recover, and
// canonical channels recoverable too.
func DefaultChannels() Channels {
	hist := func(o ChannelOptions) ChannelOptions {
		o.HistorySize, o.HistoryTTL = 100, Duration(10*time.Minute)
		return o
	}
	all := []string{"*"}
	return Channels{
		Namespaces: []Namespace{
			{Name: "voice", ChannelOptions: hist(ChannelOptions{Allow: all})},
			{Name: "tickets", ChannelOptions: hist(ChannelOptions{Allow: all})},
			{Name: "user", ChannelOptions: hist(ChannelOptions{UserLimited: true})},
			{Name: "presence", ChannelOptions: ChannelOptions{Presence: true, JoinLeave: true, Allow: all}},
		},
		Canonical: hist(ChannelOptions{}),
	}
}

var nsName = regexp.MustCompile(`^[-a-zA-Z0-9_]{2,}$`)

// Validate reports every problem at once.
func (c Channels) Validate() error {
	var errs []error
	seen := map[string]bool{}
	check := func(where string, o ChannelOptions) {
		if o.HistorySize < 0 || o.HistoryTTL < 0 {
			errs = append(errs, fmt.Errorf("%s: history_size and history_ttl must not be negative", where))
		}
		if (o.HistorySize > 0) != (o.HistoryTTL > 0) {
			errs = append(errs, fmt.Errorf("%s: history needs both history_size and history_ttl", where))
		}
		if o.JoinLeave && !o.Presence {
			errs = append(errs, fmt.Errorf("%s: join_leave needs presence", where))
		}
	}
	for i, ns := range c.Namespaces {
		where := fmt.Sprintf("namespace %d (%q)", i, ns.Name)
		if !nsName.MatchString(ns.Name) {
			errs = append(errs, fmt.Errorf("%s: name must match %s", where, nsName))
		}
		if seen[ns.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		seen[ns.Name] = true
		check(where, ns.ChannelOptions)
	}
	check("canonical", c.Canonical)
	return errors.Join(errs...)
}

// LoadChannels reads a channel configuration file: YAML when its name ends
// in .yaml or .yml, JSON otherwise. Unknown keys are errors, so a typo does
// not silently leave a namespace open or closed.
func LoadChannels(path string) (Channels, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Channels{}, fmt.Errorf("centrifugo config: %w", err)
	}
	var c Channels
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		err = dec.Decode(&c)
	default:
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&c)
	}
	if err != nil {
		return Channels{}, fmt.Errorf("centrifugo config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Channels{}, fmt.Errorf("centrifugo config %s: %w", path, err)
	}
	return c, nil
}

// channel is a client channel name resolved against the configuration.
type channel struct {
	name      string // as the client spells it
	hub       string // hub channel
	canonical bool
	ns        *Namespace      // nil for canonical channels
	opts      *ChannelOptions // shared with the configuration: never changed
}

// hubPrefix scopes namespace channels on the hub, so they can never collide
// with canonical channels or with other protocols' app channels.
const hubPrefix = "centrifugo:"

// maxChannelLength is Centrifugo's channel.max_length.
const maxChannelLength = 255

// resolver maps client channel names to hub channels and options.
type resolver struct {
	byName    map[string]*Namespace
	canonical ChannelOptions
}

func newResolver(c Channels) *resolver {
	r := &resolver{byName: map[string]*Namespace{}, canonical: c.Canonical}
	for i := range c.Namespaces {
		ns := c.Namespaces[i]
		r.byName[ns.Name] = &ns
	}
	return r
}

// resolve returns the channel, or errUnknownChannel / errBadRequest.
func (r *resolver) resolve(name string) (channel, *protocol.Error) {
	if name == "" || len(name) > maxChannelLength {
		return channel{}, errBadRequest
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x21 || name[i] > 0x7e {
			return channel{}, errBadRequest
		}
	}
	if gateway.IsCanonical(name) {
		return channel{name: name, hub: name, canonical: true, opts: &r.canonical}, nil
	}
	nsName, rest, ok := strings.Cut(name, ":")
	if !ok || rest == "" {
		return channel{}, errUnknownChannel
	}
	ns := r.byName[nsName]
	if ns == nil {
		return channel{}, errUnknownChannel
	}
	return channel{name: name, hub: hubPrefix + name, ns: ns, opts: &ns.ChannelOptions}, nil
}

// historyOptions is the History's view of the configuration, by hub channel.
func (r *resolver) historyOptions(hub string) gateway.HistoryOptions {
	if rest, ok := strings.CutPrefix(hub, hubPrefix); ok {
		nsName, _, _ := strings.Cut(rest, ":")
		if ns := r.byName[nsName]; ns != nil {
			return ns.History()
		}
		return gateway.HistoryOptions{}
	}
	if gateway.IsCanonical(hub) {
		return r.canonical.History()
	}
	return gateway.HistoryOptions{}
}

// allowedByConfig applies the namespace rules to a connection (the
// canonical channels are the Authorizer's business, see conn.subscribe).
func (ch channel) allowedByConfig(user string, grants []string) bool {
	if grantsChannel(grants, ch.name) {
		return true
	}
	if ch.ns == nil {
		return false
	}
	if ch.opts.UserLimited {
		_, id, _ := strings.Cut(ch.name, ":")
		return user != "" && id == user
	}
	return slices.Contains(ch.opts.Allow, "*") && user != "" || user != "" && slices.Contains(ch.opts.Allow, user)
}

// grantsChannel reports whether a token's `channels` claim names channel,
// exactly or as "ns:*".
func grantsChannel(grants []string, name string) bool {
	for _, g := range grants {
		if g == name {
			return true
		}
		if p, ok := strings.CutSuffix(g, "*"); ok && strings.HasSuffix(p, ":") && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
