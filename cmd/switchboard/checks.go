package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"

	"switchboard/domain"
	"switchboard/gateway/actioncable"
	"switchboard/gateway/centrifuge"
	"switchboard/gateway/pusher"
)

// minSecretBytes is the shortest JWT secret production mode accepts: HS256
// with fewer random bytes than its output is guessable offline from one
// token.
const minSecretBytes = 32

// knownSecrets are secrets that appear in docs, examples and tests: public,
// whatever their length.
var knownSecrets = []string{devSecret, "secret", "changeme", "change-me", "conformance-secret", "e2e-secret", "test-secret"}

// productionProblems lists what production mode (PostgreSQL) refuses: the
// public defaults a newcomer's embedded server runs with. Each names the
// variable to set.
func (c config) productionProblems(apps []pusher.App) []error {
	if c.DatabaseURL == "" {
		return nil
	}
	var errs []error
	switch s := c.JWTSecret; {
	case s == "":
		errs = append(errs, errors.New("SWITCHBOARD_JWT_SECRET is required with PostgreSQL: set it to at least 32 random bytes (e.g. openssl rand -base64 48)"))
	case containsFold(knownSecrets, s):
		errs = append(errs, errors.New("SWITCHBOARD_JWT_SECRET is a publicly known development secret: set it to at least 32 random bytes (e.g. openssl rand -base64 48)"))
	case len(s) < minSecretBytes:
		errs = append(errs, fmt.Errorf("SWITCHBOARD_JWT_SECRET is %d bytes: production mode needs at least %d (e.g. openssl rand -base64 48)", len(s), minSecretBytes))
	}
	for _, a := range apps {
		where := "SWITCHBOARD_APP_KEY"
		if c.AppsFile != "" {
			where = "app " + a.ID + " in " + c.AppsFile + " (key)"
		}
		if a.Key == "app-key" {
			errs = append(errs, fmt.Errorf("%s is the public default app-key: set your own", where))
		}
		where = "SWITCHBOARD_APP_SECRET"
		if c.AppsFile != "" {
			where = "app " + a.ID + " in " + c.AppsFile + " (secret)"
		}
		switch {
		case a.Secret == "app-secret" || containsFold(knownSecrets, a.Secret):
			errs = append(errs, fmt.Errorf("%s is a public default: anyone could sign Pusher API calls and channel auth; set your own (e.g. openssl rand -hex 32)", where))
		case len(a.Secret) < 16:
			errs = append(errs, fmt.Errorf("%s is %d bytes: production mode needs at least 16 (e.g. openssl rand -hex 32)", where, len(a.Secret)))
		}
	}
	return errs
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// openStore opens the configured database; a failure says what to check.
// localWake is for serve, which relays its own writes (domain.OpenConfig).
func openStore(ctx context.Context, cfg config, localWake bool) (*domain.DB, error) {
	db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, LocalWake: localWake, Timeout: cfg.DBTimeout})
	if err == nil {
		return db, nil
	}
	if cfg.DatabaseURL == "" {
		return nil, fmt.Errorf("open the embedded store in %s: check that SWITCHBOARD_DATA_DIR is a writable directory: %w", cfg.DataDir, err)
	}
	var pe *pq.Error
	var dnsErr *net.DNSError
	hint := "check DATABASE_URL and that PostgreSQL is reachable"
	switch {
	case errors.As(err, &pe) && pe.Code == "3D000":
		hint = "the database does not exist: create it (createdb, or CREATE DATABASE) or fix the name in DATABASE_URL"
	case errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000"):
		hint = "PostgreSQL refused the login: check the user and password in DATABASE_URL (and pg_hba.conf)"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "nothing listens at the host and port of DATABASE_URL: is PostgreSQL running?"
	case errors.As(err, &dnsErr):
		hint = "the host of DATABASE_URL does not resolve"
	}
	return nil, fmt.Errorf("open PostgreSQL: %s: %w", hint, err)
}

// checkConfigCmd reads the whole configuration as serve would and reports
// every problem, without opening the database or listening.
func checkConfigCmd(args []string, stdout io.Writer) error {
	cfg, err := loadConfig("checkconfig", args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	apps, err := cfg.pusherApps()
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.productionProblems(apps)...)
	if cfg.CentrifugoConfig != "" {
		if _, err := centrifuge.LoadChannels(cfg.CentrifugoConfig); err != nil {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_CENTRIFUGO_CONFIG: %w", err))
		}
	}
	if _, err := actioncable.LoadRegistry(cfg.CableChannels); err != nil {
		errs = append(errs, fmt.Errorf("SWITCHBOARD_CABLE_CHANNELS: %w", err))
	}
	if cfg.TLSCert != "" && cfg.TLSKey != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("SWITCHBOARD_TLS_CERT / SWITCHBOARD_TLS_KEY: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration has %d problem(s):\n%w", len(errs), err)
	}
	store := "embedded SQLite in " + cfg.DataDir
	if cfg.DatabaseURL != "" {
		store = "PostgreSQL (production mode)"
	}
	fmt.Fprintf(stdout, "configuration OK: %s, listening on %s, %d Pusher app(s), relay mode %s\n", store, cfg.Addr, len(apps), cfg.RelayMode)
	return nil
}
