package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/bench/load"
)

// size is one fan-out load: subscribers × events/s.
type size struct {
	subs int
	rate float64
}

func (z size) String() string { return fmt.Sprintf("%d×%g/s", z.subs, z.rate) }

// runner holds the flags and collects the rows of one `run`.
type runner struct {
	o    opts
	log  *slog.Logger
	rows []row
	// notes are extra lines printed under the table (ratios, targets).
	notes     []string
	outboxRow *row
	idleRows  []row
	satRows   []row
	mu        sync.Mutex

	noCentrifugoNoted bool
}

func (r *runner) add(x row) {
	r.mu.Lock()
	r.rows = append(r.rows, x)
	r.mu.Unlock()
	r.log.Info("result", "row", x.line())
	if x.res.Events > 0 {
		// Where a last-subscriber latency went: the publish call (stamp
		// to commit acknowledged) and after it (acknowledged to the last
		// receipt). Log only; the report keeps its columns.
		p, a := x.res.Publish, x.res.AckLag
		r.log.Info("latency split", "scenario", x.scenario, "server", x.server,
			"publish_p50_ms", ms(p.P50), "publish_p99_ms", ms(p.P99), "publish_max_ms", ms(p.Max),
			"after_ack_p50_ms", ms(a.P50), "after_ack_p99_ms", ms(a.P99), "after_ack_max_ms", ms(a.Max))
	}
}

// contender is one server + protocol pair of the fan-out comparison.
type contender struct {
	name  string // e.g. "switchboard/pusher"
	kind  string // switchboard | peer
	proto load.Protocol
}

func (r *runner) start(ctx context.Context, kind, store string) (*server, error) {
	if kind == "peer" {
		return startPeer(ctx)
	}
	return startSwitchboard(ctx, startOpts{bin: r.o.bin, store: store, pgURL: r.o.pgURL, logLevel: "warn"})
}

// measure publishes on pool's server for d at rate and returns the row;
// want is the number of subscribers the scenario asked for (a row with
// fewer connected is flagged and fails its targets).
func (r *runner) measure(ctx context.Context, srv *server, pool *load.Pool, scenario, name string, want int, rate float64, d time.Duration) row {
	subs := pool.Alive()
	rec := load.NewRecorder(int(rate*d.Seconds()*1.2) + 16)
	pool.Rec.Store(rec)
	pub := srv.publisher()
	m := load.StartMeter(srv.pid())
	mark := srv.logMark()
	prof := r.profile(srv, scenario+" "+name, d)
	t0 := time.Now()
	attempted := pub.Open(ctx, rec, rate, d, 1024)
	prof()
	// Let the tail of the fan-out arrive before reading the results.
	time.Sleep(r.o.drain)
	u := m.Stop()
	pool.Rec.Store(nil)
	res := rec.Result(subs)
	x := row{scenario: scenario, server: name, subs: subs, rate: rate, attempted: attempted, res: res, use: u,
		pubErrs: pub.Errors.Load(), skipped: pub.Skipped.Load(), alive: pool.Alive(), want: want}
	r.publishErrors(&x, pub, srv, mark, t0)
	if x.pubErrs > 0 || res.Publish.Max >= time.Second {
		// Slow publish calls come before publish errors (the server gives a
		// request's database work about 4 s by default).
		x.note = append(x.note, fmt.Sprintf("publish call p99 %s max %s ms", ms(res.Publish.P99), ms(res.Publish.Max)))
	}
	if x.alive < subs {
		x.note = append(x.note, fmt.Sprintf("%d clients dropped (%v)", subs-x.alive, pool.FirstErr()))
	}
	return x
}

// publishErrors notes the first publish error (its full text, when it
// happened and the errors by kind) and, for a server, keeps its log and
// quotes the first line it logged during the measurement.
func (r *runner) publishErrors(x *row, pub *load.Publisher, srv *server, mark int64, t0 time.Time) {
	err := pub.FirstErr()
	if err == nil {
		return
	}
	x.note = append(x.note, fmt.Sprintf("publish error: %s (first at +%.1fs; %s)",
		trim(err.Error(), 240), pub.FirstErrAt().Sub(t0).Seconds(), pub.ErrorKinds()))
	if path, first := srv.logSince(mark); path != "" {
		l := "server log " + path
		if first != "" {
			l += ": " + trim(first, 240)
		} else {
			l += ": nothing logged (at warn) during the step"
		}
		x.note = append(x.note, l)
	}
}

