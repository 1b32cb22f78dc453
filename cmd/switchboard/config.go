package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"switchboard/gateway"
	"time"

	"switchboard/domain"

	"switchboard/gateway/pusher"
	"switchboard/gateway/webhooks"
)

// devSecret signs tokens in embedded mode when no secret is configured, so a
// newcomer's `make run` works. It is public: never use it in production.
const devSecret = "switchboard-dev-secret-do-not-use-in-production"

// config is everything `serve` reads from the environment (and flags, which
// win). The variables, flags and defaults are in settings below.
type config struct {
	Addr         string        // SWITCHBOARD_ADDR, default ":8080"
	DataDir      string        // SWITCHBOARD_DATA_DIR, default "./data" (SQLite file)
	DatabaseURL  string        // DATABASE_URL; postgres://... switches to PostgreSQL
	JWTSecret    string        // SWITCHBOARD_JWT_SECRET; required with PostgreSQL
	JWTMaxTTL    time.Duration // SWITCHBOARD_JWT_MAX_TTL, default 720h: longest token lifetime any door accepts
	AppID        string        // SWITCHBOARD_APP_ID, default "app-id"
	AppKey       string        // SWITCHBOARD_APP_KEY, default "app-key"
	AppSecret    string        // SWITCHBOARD_APP_SECRET, default "app-secret"
	LogLevel     string        // SWITCHBOARD_LOG_LEVEL: debug|info|warn|error, default info
	Retention    time.Duration // SWITCHBOARD_OUTBOX_RETENTION, default 24h
	PollInterval time.Duration // SWITCHBOARD_RELAY_POLL, default 500ms (safety net behind wake-ups)
	// Webhooks (gateway/webhooks; hooks themselves are per app in the apps
	// file): SWITCHBOARD_WEBHOOK_MAX_AGE (24h) is how long a delivery is
	// retried; the trims of the seed's timers: SWITCHBOARD_WEBHOOK_LOG_TRIM
	// + SWITCHBOARD_WEBHOOK_LOG_RETENTION (minutes, 1440),
	// SWITCHBOARD_WEBHOOK_QUEUE_TRIM (sent deliveries after 1 h),
	// SWITCHBOARD_WEBHOOK_ERRORS_TRIM (failed ones after 7 days).
	WebhookMaxAge       time.Duration
	WebhookLogTrim      bool
	WebhookLogRetention time.Duration
	WebhookQueueTrim    bool
	WebhookErrorsTrim   bool
	// AppWebhooks is SWITCHBOARD_APP_WEBHOOKS: the single app's webhooks as
	// a JSON list in the apps file's shape.
	AppWebhooks string
	// NATSURL is SWITCHBOARD_NATS_URL (nats://..., comma-separated for a
	// NATS cluster): cluster mode, several nodes on one PostgreSQL database.
	NATSURL string
	// RelayMode is SWITCHBOARD_RELAY_MODE: auto (default), poll or logical
	// (outbox.Mode): logical decoding where PostgreSQL has wal_level=logical.
	RelayMode    string
	ShutdownWait time.Duration // SWITCHBOARD_SHUTDOWN_TIMEOUT, default 15s
	// DBTimeout is SWITCHBOARD_DB_TIMEOUT, default 5s: the longest a REST
	// request's database work, a PostgreSQL connect, or a database read or
	// write without progress may take; past it the request answers 503
	// database_unavailable.
	DBTimeout time.Duration
	// RestartGrace is SWITCHBOARD_RESTART_GRACE, default 2s: events waiting
	// in the outbox when serve starts (not delivered before the last stop)
	// go out this long after start, once clients have reconnected
	// (outbox.Config.RestartGrace); 0 = at once.
	RestartGrace time.Duration
	// Coalesce is SWITCHBOARD_FANOUT_COALESCE, default 100ms: under sustained
	// fan-out load, how long an event may wait for the next one so both
	// leave in one write per connection (gateway.LocalBrokerConfig); 0 = never.
	Coalesce time.Duration

	// Pusher apps (docs/pusherfull.md).
	// AppsFile is SWITCHBOARD_APPS_FILE: a YAML or JSON {"apps":[...]} list
	// of Pusher apps; when set, the single-app SWITCHBOARD_APP_* variables
	// are ignored and the file's first app is the default app.
	AppsFile string
	// AppEncryptionMasterKey is SWITCHBOARD_APP_ENCRYPTION_MASTER_KEY (base64
	// of 32 bytes) enabling private-encrypted-* on the single app; default off.
	AppEncryptionMasterKey string
	// AppClientEvents is SWITCHBOARD_APP_CLIENT_EVENTS (true|false), default true.
	AppClientEvents bool
	// AppSubscriptionCount is SWITCHBOARD_APP_SUBSCRIPTION_COUNT (true|false),
	// default false: pusher_internal:subscription_count events.
	AppSubscriptionCount bool
	// Centrifugo front door (gateway/centrifuge).
	APIKey           string        // SWITCHBOARD_API_KEY: server API key (/api/publish ...); empty disables the server API
	CentrifugoConfig string        // SWITCHBOARD_CENTRIFUGO_CONFIG: namespaces file (.json, .yaml); empty = the seed's namespaces
	RealtimeTokenTTL time.Duration // SWITCHBOARD_REALTIME_TOKEN_TTL: lifetime of /api/v1/realtime/token tokens, default 1h
	// ActionCable front door (gateway/actioncable, docs/actioncable.md).
	CableChannels         string   // SWITCHBOARD_CABLE_CHANNELS: JSON file of extra channel classes; default builtins only
	CableAllowedOrigins   []string // SWITCHBOARD_CABLE_ALLOWED_ORIGINS: comma-separated browser origins; default any (cookie identities: same host only)
	CableMaxSubscriptions int      // SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS: per connection, default 100
	BroadcastKey          string   // SWITCHBOARD_BROADCAST_KEY: key of POST /_broadcast (AnyCable's); empty = SWITCHBOARD_API_KEY
	// Scoped PubSub (pubsub/, docs/pubsub.md).
	PubSubPublishRate  int           // SWITCHBOARD_PUBSUB_PUBLISH_RATE: in-room publishes per second per participant, default 10
	PubSubMaxPayload   int           // SWITCHBOARD_PUBSUB_MAX_PAYLOAD: bytes of an event's data (in-room and HTTP), default 10240
	PubSubRoomTokenTTL time.Duration // SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL: lifetime of minted room tokens, default 8h
	// Benchmarks and profiling (cmd/switchboard-bench).
	// DebugAddr (SWITCHBOARD_DEBUG_ADDR, default off) serves net/http/pprof
	// on its own listener, e.g. 127.0.0.1:6060. Never expose it publicly.
	DebugAddr string
	// Metrics (docs/metrics.md), off unless one is set: MetricsAddr
	// (SWITCHBOARD_METRICS_ADDR) serves /metrics on a listener of its own;
	// MetricsToken (SWITCHBOARD_METRICS_TOKEN) serves it on the main
	// listener to requests bearing it.
	MetricsAddr  string
	MetricsToken string
	// ReadyMaxLag is SWITCHBOARD_READY_MAX_LAG, default 30s: /readyz
	// answers 503 while an event handed to the broker waits longer than
	// this to reach every connection.
	ReadyMaxLag time.Duration
	// Production (issue 20): browsers on other origins, TLS, log format.
	AllowedOrigins []string // SWITCHBOARD_ALLOWED_ORIGINS
	TLSCert        string   // SWITCHBOARD_TLS_CERT
	TLSKey         string   // SWITCHBOARD_TLS_KEY
	LogFormat      string   // SWITCHBOARD_LOG_FORMAT: text|json
	WSReads        string   // SWITCHBOARD_WS_READS: poll|goroutine (gateway.SetReadMode)
}

