// Command switchboard is the domain event gateway: REST modules that write
// rows and events in one transaction, a relay from the outbox, and WebSocket
// front doors for pusher-js / laravel-echo clients.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"switchboard/domain"
	"switchboard/pubsub"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: switchboard <command> [flags]

commands:
  serve     run the gateway (REST, WebSocket, relay); migrations run first
  migrate   apply database migrations and exit
  token     print a signed JWT: token --sub 42 --name "Jane Smith" --projects demo,expo [--admin] [--ttl 1h]
            a PubSub room token: token --sub p1 --name Ann --org acme --event ev1 --session s1
  apitoken  PubSub API tokens: apitoken --org acme [--name deploy] | --list [--org acme] | --revoke ID
  version   print the version
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return serve(ctx, args[1:], stderr)
	case "migrate":
		return migrateCmd(context.Background(), args[1:], stderr)
	case "token":
		return tokenCmd(args[1:], stdout, stderr)
	case "apitoken":
		return apiTokenCmd(context.Background(), args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(w io.Writer, level string) *slog.Logger {
	l, _ := parseLevel(level)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func migrateCmd(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig(args)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := domain.Migrate(ctx, db, migrations()...); err != nil {
		return err
	}
	log.Info("migrations applied", "store", db.Dialect)
	return nil
}

func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "subject: user / community member id (required)")
	name := fs.String("name", "", "display name")
	projects := fs.String("projects", "", "comma-separated project slugs the token may use (* for all)")
	admin := fs.Bool("admin", false, "grant admin")
	var room domain.PubSubRoom
	fs.StringVar(&room.Organization, "org", "", "PubSub room token: organization id (with --event and --session)")
	fs.StringVar(&room.Event, "event", "", "PubSub room token: event id")
	fs.StringVar(&room.Session, "session", "", "PubSub room token: session id")
	ttl := fs.Duration("ttl", defaultTokenTTL, "lifetime (exp - now); at most SWITCHBOARD_JWT_MAX_TTL, itself 720h by default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	ttlSet := false
	fs.Visit(func(f *flag.Flag) { ttlSet = ttlSet || f.Name == "ttl" })
	if *ttl, err = tokenTTL(*ttl, ttlSet, cfg.JWTMaxTTL); err != nil {
		return err
	}
	secret, err := cfg.secret(nil)
	if err != nil {
		return err
	}
	if cfg.JWTSecret == "" {
		fmt.Fprintln(stderr, "warning: SWITCHBOARD_JWT_SECRET is not set; signing with the public development secret")
	}
	signer, err := domain.NewSigner(secret, domain.WithMaxTTL(cfg.JWTMaxTTL))
	if err != nil {
		return err
	}
	if room != (domain.PubSubRoom{}) {
		if *admin || *projects != "" {
			return errors.New("token: a room token (--org/--event/--session) takes no --admin or --projects")
		}
		tok, _, err := pubsub.MintRoomToken(signer, room, *sub, *name, *ttl)
		if e, ok := domain.AsError(err); ok {
			flags := map[string]string{"organization_id": "--org", "event_id": "--event", "session_id": "--session",
				"participant.id": "--sub", "participant.name": "--name", "ttl": "--ttl"}
			return fmt.Errorf("token: %s: %s", flags[e.Field], strings.TrimPrefix(e.Message, e.Field+": "))
		} else if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	c := domain.Claims{Name: *name, Admin: *admin}
	c.Subject = *sub
	for _, p := range strings.Split(*projects, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.Projects = append(c.Projects, p)
		}
	}
	tok, err := signer.Mint(c, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// defaultTokenTTL is `switchboard token`'s lifetime when --ttl is not given.
const defaultTokenTTL = 24 * time.Hour

// tokenTTL checks the lifetime `switchboard token` mints with against the
// server's rule (domain.Signer): every door refuses a token without exp or
// one living longer than SWITCHBOARD_JWT_MAX_TTL, so printing such a token
// would only hand the operator something that fails later, far from the
// cause. An explicit --ttl above the max is an error naming the variable; the
// default shrinks to the max when the max is shorter, so a deployment with a
// small max can still run `switchboard token --sub 42`.
func tokenTTL(ttl time.Duration, explicit bool, maxTTL time.Duration) (time.Duration, error) {
	switch {
	case ttl <= 0:
		return 0, fmt.Errorf("token: --ttl must be positive (tokens without exp are refused), got %s", ttl)
	case ttl <= maxTTL:
		return ttl, nil
	case !explicit:
		return maxTTL, nil
	}
	return 0, fmt.Errorf("token: --ttl %s exceeds SWITCHBOARD_JWT_MAX_TTL (%s); servers refuse tokens that live longer", ttl, maxTTL)
}

// apiTokenCmd creates, lists or revokes PubSub API tokens directly in the
// database (for development and first setup; admins use the REST API).
func apiTokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apitoken", flag.ContinueOnError)
	fs.SetOutput(stderr)
	org := fs.String("org", "", "organization id of the new token (or the --list filter)")
	name := fs.String("name", "", "what the token is for")
	list := fs.Bool("list", false, "list tokens (never the tokens themselves)")
	revoke := fs.String("revoke", "", "revoke the token with this id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*list && *revoke == "" && *org == "" {
		return errors.New("apitoken: --org is required to create a token (or --list, --revoke ID)")
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := domain.Migrate(ctx, db, migrations()...); err != nil {
		return err
	}
	s := pubsub.NewStore(db)
	switch {
	case *revoke != "":
		if err := s.RevokeToken(ctx, *revoke); err != nil {
			return fmt.Errorf("apitoken: %w", err)
		}
		fmt.Fprintln(stdout, "revoked", *revoke)
	case *list:
		l, err := s.Tokens(ctx, *org)
		if err != nil {
			return err
		}
		for _, t := range l {
			state := "active"
			if t.RevokedAt != nil {
				state = "revoked"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", t.ID, t.OrganizationID, state, t.Name)
		}
	default:
		t, err := s.CreateToken(ctx, *org, *name)
		if err != nil {
			if e, ok := domain.AsError(err); ok {
				return fmt.Errorf("apitoken: %s", e.Message)
			}
			return err
		}
		fmt.Fprintf(stderr, "created API token %s for organization %s (shown once; keep it secret)\n", t.ID, t.OrganizationID)
		fmt.Fprintln(stdout, t.Token)
	}
	return nil
}