// contenders are Switchboard over Pusher, over Centrifugo when the binary
// serves /connection/websocket, and the peer; with filter, only those
// whose name contains -contenders.
func (r *runner) contenders(ctx context.Context, filter bool) ([]contender, error) {
	cs := []contender{{"switchboard/pusher", "switchboard", load.Pusher}}
	probe, err := r.start(ctx, "switchboard", "sqlite")
	if err != nil {
		return nil, err
	}
	if probe.hasCentrifugo() {
		cs = append(cs, contender{"switchboard/centrifugo", "switchboard", load.Centrifugo})
	} else if !r.noCentrifugoNoted {
		r.noCentrifugoNoted = true
		r.notes = append(r.notes, "Switchboard's Centrifugo front door (/connection/websocket, branch `centrifugo`) is not in this build: "+
			"its rows are not yet available. The tool speaks the protocol (the peer rows use it) and includes the door automatically once present.")
	}
	probe.stop()
	cs = append(cs, contender{"peer/centrifugo", "peer", load.Centrifugo})
	if filter && r.o.contenders != "" {
		kept := cs[:0]
		for _, c := range cs {
			if strings.Contains(c.name, r.o.contenders) {
				kept = append(kept, c)
			}
		}
		cs = kept
	}
	return cs, nil
}

// neighbourScenario names the neighbour rows, e.g. "fanout 5000×20/s +
// neighbour 0.4 cores".
func (r *runner) neighbourScenario() string {
	return fmt.Sprintf("fanout %s + neighbour %g cores", r.o.nbSize, r.o.nbCores)
}