// pusherApps returns the Pusher apps: the apps file when set, else the
// single app of the SWITCHBOARD_APP_* variables.
func (c config) pusherApps() ([]pusher.App, error) {
	if c.AppsFile != "" {
		return pusher.LoadApps(c.AppsFile)
	}
	clientEvents := c.AppClientEvents
	var hooks []webhooks.Hook
	if c.AppWebhooks != "" {
		dec := json.NewDecoder(strings.NewReader(c.AppWebhooks))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&hooks); err != nil {
			return nil, fmt.Errorf("SWITCHBOARD_APP_WEBHOOKS: want a JSON list of {url, event_types, headers, filter}: %w", err)
		}
	}
	app := pusher.App{ID: c.AppID, Key: c.AppKey, Secret: c.AppSecret,
		EncryptionMasterKey: c.AppEncryptionMasterKey, ClientEvents: &clientEvents,
		SubscriptionCount: c.AppSubscriptionCount, Webhooks: hooks}
	if err := app.Validate(); err != nil {
		return nil, fmt.Errorf("SWITCHBOARD_APP_WEBHOOKS: %w", err)
	}
	return []pusher.App{app}, nil
}

// setting is one configuration value: its environment variable, the flag
// that overrides it (the variable's name in kebab case without
// SWITCHBOARD_: SWITCHBOARD_DB_TIMEOUT is --db-timeout), its default as
// written in the environment, what it means, and how it is read into
// config. One table serves loading, `--help` and `checkconfig`, so a new
// variable cannot be left out of the help.
type setting struct {
	env  string
	def  string // "" when the default is computed (see finish) or empty
	help string
	// store marks the settings every command that opens the database
	// reads (migrate, apitoken), beyond serve and checkconfig.
	store bool
	set   func(c *config, v string) error
}

