// Command switchboard-bench measures Switchboard side by side with a
// reference server built on github.com/centrifugal/centrifuge:
//
//	switchboard-bench run  [flags]   run the scenarios, print the table, write BENCHMARKS.md
//	switchboard-bench peer [flags]   run the reference peer (started by `run` itself)
//	switchboard-bench busy [flags]   burn about -cores CPU (the neighbour scenario's busy process; hidden)
//
// See docs/bench.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"switchboard/bench/load"
	"switchboard/bench/peer"
)

type opts struct {
	bin          string
	pgURL        string
	out          string
	only         map[string]bool
	command      string
	duration     time.Duration
	drain        time.Duration
	reps         int
	sizes        []size
	satSubs      int
	satRates     []float64
	satStep      time.Duration
	c2sSubs      int
	c2sRates     []float64
	c2sFor       time.Duration
	blockFor     time.Duration
	clusterSubs  int
	clusterRate  float64
	redis        string
	writers      int
	outboxFor    time.Duration
	idleConns    []int
	nbCores      float64
	nbSize       size
	fdLimit      uint64 // RLIMIT_NOFILE after raising the soft limit to the hard one
	idleSettle   time.Duration
	churnRate    float64
	churnFor     time.Duration
	churnHold    time.Duration
	churnStayers int
	churnPubRate float64
	churnSettle  time.Duration
	sourceIPs    int
	dialParallel int
	profileDir   string
	idleGC       bool
	satWho       map[string]bool
	contenders   string
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: switchboard-bench run|peer [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "peer":
		err = runPeer(ctx, os.Args[2:], log)
	case "run":
		err = runBench(ctx, os.Args[2:], log)
	case "busy":
		err = runBusy(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard-bench:", err)
		os.Exit(1)
	}
}

func runPeer(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8000", "listen address")
	secret := fs.String("secret", benchSecret, "HS256 secret of connection tokens")
	redis := fs.String("redis", "", "Redis host:port: run as one node of a cluster on the Redis broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return peer.Run(ctx, peer.Config{Addr: *addr, Secret: *secret, Redis: *redis}, log)
}

func parseSizes(s string) ([]size, error) {
	var out []size
	for _, p := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(p), "x")
		n, err1 := strconv.Atoi(a)
		r, err2 := strconv.ParseFloat(b, 64)
		if !ok || err1 != nil || err2 != nil || n <= 0 || r <= 0 {
			return nil, fmt.Errorf("size %q: want SUBSxRATE, e.g. 5000x20", p)
		}
		out = append(out, size{n, r})
	}
	return out, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("count %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit (children
// inherit it) and returns the resulting soft limit.
func raiseFDLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, err
		}
		l = want
	}
	return l.Cur, nil
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("rate %q", p)
		}
		out = append(out, r)
	}
	return out, nil
}

