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
  serve        run the gateway (REST, WebSocket, relay); migrations run first
  migrate      apply database migrations and exit
  checkconfig  check the whole configuration (variables, apps file, Centrifugo namespaces,
               ActionCable channels, TLS files, production secrets) and exit non-zero with the reasons
  token        print a signed JWT: token --sub 42 --name "Jane Smith" --projects demo,expo [--admin] [--ttl 1h]
               a PubSub room token: token --sub p1 --name Ann --org acme --event ev1 --session s1
  apitoken     PubSub API tokens: apitoken --org acme [--name deploy] | --list [--org acme] | --revoke ID
  version      print the version (also --version)
  help         this text; help <command> (or <command> --help) lists its flags and environment variables

Quick start: switchboard serve (embedded SQLite in ./data, http://127.0.0.1:8080); README.md has the rest.
`

// commandHelp is the line under each command's usage in its --help.
var commandHelp = map[string]string{
	"serve":       "Runs the gateway: REST API, the Pusher, Centrifugo and ActionCable WebSocket endpoints, and the outbox relay.\nMigrations run first.",
	"migrate":     "Applies the database migrations and exits.",
	"checkconfig": "Reads the configuration as serve would (variables, apps file, Centrifugo namespaces, ActionCable channels,\nTLS files, production secrets) and exits 1 with every problem found, or 0 saying what would run.",
	"token":       "Prints a JWT signed with SWITCHBOARD_JWT_SECRET: a member/admin bearer, or with --org/--event/--session a PubSub room token.",
	"apitoken":    "Creates (--org), lists (--list) or revokes (--revoke) PubSub API tokens in the configured database.",
}

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
	var err error
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		err = serve(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrateCmd(context.Background(), args[1:], stdout, stderr)
	case "checkconfig":
		err = checkConfigCmd(args[1:], stdout)
	case "token":
		err = tokenCmd(args[1:], stdout, stderr)
	case "apitoken":
		err = apiTokenCmd(context.Background(), args[1:], stdout, stderr)
	case "version", "--version", "-version", "-v":
		fmt.Fprintln(stdout, version)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && args[1] != "help" && !strings.HasPrefix(args[1], "-") {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil // the command printed its help
	}
	return err
}

// parseCommand parses the own flags of token and apitoken; --help prints
// them and the environment variables the command reads.
func parseCommand(fs *flag.FlagSet, args []string, out io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(out, "usage: switchboard %s [flags]\n\n%s\n\nflags:\n", fs.Name(), commandHelp[fs.Name()])
		fs.SetOutput(out)
		fs.PrintDefaults()
		fmt.Fprintln(out, "\nenvironment:")
		for _, s := range settingsOf(fs.Name()) {
			def := ""
			if s.def != "" {
				def = fmt.Sprintf(" (default %q)", s.def)
			}
			fmt.Fprintf(out, "  %s%s\n        %s\n", s.env, def, s.help)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %w (see switchboard %s --help)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (see switchboard %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// newLogger logs to w at level, as text or JSON (SWITCHBOARD_LOG_FORMAT).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	l, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("migrate", args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("migrations applied", "store", db.Dialect)
	return nil
}

// openMigrated opens the configured store for a one-off command and brings
// its schema up to date.
func openMigrated(ctx context.Context, cfg config) (*domain.DB, error) {
	db, err := openStore(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	if err := domain.Migrate(ctx, db, migrations()...); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "subject: user / community member id (required)")
	name := fs.String("name", "", "display name")
	projects := fs.String("projects", "", "comma-separated project slugs the token may use (* for all)")
	admin := fs.Bool("admin", false, "grant admin")
	var room domain.PubSubRoom
	fs.StringVar(&room.Organization, "org", "", "PubSub room token: organization id (with --event and --session)")
	fs.StringVar(&room.Event, "event", "", "PubSub room token: event id")
	fs.StringVar(&room.Session, "session", "", "PubSub room token: session id")
	ttl := fs.Duration("ttl", defaultTokenTTL, "lifetime (exp - now); at most SWITCHBOARD_JWT_MAX_TTL, itself 720h by default")
	if err := parseCommand(fs, args, stdout); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required (see switchboard token --help)")
	}
	cfg, err := loadConfig("token", nil, stdout)
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
	org := fs.String("org", "", "organization id of the new token (or the --list filter)")
	name := fs.String("name", "", "what the token is for")
	list := fs.Bool("list", false, "list tokens (never the tokens themselves)")
	revoke := fs.String("revoke", "", "revoke the token with this id")
	if err := parseCommand(fs, args, stdout); err != nil {
		return err
	}
	if !*list && *revoke == "" && *org == "" {
		return errors.New("apitoken: --org is required to create a token (or --list, --revoke ID)")
	}
	cfg, err := loadConfig("apitoken", nil, stdout)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
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