func (s setting) flag() string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.env, "SWITCHBOARD_"), "_", "-"))
}

// Readers of a setting's text into a config field.
func text(f func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error { *f(c) = v; return nil }
}

func list(f func(*config) *[]string) func(*config, string) error {
	return func(c *config, v string) error {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				*f(c) = append(*f(c), o)
			}
		}
		return nil
	}
}

func boolean(f func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*f(c) = b
		return nil
	}
}

// positive reads an integer of at least 1.
func positive(f func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive integer, got %q", v)
		}
		*f(c) = n
		return nil
	}
}

// duration reads a Go duration ("500ms", "24h"); min is the smallest
// allowed (0: not negative; a positive min: strictly positive).
func duration(f func(*config) *time.Duration, positive bool) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return fmt.Errorf("want a duration such as 500ms or 2h, got %q", v)
		case positive && d <= 0:
			return fmt.Errorf("must be positive, got %s", d)
		case d < 0:
			return fmt.Errorf("must not be negative, got %s", d)
		}
		*f(c) = d
		return nil
	}
}

// settings is every variable, in the order --help lists them.
var settings = []setting{
	{env: "SWITCHBOARD_ADDR", help: "the one HTTP listener: REST, WebSocket and auth routes (default 127.0.0.1:8080 in embedded mode, :8080 with PostgreSQL)",
		set: text(func(c *config) *string { return &c.Addr })},
	{env: "SWITCHBOARD_DATA_DIR", def: "data", store: true, help: "where the embedded SQLite file lives",
		set: text(func(c *config) *string { return &c.DataDir })},
	{env: "DATABASE_URL", store: true, help: "postgres://... switches to PostgreSQL (production mode)",
		set: func(c *config, v string) error {
			if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
				return errors.New("must be a postgres:// or postgresql:// URL (leave it unset for the embedded SQLite store)")
			}
			c.DatabaseURL = v
			return nil
		}},
	{env: "SWITCHBOARD_DB_TIMEOUT", def: "5s", store: true, help: "the longest a request waits for the database; past it 503 database_unavailable",
		set: duration(func(c *config) *time.Duration { return &c.DBTimeout }, true)},
	{env: "SWITCHBOARD_JWT_SECRET", help: "HS256 secret of every token (at least 32 bytes with PostgreSQL; a public dev secret in embedded mode when unset)",
		set: text(func(c *config) *string { return &c.JWTSecret })},
	{env: "SWITCHBOARD_JWT_MAX_TTL", def: "720h", help: "longest lifetime (exp - now) any door accepts in a token",
		set: duration(func(c *config) *time.Duration { return &c.JWTMaxTTL }, true)},
	{env: "SWITCHBOARD_ALLOWED_ORIGINS", help: "browser origins allowed by CORS and on the WebSocket endpoints: http://app.example.com, http://localhost:*, or * (default http://localhost:*,http://127.0.0.1:* in embedded mode, same host only with PostgreSQL)",
		set: list(func(c *config) *[]string { return &c.AllowedOrigins })},
	{env: "SWITCHBOARD_TLS_CERT", help: "PEM certificate (chain) file: serve HTTPS/WSS on SWITCHBOARD_ADDR (with SWITCHBOARD_TLS_KEY)",
		set: text(func(c *config) *string { return &c.TLSCert })},
	{env: "SWITCHBOARD_TLS_KEY", help: "PEM private key file of SWITCHBOARD_TLS_CERT",
		set: text(func(c *config) *string { return &c.TLSKey })},
	{env: "SWITCHBOARD_LOG_LEVEL", def: "info", store: true, help: "debug, info, warn or error",
		set: func(c *config, v string) error {
			if _, err := parseLevel(v); err != nil {
				return errors.New("want debug, info, warn or error")
			}
			c.LogLevel = v
			return nil
		}},
	{env: "SWITCHBOARD_LOG_FORMAT", def: "text", store: true, help: "text or json (log/slog to stderr)",
		set: func(c *config, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("want text or json, got %q", v)
			}
			c.LogFormat = v
			return nil
		}},
	{env: "SWITCHBOARD_SHUTDOWN_TIMEOUT", def: "15s", help: "graceful shutdown budget on SIGINT/SIGTERM",
		set: duration(func(c *config) *time.Duration { return &c.ShutdownWait }, false)},
	// Outbox relay and fan-out.
	{env: "SWITCHBOARD_OUTBOX_RETENTION", def: "24h", help: "relayed outbox rows older than this are pruned",
		set: duration(func(c *config) *time.Duration { return &c.Retention }, false)},
	{env: "SWITCHBOARD_RELAY_POLL", def: "500ms", help: "relay safety-net poll (commits wake it at once)",
		set: duration(func(c *config) *time.Duration { return &c.PollInterval }, true)},
	{env: "SWITCHBOARD_RELAY_MODE", def: "auto", help: "auto, poll or logical: how the relay learns of commits on PostgreSQL",
		set: func(c *config, v string) error {
			if v != "auto" && v != "poll" && v != "logical" {
				return fmt.Errorf("want auto, poll or logical, got %q", v)
			}
			c.RelayMode = v
			return nil
		}},
	{env: "SWITCHBOARD_RESTART_GRACE", def: "2s", help: "events waiting in the outbox at start go out this long after it (0: at once)",
		set: duration(func(c *config) *time.Duration { return &c.RestartGrace }, false)},
	{env: "SWITCHBOARD_FANOUT_COALESCE", def: "100ms", help: "under sustained fan-out load, how long an event may wait to share a write with the next (0: never)",
		set: duration(func(c *config) *time.Duration { return &c.Coalesce }, false)},
	{env: "SWITCHBOARD_WS_READS", def: "poll", help: "poll or goroutine: how WebSocket connections are read (poll: epoll on Linux, no goroutine per idle connection; TLS connections always use a goroutine)",
		set: func(c *config, v string) error {
			if v != gateway.ReadPoll && v != gateway.ReadGoroutine {
				return fmt.Errorf("want poll or goroutine, got %q", v)
			}
			c.WSReads = v
			return nil
		}},
	{env: "SWITCHBOARD_NATS_URL", help: "nats://host:4222 (comma-separated for a NATS cluster): cluster mode, several nodes on one PostgreSQL database",
		set: text(func(c *config) *string { return &c.NATSURL })},
	// Pusher apps.
	{env: "SWITCHBOARD_APPS_FILE", help: "YAML/JSON list of Pusher apps; replaces the SWITCHBOARD_APP_* variables",
		set: text(func(c *config) *string { return &c.AppsFile })},
	{env: "SWITCHBOARD_APP_ID", def: "app-id", help: "the Pusher app's id",
		set: text(func(c *config) *string { return &c.AppID })},
	{env: "SWITCHBOARD_APP_KEY", def: "app-key", help: "the key Pusher clients connect with (/app/{key}); set your own with PostgreSQL",
		set: text(func(c *config) *string { return &c.AppKey })},
	{env: "SWITCHBOARD_APP_SECRET", def: "app-secret", help: "signs channel auth and Pusher HTTP API calls; set your own with PostgreSQL",
		set: text(func(c *config) *string { return &c.AppSecret })},
	{env: "SWITCHBOARD_APP_ENCRYPTION_MASTER_KEY", help: "base64 32-byte key enabling private-encrypted-* channels",
		set: text(func(c *config) *string { return &c.AppEncryptionMasterKey })},
	{env: "SWITCHBOARD_APP_CLIENT_EVENTS", def: "true", help: "allow client-* events",
		set: boolean(func(c *config) *bool { return &c.AppClientEvents })},
	{env: "SWITCHBOARD_APP_SUBSCRIPTION_COUNT", def: "false", help: "send pusher_internal:subscription_count",
		set: boolean(func(c *config) *bool { return &c.AppSubscriptionCount })},
	{env: "SWITCHBOARD_APP_WEBHOOKS", help: `the app's webhooks: JSON [{"url":..., "event_types":[...]}]`,
		set: text(func(c *config) *string { return &c.AppWebhooks })},
	// Webhooks.
	{env: "SWITCHBOARD_WEBHOOK_MAX_AGE", def: "24h", help: "how long a webhook delivery is retried before it is failed",
		set: duration(func(c *config) *time.Duration { return &c.WebhookMaxAge }, true)},
	{env: "SWITCHBOARD_WEBHOOK_LOG_RETENTION", def: "1440", help: "minutes the webhook event log is kept",
		set: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("want a positive number of minutes, got %q", v)
			}
			c.WebhookLogRetention = time.Duration(n) * time.Minute
			return nil
		}},
	{env: "SWITCHBOARD_WEBHOOK_LOG_TRIM", def: "true", help: "trim the webhook event log hourly",
		set: boolean(func(c *config) *bool { return &c.WebhookLogTrim })},
	{env: "SWITCHBOARD_WEBHOOK_QUEUE_TRIM", def: "true", help: "trim sent webhook deliveries after 1 h",
		set: boolean(func(c *config) *bool { return &c.WebhookQueueTrim })},
	{env: "SWITCHBOARD_WEBHOOK_ERRORS_TRIM", def: "true", help: "trim failed webhook deliveries after 7 days",
		set: boolean(func(c *config) *bool { return &c.WebhookErrorsTrim })},
	// Centrifugo.
	{env: "SWITCHBOARD_API_KEY", help: "key of the Centrifugo server API (/api/publish ...); empty disables it",
		set: text(func(c *config) *string { return &c.APIKey })},
	{env: "SWITCHBOARD_CENTRIFUGO_CONFIG", help: "Centrifugo namespaces file (.json, .yaml); empty: the seed's namespaces",
		set: text(func(c *config) *string { return &c.CentrifugoConfig })},
	{env: "SWITCHBOARD_REALTIME_TOKEN_TTL", def: "1h", help: "lifetime of /api/v1/realtime/token connection tokens",
		set: duration(func(c *config) *time.Duration { return &c.RealtimeTokenTTL }, true)},
	// ActionCable.
	{env: "SWITCHBOARD_CABLE_CHANNELS", help: "JSON file of extra ActionCable channel classes",
		set: text(func(c *config) *string { return &c.CableChannels })},
	{env: "SWITCHBOARD_CABLE_ALLOWED_ORIGINS", help: "origins whose pages may identify by cookie on /cable (default: same host only)",
		set: list(func(c *config) *[]string { return &c.CableAllowedOrigins })},
	{env: "SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS", def: "100", help: "subscriptions per ActionCable connection",
		set: positive(func(c *config) *int { return &c.CableMaxSubscriptions })},
	{env: "SWITCHBOARD_BROADCAST_KEY", help: "key of the ActionCable broadcast endpoint POST /_broadcast (Authorization: Bearer <key>, AnyCable's); empty: SWITCHBOARD_API_KEY; both empty disable it",
		set: text(func(c *config) *string { return &c.BroadcastKey })},
	// PubSub.
	{env: "SWITCHBOARD_PUBSUB_PUBLISH_RATE", def: "10", help: "PubSub in-room publishes per second per participant",
		set: positive(func(c *config) *int { return &c.PubSubPublishRate })},
	{env: "SWITCHBOARD_PUBSUB_MAX_PAYLOAD", def: "10240", help: "bytes of a PubSub event's data (in-room and HTTP)",
		set: positive(func(c *config) *int { return &c.PubSubMaxPayload })},
	{env: "SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL", help: "lifetime of minted PubSub room tokens (default 8h, or SWITCHBOARD_JWT_MAX_TTL when shorter)",
		set: duration(func(c *config) *time.Duration { return &c.PubSubRoomTokenTTL }, true)},
	// Operations.
	{env: "SWITCHBOARD_DEBUG_ADDR", help: "serve net/http/pprof on this separate listener (e.g. 127.0.0.1:6060); never public",
		set: text(func(c *config) *string { return &c.DebugAddr })},
	{env: "SWITCHBOARD_METRICS_ADDR", help: "serve Prometheus /metrics on this separate listener (e.g. 127.0.0.1:9090 or a private interface); default off",
		set: text(func(c *config) *string { return &c.MetricsAddr })},
	{env: "SWITCHBOARD_METRICS_TOKEN", help: "serve /metrics on SWITCHBOARD_ADDR too, to requests with Authorization: Bearer <this token> (at least 16 characters); default off",
		set: func(c *config, v string) error {
			if len(v) < 16 {
				return errors.New("must be at least 16 characters: it guards /metrics on the public listener")
			}
			c.MetricsToken = v
			return nil
		}},
	{env: "SWITCHBOARD_READY_MAX_LAG", def: "30s", help: "/readyz answers 503 while a relayed event waits longer than this to reach every connection",
		set: duration(func(c *config) *time.Duration { return &c.ReadyMaxLag }, true)},
}