func runBench(ctx context.Context, args []string, log *slog.Logger) error {
	var o opts
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.bin, "switchboard", "bin/switchboard", "switchboard binary to benchmark")
	fs.StringVar(&o.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL base URL (a fresh schema per server)")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", "report file (the generated section is replaced; empty = don't write)")
	only := fs.String("only", "fanout,neighbour,c2s,blocked,cluster,idle,outbox,churn", "scenarios to run")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "fanout: publishing time per size")
	fs.DurationVar(&o.drain, "drain", 2*time.Second, "wait after the last publish before reading results")
	fs.IntVar(&o.reps, "reps", 1, "fanout: repetitions per size (median reported), servers alternated")
	sizes := fs.String("sizes", "1000x20,5000x20,10000x5,10000x20", "fanout: SUBSxEVENTS_PER_S list, ascending subscribers")
	fs.IntVar(&o.satSubs, "sat-subs", 5000, "saturation: subscribers (must be one of -sizes)")
	satRates := fs.String("sat-rates", "16,25,40,60,80,100,120,160,200,240,300,360,420,500,600,800", "saturation: event rates tried in order (stops at the first failing one)")
	fs.DurationVar(&o.satStep, "sat-step", 6*time.Second, "saturation: time per step (0 = skip)")
	satWho := fs.String("sat-contenders", "switchboard/pusher,peer/centrifugo", "saturation: contenders searched (the ratio target compares these two)")
	fs.IntVar(&o.c2sSubs, "c2s-subs", 100, "commit-to-screen: subscribed clients")
	c2sRates := fs.String("c2s-rates", "1,200", "commit-to-screen: writes/s")
	fs.DurationVar(&o.c2sFor, "c2s-for", 10*time.Second, "commit-to-screen: time per rate")
	fs.DurationVar(&o.blockFor, "block-for", 5*time.Second, "blocked: how long each unrelated transaction stays open")
	fs.IntVar(&o.clusterSubs, "cluster-subs", 3000, "cluster: subscribers, spread over 3 nodes")
	fs.Float64Var(&o.clusterRate, "cluster-rate", 20, "cluster: events/s written through one node")
	fs.StringVar(&o.redis, "redis", "127.0.0.1:6379", "cluster: Redis of the peer's cluster (empty = skip the peer)")
	fs.IntVar(&o.writers, "writers", 32, "outbox: concurrent REST writers")
	fs.DurationVar(&o.outboxFor, "outbox-for", 15*time.Second, "outbox: duration")
	idle := fs.String("idle", "10000,19000,50000", "idle: connection counts, one run each (2 channels per connection); a count the fd limit cannot hold is reported as skipped")
	fs.Float64Var(&o.nbCores, "neighbour-cores", 0.4, "neighbour: CPU the busy neighbour process burns, in cores")
	nbSize := fs.String("neighbour-size", "5000x20", "neighbour: SUBSxEVENTS_PER_S measured next to the busy process")
	fs.DurationVar(&o.idleSettle, "idle-settle", 5*time.Second, "idle: wait after connecting before reading RSS")
	fs.StringVar(&o.contenders, "contenders", "", "fanout: only contenders whose name contains this (empty = all)")
	fs.BoolVar(&o.idleGC, "idle-gc", true, "idle: have both servers run one GC before reading RSS (steady state)")
	fs.Float64Var(&o.churnRate, "churn-rate", 200, "churn: connects+disconnects per second")
	fs.DurationVar(&o.churnFor, "churn-for", 60*time.Second, "churn: duration")
	fs.DurationVar(&o.churnHold, "churn-hold", time.Second, "churn: how long each churning client stays")
	fs.IntVar(&o.churnStayers, "churn-stayers", 1000, "churn: connections that stay and must lose nothing")
	fs.Float64Var(&o.churnPubRate, "churn-pub-rate", 10, "churn: events/s published meanwhile")
	fs.DurationVar(&o.churnSettle, "churn-settle", 5*time.Second, "churn: wait before checking goroutines and RSS")
	fs.IntVar(&o.sourceIPs, "source-ips", 8, "dial from 127.0.0.2..(1+N) to avoid ephemeral port exhaustion (0 = one)")
	fs.IntVar(&o.dialParallel, "dial-parallel", 32, "connections opened in parallel")
	clientRead := fs.String("client-read", "epoll", "how the tool's clients read their sockets: epoll (a few poller goroutines) or goroutine (a blocked reader per client)")
	fs.StringVar(&o.profileDir, "profile", "", "directory for server CPU profiles taken during each fan-out measurement, and for the logs of servers whose measurement had publish errors (empty = no profiles; logs in a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := load.SetReadMode(*clientRead); err != nil {
		return fmt.Errorf("-client-read: %w", err)
	}
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		return err
	}
	if o.satRates, err = parseRates(*satRates); err != nil {
		return err
	}
	if o.c2sRates, err = parseRates(*c2sRates); err != nil {
		return err
	}
	if o.idleConns, err = parseCounts(*idle); err != nil {
		return fmt.Errorf("-idle: %w", err)
	}
	nb, err := parseSizes(*nbSize)
	if err != nil || len(nb) != 1 {
		return fmt.Errorf("-neighbour-size %q: want one SUBSxRATE", *nbSize)
	}
	o.nbSize = nb[0]
	if o.nbCores <= 0 {
		return fmt.Errorf("-neighbour-cores must be > 0")
	}
	o.satWho = map[string]bool{}
	for _, s := range strings.Split(*satWho, ",") {
		o.satWho[strings.TrimSpace(s)] = true
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		o.only[strings.TrimSpace(s)] = true
	}
	if o.reps < 1 {
		o.reps = 1
	}
	o.command = "switchboard-bench run " + strings.Join(args, " ")
	if c := os.Getenv("BENCH_COMMAND"); c != "" {
		o.command = c
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("switchboard binary: %w (run `make build` first)", err)
	}

	// Servers and this tool each hold one descriptor per connection: use
	// all the hard limit allows (the idle scenario reports the counts it
	// cannot hold).
	if o.fdLimit, err = raiseFDLimit(); err != nil {
		log.Warn("raise fd limit", "err", err, "limit", o.fdLimit)
	}
	// Servers' stderr is copied into a file; a measurement with publish
	// errors keeps its server's (see measure).
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		logDir = o.profileDir
	} else if d, err := os.MkdirTemp("", "switchboard-bench-logs-"); err == nil {
		logDir = d
		defer os.Remove(d) // only when no log was kept
	}

	r := &runner{o: o, log: log}
	started := time.Now()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{{"fanout", r.fanout}, {"neighbour", r.neighbour}, {"c2s", r.commitToScreen}, {"blocked", r.blocked}, {"cluster", r.cluster}, {"idle", r.idle}, {"outbox", r.outbox}, {"churn", r.churn}}
	var errs []error
	for _, s := range steps {
		if !o.only[s.name] || ctx.Err() != nil {
			continue
		}
		log.Info("scenario", "name", s.name)
		if err := s.fn(ctx); err != nil {
			log.Error("scenario failed", "name", s.name, "err", err)
			r.notes = append(r.notes, fmt.Sprintf("scenario %s failed: %v", s.name, err))
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	section := r.render(started)
	fmt.Println(section)
	if o.out != "" {
		if err := writeReport(o.out, section); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
