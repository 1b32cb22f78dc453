package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"switchboard/gateway/pusher"
	"switchboard/gateway/webhooks"
)

// devSecret signs tokens in embedded mode when no secret is configured, so a
// newcomer's `make run` works. It is public: never use it in production.
const devSecret = "switchboard-dev-secret-do-not-use-in-production"

// config is everything `serve` reads from the environment (and flags, which
// win). Each field documents its variable and default.
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
	// Scoped PubSub (pubsub/, docs/pubsub.md).
	PubSubPublishRate  int           // SWITCHBOARD_PUBSUB_PUBLISH_RATE: in-room publishes per second per participant, default 10
	PubSubMaxPayload   int           // SWITCHBOARD_PUBSUB_MAX_PAYLOAD: bytes of an event's data (in-room and HTTP), default 10240
	PubSubRoomTokenTTL time.Duration // SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL: lifetime of minted room tokens, default 8h
	// Benchmarks and profiling (cmd/switchboard-bench).
	// DebugAddr (SWITCHBOARD_DEBUG_ADDR, default off) serves net/http/pprof
	// on its own listener, e.g. 127.0.0.1:6060. Never expose it publicly.
	DebugAddr string
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := env(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

func envBool(name string, def bool) (bool, error) {
	v := env(name, "")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
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

// loadConfig reads the environment, then flags from args.
func loadConfig(args []string) (config, error) {
	var errs []error
	c := config{
		Addr:        env("SWITCHBOARD_ADDR", ":8080"),
		DataDir:     env("SWITCHBOARD_DATA_DIR", "data"),
		DatabaseURL: env("DATABASE_URL", ""),
		JWTSecret:   env("SWITCHBOARD_JWT_SECRET", ""),
		AppID:       env("SWITCHBOARD_APP_ID", "app-id"),
		AppKey:      env("SWITCHBOARD_APP_KEY", "app-key"),
		AppSecret:   env("SWITCHBOARD_APP_SECRET", "app-secret"),
		LogLevel:    env("SWITCHBOARD_LOG_LEVEL", "info"),

		APIKey:           env("SWITCHBOARD_API_KEY", ""),
		CentrifugoConfig: env("SWITCHBOARD_CENTRIFUGO_CONFIG", ""),
		DebugAddr:        env("SWITCHBOARD_DEBUG_ADDR", ""),
	}
	c.AppsFile = env("SWITCHBOARD_APPS_FILE", "")
	c.AppEncryptionMasterKey = env("SWITCHBOARD_APP_ENCRYPTION_MASTER_KEY", "")
	c.AppWebhooks = env("SWITCHBOARD_APP_WEBHOOKS", "")
	var err error
	if c.AppClientEvents, err = envBool("SWITCHBOARD_APP_CLIENT_EVENTS", true); err != nil {
		errs = append(errs, err)
	}
	if c.AppSubscriptionCount, err = envBool("SWITCHBOARD_APP_SUBSCRIPTION_COUNT", false); err != nil {
		errs = append(errs, err)
	}
	if c.Retention, err = envDuration("SWITCHBOARD_OUTBOX_RETENTION", 24*time.Hour); err != nil {
		errs = append(errs, err)
	}
	if c.PollInterval, err = envDuration("SWITCHBOARD_RELAY_POLL", 500*time.Millisecond); err != nil {
		errs = append(errs, err)
	}
	c.NATSURL = strings.TrimSpace(os.Getenv("SWITCHBOARD_NATS_URL"))
	if c.WebhookMaxAge, err = envDuration("SWITCHBOARD_WEBHOOK_MAX_AGE", 24*time.Hour); err != nil {
		errs = append(errs, err)
	} else if c.WebhookMaxAge <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_WEBHOOK_MAX_AGE must be positive"))
	}
	if c.WebhookLogTrim, err = envBool("SWITCHBOARD_WEBHOOK_LOG_TRIM", true); err != nil {
		errs = append(errs, err)
	}
	if c.WebhookQueueTrim, err = envBool("SWITCHBOARD_WEBHOOK_QUEUE_TRIM", true); err != nil {
		errs = append(errs, err)
	}
	if c.WebhookErrorsTrim, err = envBool("SWITCHBOARD_WEBHOOK_ERRORS_TRIM", true); err != nil {
		errs = append(errs, err)
	}
	if v := os.Getenv("SWITCHBOARD_WEBHOOK_LOG_RETENTION"); v == "" {
		c.WebhookLogRetention = 1440 * time.Minute
	} else if n, perr := strconv.Atoi(v); perr != nil || n <= 0 {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_WEBHOOK_LOG_RETENTION %q: want a positive number of minutes", v))
	} else {
		c.WebhookLogRetention = time.Duration(n) * time.Minute
	}
	c.RelayMode = os.Getenv("SWITCHBOARD_RELAY_MODE")
	switch c.RelayMode {
	case "", "auto", "poll", "logical":
	default:
		errs = append(errs, fmt.Errorf("SWITCHBOARD_RELAY_MODE %q: want auto, poll or logical", c.RelayMode))
	}
	if c.ShutdownWait, err = envDuration("SWITCHBOARD_SHUTDOWN_TIMEOUT", 15*time.Second); err != nil {
		errs = append(errs, err)
	}
	if c.DBTimeout, err = envDuration("SWITCHBOARD_DB_TIMEOUT", 5*time.Second); err != nil {
		errs = append(errs, err)
	} else if c.DBTimeout <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_DB_TIMEOUT must be positive"))
	}
	if c.RestartGrace, err = envDuration("SWITCHBOARD_RESTART_GRACE", 2*time.Second); err != nil {
		errs = append(errs, err)
	} else if c.RestartGrace < 0 {
		errs = append(errs, errors.New("SWITCHBOARD_RESTART_GRACE must not be negative"))
	}
	if c.Coalesce, err = envDuration("SWITCHBOARD_FANOUT_COALESCE", 100*time.Millisecond); err != nil {
		errs = append(errs, err)
	} else if c.Coalesce < 0 {
		errs = append(errs, errors.New("SWITCHBOARD_FANOUT_COALESCE must not be negative"))
	}
	if c.RealtimeTokenTTL, err = envDuration("SWITCHBOARD_REALTIME_TOKEN_TTL", time.Hour); err != nil {
		errs = append(errs, err)
	} else if c.RealtimeTokenTTL <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_REALTIME_TOKEN_TTL must be positive"))
	}
	if c.JWTMaxTTL, err = envDuration("SWITCHBOARD_JWT_MAX_TTL", 30*24*time.Hour); err != nil {
		errs = append(errs, err)
	} else if c.JWTMaxTTL <= 0 {
		errs = append(errs, errors.New("SWITCHBOARD_JWT_MAX_TTL must be positive"))
	} else if c.RealtimeTokenTTL > c.JWTMaxTTL {
		// The token endpoint would mint connection tokens every door refuses.
		errs = append(errs, fmt.Errorf("SWITCHBOARD_REALTIME_TOKEN_TTL (%s) must not exceed SWITCHBOARD_JWT_MAX_TTL (%s)", c.RealtimeTokenTTL, c.JWTMaxTTL))
	}
	// ActionCable front door.
	c.CableChannels = env("SWITCHBOARD_CABLE_CHANNELS", "")
	for _, o := range strings.Split(env("SWITCHBOARD_CABLE_ALLOWED_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CableAllowedOrigins = append(c.CableAllowedOrigins, o)
		}
	}
	if v := env("SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_CABLE_MAX_SUBSCRIPTIONS: want a positive integer, got %q", v))
		}
		c.CableMaxSubscriptions = n
	}
	// Scoped PubSub.
	for _, v := range []struct {
		name string
		dst  *int
		def  int
	}{
		{"SWITCHBOARD_PUBSUB_PUBLISH_RATE", &c.PubSubPublishRate, 10},
		{"SWITCHBOARD_PUBSUB_MAX_PAYLOAD", &c.PubSubMaxPayload, 10 * 1024},
	} {
		*v.dst = v.def
		if s := env(v.name, ""); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s: want a positive integer, got %q", v.name, s))
			}
			*v.dst = n
		}
	}
	// 8 h, or the longest token lifetime when that is shorter.
	if c.PubSubRoomTokenTTL, err = envDuration("SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL", min(8*time.Hour, c.JWTMaxTTL)); err != nil {
		errs = append(errs, err)
	} else if c.PubSubRoomTokenTTL <= 0 || c.PubSubRoomTokenTTL > c.JWTMaxTTL {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL: want a duration in (0, SWITCHBOARD_JWT_MAX_TTL], got %s", c.PubSubRoomTokenTTL))
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "SQLite data directory (SWITCHBOARD_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug|info|warn|error (SWITCHBOARD_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		errs = append(errs, err)
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("DATABASE_URL must be a postgres:// URL"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("SWITCHBOARD_LOG_LEVEL: %w", err)
	}
	return l, nil
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