// loadConfig reads every setting for cmd: the flag when given, else the
// environment, else the default. All problems are reported at once, each
// naming its variable. `--help` prints the settings and returns
// flag.ErrHelp.
func loadConfig(cmd string, args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	used := settingsOf(cmd)
	flags := map[string]*string{}
	for _, s := range used {
		flags[s.env] = fs.String(s.flag(), "", s.help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(out, cmd, used)
			return c, err
		}
		return c, fmt.Errorf("%w (see switchboard %s --help)", err, cmd)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see switchboard %s --help)", fs.Arg(0), cmd)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, s := range settings {
		v := s.def
		if e, ok := os.LookupEnv(s.env); ok && strings.TrimSpace(e) != "" {
			v = strings.TrimSpace(e)
		}
		if given[s.flag()] {
			v = *flags[s.env]
		}
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
		}
	}
	errs = append(errs, c.finish()...)
	return c, errors.Join(errs...)
}

// settingsOf are the settings cmd takes as flags (all of them for serve
// and checkconfig).
func settingsOf(cmd string) []setting {
	if cmd == "serve" || cmd == "checkconfig" {
		return settings
	}
	var out []setting
	for _, s := range settings {
		if s.store || (cmd == "token" && strings.HasPrefix(s.env, "SWITCHBOARD_JWT_")) {
			out = append(out, s)
		}
	}
	return out
}