// neighbour measures the -neighbour-size fan-out on each contender (a fresh
// server each) while a separate busy process (`switchboard-bench busy`)
// burns -neighbour-cores in short duty cycles: the tail a co-tenant leaves.
func (r *runner) neighbour(ctx context.Context) error {
	cs, err := r.contenders(ctx, true)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	z := r.o.nbSize
	for _, c := range cs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		srv, err := r.start(ctx, c.kind, "sqlite")
		if err != nil {
			return err
		}
		pool := &load.Pool{Target: srv.target(c.proto, channelMain), Dialer: load.NewDialer(r.o.sourceIPs)}
		if _, err := pool.Ensure(ctx, z.subs, r.o.dialParallel); err != nil {
			r.log.Error("connect", "server", c.name, "subs", z.subs, "err", err)
			if pool.Alive() == 0 {
				pool.Close()
				srv.stop()
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
		busy := exec.Command(self, "busy", "-cores", fmt.Sprint(r.o.nbCores))
		busy.Stderr = os.Stderr
		if err := busy.Start(); err != nil {
			pool.Close()
			srv.stop()
			return fmt.Errorf("start busy neighbour: %w", err)
		}
		// Let the neighbour settle into its duty cycle.
		time.Sleep(2 * time.Second)
		r.log.Info("neighbour", "server", c.name, "size", z.String(), "cores", r.o.nbCores)
		b0, _ := load.ReadProc(busy.Process.Pid)
		t0 := time.Now()
		x := r.measure(ctx, srv, pool, r.neighbourScenario(), c.name, z.subs, z.rate, r.o.duration)
		b1, _ := load.ReadProc(busy.Process.Pid)
		_ = busy.Process.Signal(os.Interrupt)
		_ = busy.Wait()
		x.neighbourCPU = b1.CPU - b0.CPU
		x.note = append(x.note, fmt.Sprintf("neighbour used %.2f cores", x.neighbourCPU.Seconds()/time.Since(t0).Seconds()))
		r.add(x)
		pool.Close()
		srv.stop()
	}
	return nil
}

// fanout runs every size on every contender, alternating the order per
// repetition; each contender gets a fresh server per repetition. The
// saturation search runs on the first repetition at satSubs subscribers.
func (r *runner) fanout(ctx context.Context) error {
	contenders, err := r.contenders(ctx, true)
	if err != nil {
		return err
	}

	runs := map[string][]row{}
	for rep := range r.o.reps {
		order := append([]contender(nil), contenders...)
		if rep%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, c := range order {
			if err := r.fanoutOne(ctx, c, rep, runs); err != nil {
				return err
			}
		}
	}
	defer func() {
		for _, x := range r.satRows {
			r.add(x)
		}
	}()
	// Median of the repetitions by last-subscriber p99.
	keys := make([]string, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, c := range contenders {
		for _, z := range r.o.sizes {
			rs := runs[c.name+"|"+z.String()]
			if len(rs) == 0 {
				continue
			}
			sort.Slice(rs, func(i, j int) bool { return rs[i].res.Last.P99 < rs[j].res.Last.P99 })
			med := rs[len(rs)/2]
			if len(rs) > 1 {
				med.note = append(med.note, fmt.Sprintf("median of %d (last p99 %s–%s)", len(rs), ms(rs[0].res.Last.P99), ms(rs[len(rs)-1].res.Last.P99)))
			}
			r.add(med)
		}
	}
	return nil
}

func (r *runner) fanoutOne(ctx context.Context, c contender, rep int, runs map[string][]row) error {
	srv, err := r.start(ctx, c.kind, "sqlite")
	if err != nil {
		return err
	}
	defer srv.stop()
	pool := &load.Pool{Target: srv.target(c.proto, channelMain), Dialer: load.NewDialer(r.o.sourceIPs)}
	defer pool.Close()
	for _, z := range r.o.sizes {
		if _, err := pool.Ensure(ctx, z.subs, r.o.dialParallel); err != nil {
			r.log.Error("connect", "server", c.name, "subs", z.subs, "err", err)
			if pool.Alive() == 0 {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
		time.Sleep(time.Second)
		r.log.Info("fanout", "server", c.name, "size", z.String(), "rep", rep+1)
		x := r.measure(ctx, srv, pool, "fanout "+z.String(), c.name, z.subs, z.rate, r.o.duration)
		runs[c.name+"|"+z.String()] = append(runs[c.name+"|"+z.String()], x)
		if rep == 0 && z.subs == r.o.satSubs && r.o.satStep > 0 && r.o.satWho[c.name] {
			r.saturation(ctx, srv, pool, c.name, z.subs)
		}
	}
	return nil
}

// saturation raises the event rate at a fixed subscriber count until
// last-subscriber p99 reaches 500 ms or anything is lost; it reports the
// highest passing deliveries/s.
func (r *runner) saturation(ctx context.Context, srv *server, pool *load.Pool, name string, subs int) {
	var best *row
	var failed string
	var pubErr bool
	for _, rate := range r.o.satRates {
		if _, err := pool.Ensure(ctx, subs, r.o.dialParallel); err != nil {
			failed = "reconnect failed: " + err.Error()
			break
		}
		time.Sleep(time.Second)
		x := r.measure(ctx, srv, pool, "saturation step", name, subs, rate, r.o.satStep)
		r.log.Info("saturation step", "server", name, "rate", rate, "deliv/s", int(x.delivPerSec()),
			"last_p99", x.res.Last.P99, "loss", x.res.Loss(), "publish_p99", x.res.Publish.P99, "publish_max", x.res.Publish.Max,
			"publish_errors", x.pubErrs, "busy", fmt.Sprintf("%.0f%%", 100*x.use.BusyShare()))
		if x.res.Last.P99 >= 500*time.Millisecond || x.res.Delivered < x.res.Expected || x.pubErrs > 0 || x.skipped > 0 || x.res.Events == 0 || x.short() {
			failed = fmt.Sprintf("failed at %g/s: last p99 %s, delivered %d/%d, publish errors %d", rate, ms(x.res.Last.P99), x.res.Delivered, x.res.Expected, x.pubErrs)
			if x.pubErrs > 0 {
				pubErr = true
				// The step's notes carry the error text and the server log.
				failed += " (" + strings.Join(x.note, "; ") + ")"
			}
			break
		}
		x2 := x
		best = &x2
	}
	if best == nil {
		r.satRows = append(r.satRows, row{scenario: "saturation", server: name, subs: subs, satStop: failed, satPubErr: pubErr,
			note: []string{"no step passed; " + failed}})
		return
	}
	best.scenario = "saturation"
	best.satStop, best.satPubErr = failed, pubErr
	best.note = append(best.note, fmt.Sprintf("highest passing step %g/s", best.rate))
	if failed != "" {
		best.note = append(best.note, "next "+failed)
	} else {
		best.note = append(best.note, "every step passed: raise -sat-rates")
	}
	r.satRows = append(r.satRows, *best)
}

// commitToScreen measures REST POST → receipt on subscribed Pusher clients
// for each store and write rate.
func (r *runner) commitToScreen(ctx context.Context) error {
	for _, store := range []string{"postgres", "sqlite"} {
		srv, err := r.start(ctx, "switchboard", store)
		if err != nil {
			return err
		}
		pool := &load.Pool{Target: srv.target(load.Pusher, channelMain), Dialer: load.NewDialer(r.o.sourceIPs)}
		if _, err := pool.Ensure(ctx, r.o.c2sSubs, r.o.dialParallel); err != nil {
			pool.Close()
			srv.stop()
			return err
		}
		for _, rate := range r.o.c2sRates {
			time.Sleep(time.Second)
			x := r.measure(ctx, srv, pool, fmt.Sprintf("commit-to-screen %s", store), "switchboard/pusher", r.o.c2sSubs, rate, r.o.c2sFor)
			r.add(x)
		}
		pool.Close()
		srv.stop()
	}
	return nil
}

// blocked measures commit-to-screen on PostgreSQL at the c2s rate while a
// transaction in another database of the cluster stays open (blockFor at a
// time, one after another, for the whole measurement), in each relay mode:
// the poll sees no row newer than the oldest running transaction, logical
// decoding is not held back by it.
func (r *runner) blocked(ctx context.Context) error {
	rate := r.o.c2sRates[len(r.o.c2sRates)-1]
	for _, mode := range []string{"logical", "poll"} {
		srv, err := startSwitchboard(ctx, startOpts{bin: r.o.bin, store: "postgres", pgURL: r.o.pgURL, logLevel: "warn",
			env: []string{"SWITCHBOARD_RELAY_MODE=" + mode}})
		if err != nil {
			return err
		}
		pool := &load.Pool{Target: srv.target(load.Pusher, channelMain), Dialer: load.NewDialer(r.o.sourceIPs)}
		if _, err := pool.Ensure(ctx, r.o.c2sSubs, r.o.dialParallel); err != nil {
			pool.Close()
			srv.stop()
			return err
		}
		time.Sleep(time.Second)
		hctx, stopHold := context.WithCancel(ctx)
		held := make(chan error, 1)
		go func() { held <- holdTransactions(hctx, r.o.pgURL, r.o.blockFor) }()
		x := r.measure(ctx, srv, pool, fmt.Sprintf("c2s pg, unrelated tx open %s", r.o.blockFor), "switchboard/pusher relay="+mode,
			r.o.c2sSubs, rate, r.o.c2sFor)
		stopHold()
		if err := <-held; err != nil {
			x.note = append(x.note, "blocking transaction: "+trim(err.Error(), 80))
		}
		r.add(x)
		pool.Close()
		srv.stop()
	}
	return nil
}

// holdTransactions keeps a transaction with an xid open in database
// "postgres" of base's cluster, each for d, until ctx ends.
func holdTransactions(ctx context.Context, base string, d time.Duration) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	u.Path = "/postgres"
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	for ctx.Err() == nil {
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`SELECT pg_current_xact_id()`); err != nil {
			_ = tx.Rollback()
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		_ = tx.Rollback()
	}
	return nil
}

// outbox drives closed-loop REST writes from many writers on PostgreSQL and
// measures throughput and the relay's lag (receipt − commit acknowledged).
func (r *runner) outbox(ctx context.Context) error {
	srv, err := r.start(ctx, "switchboard", "postgres")
	if err != nil {
		return err
	}
	defer srv.stop()
	pool := &load.Pool{Target: srv.target(load.Pusher, channelMain), Dialer: load.NewDialer(r.o.sourceIPs)}
	defer pool.Close()
	if _, err := pool.Ensure(ctx, 1, 1); err != nil {
		return err
	}
	rec := load.NewRecorder(2_000_000)
	pool.Rec.Store(rec)
	pub := srv.publisher()
	m := load.StartMeter(srv.pid())
	mark := srv.logMark()
	prof := r.profile(srv, "outbox", r.o.outboxFor)
	t0 := time.Now()
	attempted := pub.Closed(ctx, rec, r.o.writers, r.o.outboxFor)
	prof()
	time.Sleep(r.o.drain)
	u := m.Stop()
	pool.Rec.Store(nil)
	res := rec.Result(1)
	x := row{scenario: fmt.Sprintf("outbox pg, %d writers", r.o.writers), server: "switchboard/pusher", subs: 1,
		rate: float64(res.Events) / r.o.outboxFor.Seconds(), attempted: attempted, res: res, use: u,
		pubErrs: pub.Errors.Load(), alive: pool.Alive()}
	x.note = append(x.note, fmt.Sprintf("%.0f writes/s; relay lag (ack→screen) p50 %s p99 %s max %s",
		x.rate, ms(res.AckLag.P50), ms(res.AckLag.P99), ms(res.AckLag.Max)))
	r.publishErrors(&x, pub, srv, mark, t0)
	r.outboxRow = &x
	r.add(x)
	return nil
}

// idle holds n connections with two subscriptions each and reports RSS per
// connection over the server's baseline.
func (r *runner) idle(ctx context.Context) error {
	cs, err := r.contenders(ctx, false)
	if err != nil {
		return err
	}
	for _, n := range r.o.idleConns {
		// The server and this tool each hold one descriptor per
		// connection, plus listeners, database files, HTTP clients.
		if need := uint64(n + idleFDMargin); r.o.fdLimit > 0 && need > r.o.fdLimit {
			x := row{scenario: idleScenario(n), server: "all", subs: n, idle: true, skippedFD: true,
				note: []string{fmt.Sprintf("skipped: the hard fd limit is %d and each process needs %d (connections + %d); raise it (ulimit -Hn, needs CAP_SYS_RESOURCE) to run it",
					r.o.fdLimit, need, idleFDMargin)}}
			r.log.Warn("idle skipped", "conns", n, "fd_limit", r.o.fdLimit)
			r.idleRows = append(r.idleRows, x)
			r.add(x)
			continue
		}
		for _, c := range cs {
			if err := r.idleOne(ctx, c, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// idleSettleMax bounds how long the idle scenario waits for a server's RSS
// to settle after its GC.
const idleSettleMax = 20 * time.Second

// waitRSSSettled returns once pid's RSS has changed by less than 1 % over
// two seconds, or after limit.
func waitRSSSettled(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	prev, _ := load.ReadProc(pid)
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		cur, err := load.ReadProc(pid)
		if err != nil {
			return
		}
		if d := prev.RSS - cur.RSS; max(d, -d) < prev.RSS/100 {
			return
		}
		prev = cur
	}
}

// idleFDMargin is the descriptors a process needs besides its connections.
const idleFDMargin = 200

func idleScenario(n int) string {
	return fmt.Sprintf("idle %d conns (2 channels/conn)", n)
}

func (r *runner) idleOne(ctx context.Context, c contender, conns int) error {
	srv, err := r.start(ctx, c.kind, "sqlite")
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	base, _ := load.ReadProc(srv.pid())
	g0, e0 := srv.goroutines()
	pool := &load.Pool{Target: srv.target(c.proto, channelMain, channelSecond), Dialer: load.NewDialer(r.o.sourceIPs)}
	m := load.StartMeter(srv.pid())
	t0 := time.Now()
	_, derr := pool.Ensure(ctx, conns, r.o.dialParallel)
	connectTime := time.Since(t0)
	time.Sleep(r.o.idleSettle)
	// Both servers run a GC here (/debug/pprof/heap?gc=1), as any Go
	// server does within 2 minutes (forced GC period) of going idle: it
	// shrinks the goroutine stacks grown while connecting, so RSS shows
	// the steady idle cost rather than the connect burst. The runtime then
	// returns the freed memory to the system over the next seconds (its
	// background scavenger), so RSS is read once it has settled: the
	// reading 2 s after the GC, which earlier runs reported, is kept in
	// the note.
	var early int64
	if r.o.idleGC {
		srv.gc()
		time.Sleep(2 * time.Second)
		p, _ := load.ReadProc(srv.pid())
		early = p.RSS
		waitRSSSettled(srv.pid(), idleSettleMax)
	}
	u := m.Stop()
	after, _ := load.ReadProc(srv.pid())
	g1, e1 := srv.goroutines()
	r.snapshot(srv, fmt.Sprintf("idle%d-%s", conns, c.kind), "heap")
	r.snapshot(srv, fmt.Sprintf("idle%d-%s", conns, c.kind), "heap?debug=1")
	n := pool.Alive()
	x := row{scenario: idleScenario(conns), server: c.name, subs: n, use: u, alive: n, idle: true, want: conns, baseRSS: base.RSS}
	if n > 0 {
		x.rssPerConn = float64(after.RSS-base.RSS) / float64(n)
	}
	gs := "goroutines n/a (no pprof listener)"
	if e0 == nil && e1 == nil {
		gs = fmt.Sprintf("goroutines %d → %d (%.2f/conn)", g0, g1, float64(g1-g0)/float64(max(1, n)))
	}
	x.note = append(x.note, fmt.Sprintf("RSS/conn %.1f KB (base %.0f MB → %.0f MB); %s; connected in %s",
		x.rssPerConn/1024, mb(base.RSS), mb(after.RSS), gs, connectTime.Round(100*time.Millisecond)))
	if early > base.RSS && n > 0 {
		x.note = append(x.note, fmt.Sprintf("2 s after the GC, before the runtime returned freed memory: %.1f KB/conn",
			float64(early-base.RSS)/float64(n)/1024))
	}
	if derr != nil {
		x.note = append(x.note, "connect errors: "+trim(derr.Error(), 100))
	}
	r.idleRows = append(r.idleRows, x)
	r.add(x)
	pool.Close()
	srv.stop()
	return nil
}

// churn connects and disconnects churnRate clients per second for churnFor
// while publishing to stayers; then checks goroutines and RSS return to the
// baseline and that no stayer missed an event.
func (r *runner) churn(ctx context.Context) error {
	srv, err := r.start(ctx, "switchboard", "sqlite")
	if err != nil {
		return err
	}
	defer srv.stop()
	target := srv.target(load.Pusher, channelMain)
	stay := &load.Pool{Target: target, Dialer: load.NewDialer(r.o.sourceIPs)}
	defer stay.Close()
	if _, err := stay.Ensure(ctx, r.o.churnStayers, r.o.dialParallel); err != nil {
		return err
	}
	churnDialer := load.NewDialer(r.o.sourceIPs)
	// The tool's idle keep-alive connections (auth, publish) each hold a
	// goroutine in the server; close them before both counts so these show
	// what the server keeps by itself.
	quiesce := func() {
		srv.http.CloseIdleConnections()
		stay.Dialer.CloseIdleConnections()
		churnDialer.CloseIdleConnections()
		time.Sleep(500 * time.Millisecond)
		srv.gc() // RSS after a GC, as in the idle scenario
		time.Sleep(2 * time.Second)
	}
	time.Sleep(2 * time.Second)
	quiesce()
	g0, _ := srv.goroutines()
	p0, _ := load.ReadProc(srv.pid())
	r.snapshot(srv, "churn-before", "goroutine?debug=1")
	r.snapshot(srv, "churn-before", "heap?debug=1")
	r.snapshot(srv, "churn-before", "heap")

	var connects, fails atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	cctx, stop := context.WithCancel(ctx)
	var none atomic.Pointer[load.Recorder]
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / r.o.churnRate))
		defer tick.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := churnDialer.Dial(ctx, target, &none)
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				connects.Add(1)
				time.Sleep(r.o.churnHold)
				c.Close()
			}()
		}
	}()
	// RSS halfway through (after a GC) against RSS after: a leak grows with
	// every connect, so it shows in the second half too; the runtime's
	// high-water mark and caches that fill up (history, the relay's id
	// ring, SQLite's page cache) do not.
	var pMid load.ProcStat
	midDone := make(chan struct{})
	go func() {
		defer close(midDone)
		select {
		case <-time.After(r.o.churnFor / 2):
			srv.gc()
			time.Sleep(time.Second)
			pMid, _ = load.ReadProc(srv.pid())
		case <-cctx.Done():
		}
	}()
	x := r.measure(ctx, srv, stay, fmt.Sprintf("churn %g/s for %s", r.o.churnRate, r.o.churnFor), "switchboard/pusher", r.o.churnStayers, r.o.churnPubRate, r.o.churnFor)
	<-midDone
	stop()
	wg.Wait()
	time.Sleep(r.o.churnSettle)
	quiesce()
	g1, _ := srv.goroutines()
	p1, _ := load.ReadProc(srv.pid())
	r.snapshot(srv, "churn-after", "goroutine?debug=1")
	r.snapshot(srv, "churn-after", "heap?debug=1")
	r.snapshot(srv, "churn-after", "heap")
	x.note = append(x.note, fmt.Sprintf("%d churn connects (%d failed); goroutines %d → %d after; RSS %.0f → %.0f MB halfway → %.0f MB after",
		connects.Load(), fails.Load(), g0, g1, mb(p0.RSS), mb(pMid.RSS), mb(p1.RSS)))
	if e, ok := firstErr.Load().(error); ok {
		x.note = append(x.note, "churn error: "+trim(e.Error(), 80))
	}
	x.churnLeak = g1 > g0+10 || (pMid.RSS > 0 && p1.RSS > pMid.RSS+max(4<<20, pMid.RSS/10))
	r.add(x)
	return nil
}

// profile captures a CPU profile of srv over d into the -profile directory
// (when set); the returned func waits for it.
func (r *runner) profile(srv *server, label string, d time.Duration) func() {
	if r.o.profileDir == "" || d < 2*time.Second {
		return func() {}
	}
	name := strings.NewReplacer(" ", "_", "/", "-", "×", "x").Replace(label)
	path := filepath.Join(r.o.profileDir, fmt.Sprintf("%s-%d.pprof", name, time.Now().Unix()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := int((d - time.Second) / time.Second)
		resp, err := srv.http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", srv.debugAddr, secs))
		if err != nil {
			r.log.Warn("profile", "err", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			r.log.Warn("profile", "err", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
		r.log.Info("profile written", "path", path)
	}()
	return func() { <-done }
}

// snapshot saves a pprof profile (heap, goroutine) of srv into the
// -profile directory, when set.
func (r *runner) snapshot(srv *server, label, kind string) {
	if r.o.profileDir == "" {
		return
	}
	resp, err := srv.http.Get(fmt.Sprintf("http://%s/debug/pprof/%s", srv.debugAddr, kind))
	if err != nil {
		r.log.Warn("snapshot", "err", err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(r.o.profileDir, fmt.Sprintf("%s-%s-%d.pprof", label, strings.NewReplacer("?", "-", "=", "").Replace(kind), time.Now().Unix()))
	if f, err := os.Create(path); err == nil {
		_, _ = io.Copy(f, resp.Body)
		f.Close()
		r.log.Info("profile written", "path", path)
	}
}

func trim(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
