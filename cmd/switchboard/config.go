package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
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
	AppID        string        // SWITCHBOARD_APP_ID, default "app-id"
	AppKey       string        // SWITCHBOARD_APP_KEY, default "app-key"
	AppSecret    string        // SWITCHBOARD_APP_SECRET, default "app-secret"
	LogLevel     string        // SWITCHBOARD_LOG_LEVEL: debug|info|warn|error, default info
	Retention    time.Duration // SWITCHBOARD_OUTBOX_RETENTION, default 24h
	PollInterval time.Duration // SWITCHBOARD_RELAY_POLL, default 500ms (safety net behind wake-ups)
	ShutdownWait time.Duration // SWITCHBOARD_SHUTDOWN_TIMEOUT, default 15s

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
		DebugAddr:   env("SWITCHBOARD_DEBUG_ADDR", ""),
	}
	var err error
	if c.Retention, err = envDuration("SWITCHBOARD_OUTBOX_RETENTION", 24*time.Hour); err != nil {
		errs = append(errs, err)
	}
	if c.PollInterval, err = envDuration("SWITCHBOARD_RELAY_POLL", 500*time.Millisecond); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownWait, err = envDuration("SWITCHBOARD_SHUTDOWN_TIMEOUT", 15*time.Second); err != nil {
		errs = append(errs, err)
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