// finish fills the computed defaults and checks what spans settings.
func (c *config) finish() []error {
	var errs []error
	if c.Addr == "" {
		// Embedded mode is for development: not reachable from other
		// machines unless SWITCHBOARD_ADDR says so.
		c.Addr = "127.0.0.1:8080"
		if c.DatabaseURL != "" {
			c.Addr = ":8080"
		}
	}
	if c.RelayMode == "" {
		c.RelayMode = "auto"
	}
	if c.JWTMaxTTL > 0 && c.RealtimeTokenTTL > c.JWTMaxTTL {
		// The token endpoint would mint connection tokens every door refuses.
		errs = append(errs, fmt.Errorf("SWITCHBOARD_REALTIME_TOKEN_TTL (%s) must not exceed SWITCHBOARD_JWT_MAX_TTL (%s)", c.RealtimeTokenTTL, c.JWTMaxTTL))
	}
	if c.PubSubRoomTokenTTL == 0 {
		c.PubSubRoomTokenTTL = min(8*time.Hour, c.JWTMaxTTL)
	} else if c.JWTMaxTTL > 0 && c.PubSubRoomTokenTTL > c.JWTMaxTTL {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL (%s) must not exceed SWITCHBOARD_JWT_MAX_TTL (%s)", c.PubSubRoomTokenTTL, c.JWTMaxTTL))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY go together: set both (HTTPS) or neither"))
	}
	if c.AllowedOrigins == nil && c.DatabaseURL == "" {
		c.AllowedOrigins = []string{"http://localhost:*", "http://127.0.0.1:*"}
	}
	if _, err := domain.ParseOrigins(c.AllowedOrigins); err != nil {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_ALLOWED_ORIGINS: %w", err))
	}
	return errs
}

// printHelp lists cmd's settings: flag, variable, default and meaning.
func printHelp(w io.Writer, cmd string, used []setting) {
	fmt.Fprintf(w, "usage: switchboard %s [flags]\n\n%s\n\nEvery flag can be set by its environment variable instead; a flag wins.\n\n", cmd, commandHelp[cmd])
	for _, s := range used {
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %q)", s.def)
		}
		fmt.Fprintf(w, "  --%s, %s%s\n        %s\n", s.flag(), s.env, def, s.help)
	}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("SWITCHBOARD_LOG_LEVEL: %w", err)
	}
	return l, nil
}

// broadcastKey is the key of the ActionCable broadcast endpoint: its own
// variable, else the server API key (one key for the backend's server
// calls unless the deployment wants two); empty disables the endpoint.
func (c config) broadcastKey() string {
	if c.BroadcastKey != "" {
		return c.BroadcastKey
	}
	return c.APIKey
}

// secret returns the JWT secret, falling back to the dev secret only in
// embedded mode and saying so loudly.
func (c config) secret(log *slog.Logger) (string, error) {
	if c.JWTSecret != "" {
		return c.JWTSecret, nil
	}
	if c.DatabaseURL != "" {
		return "", errors.New("SWITCHBOARD_JWT_SECRET is required with PostgreSQL")
	}
	if log != nil {
		log.Warn("!!! SWITCHBOARD_JWT_SECRET is not set: using the public development secret. Anyone can mint tokens. Set it before exposing this server. !!!")
	}
	return devSecret, nil
}
