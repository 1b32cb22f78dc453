package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"switchboard/bench/load"
)

// row is one line of the report.
type row struct {
	scenario   string
	server     string
	subs       int
	rate       float64
	attempted  int
	res        load.Result
	use        load.Usage
	pubErrs    int64
	skipped    int64
	alive      int
	want       int // subscribers asked for; subs is how many were connected
	idle       bool
	rssPerConn float64
	churnLeak  bool
	baseRSS    int64 // idle: server RSS before connecting
	skippedFD  bool  // idle: not run, the fd limit cannot hold the connections
	// neighbourCPU is the busy neighbour's CPU over the window (not counted
	// as "other processes").
	neighbourCPU time.Duration
	satStop      string // saturation: why the search stopped ("" = every step passed)
	satPubErr    bool   // saturation: it stopped on a publish error
	note         []string
}

func (x row) delivPerSec() float64 {
	if x.rate <= 0 || x.attempted == 0 {
		return 0
	}
	return float64(x.res.Delivered) / (float64(x.attempted) / x.rate)
}

// cpuPer1k is server CPU milliseconds per 1,000 deliveries.
func (x row) cpuPer1k() float64 {
	if x.res.Delivered == 0 {
		return 0
	}
	return float64(x.use.ServerCPU.Milliseconds()) / (float64(x.res.Delivered) / 1000)
}

// short reports a run that measured fewer subscribers than it asked for.
func (x row) short() bool { return x.want > 0 && x.subs < x.want }

// flags marks a run whose figures the machine, not the server, may have set.
func (x row) flags() []string {
	var f []string
	if x.short() {
		f = append(f, fmt.Sprintf("**only %d of %d connected**", x.subs, x.want))
	}
	if x.use.Wall == 0 {
		return f
	}
	if b := x.use.BusyShare(); b >= 0.9 {
		f = append(f, fmt.Sprintf("**CPU-saturated** (box %.0f%% busy)", 100*b))
	}
	if t := x.use.Pct(x.use.ToolCPU); t > 80 {
		f = append(f, fmt.Sprintf("load tool %.0f%% CPU", t))
	}
	if o := x.use.Pct(x.use.MachineCPU-x.use.ServerCPU-x.use.ToolCPU-x.neighbourCPU) / 100; o > 0.25 {
		f = append(f, fmt.Sprintf("other processes %.2f cores", o))
	}
	if !x.idle && x.res.Expected > 0 && x.res.Delivered < x.res.Expected {
		f = append(f, fmt.Sprintf("**LOSS %.3f%%**", 100*x.res.Loss()))
	}
	if x.pubErrs > 0 || x.skipped > 0 {
		f = append(f, fmt.Sprintf("publish errors %d, skipped %d", x.pubErrs, x.skipped))
	}
	return f
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond))
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func (x row) line() string {
	return strings.Join(x.cells(), " | ")
}

func (x row) cells() []string {
	c := []string{x.scenario, x.server, fmt.Sprint(x.subs)}
	if x.idle {
		c = append(c, "–", "–", "–", "–", "–")
	} else {
		d, l := x.res.Delivery, x.res.Last
		c = append(c, fmt.Sprintf("%.0f", x.rate), fmt.Sprintf("%.0f", x.delivPerSec()),
			fmt.Sprintf("%s / %s / %s / %s", ms(d.P50), ms(d.P95), ms(d.P99), ms(d.Max)),
			fmt.Sprintf("%s / %s / %s", ms(l.P50), ms(l.P99), ms(l.Max)),
			fmt.Sprintf("%d / %d", x.res.Delivered, x.res.Expected))
	}
	if x.use.Wall > 0 {
		c = append(c, fmt.Sprintf("%.0f", mb(x.use.RSS)), fmt.Sprintf("%.0f", x.use.Pct(x.use.ServerCPU)))
		if x.idle || x.res.Delivered == 0 {
			c = append(c, "–")
		} else {
			c = append(c, fmt.Sprintf("%.1f", x.cpuPer1k()))
		}
		c = append(c, fmt.Sprintf("%.0f", x.use.Pct(x.use.ToolCPU)), fmt.Sprintf("%.0f", 100*x.use.BusyShare()))
	} else {
		c = append(c, "–", "–", "–", "–", "–")
	}
	c = append(c, strings.Join(append(append([]string{}, x.note...), x.flags()...), "; "))
	return c
}

var header = []string{"Scenario", "Server/protocol", "Conns", "Events/s", "Deliv/s",
	"Delivery p50/p95/p99/max ms", "Last-sub p50/p99/max ms", "Delivered/expected",
	"Srv RSS MB", "Srv CPU %", "Srv CPU ms/1k deliv", "Tool CPU %", "Box busy %", "Notes / flags"}

func (r *runner) table() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, x := range r.rows {
		b.WriteString("| " + strings.Join(x.cells(), " | ") + " |\n")
	}
	return b.String()
}

func (r *runner) find(scenario, server string) *row {
	for i := range r.rows {
		if r.rows[i].scenario == scenario && r.rows[i].server == server {
			return &r.rows[i]
		}
	}
	return nil
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func check(ok bool) string {
	if ok {
		return "MET"
	}
	return "**MISSED**"
}

// summary prints the ratios against the peer and the targets.
func (r *runner) summary() []string {
	var out []string
	const sb, peer = "switchboard/pusher", "peer/centrifugo"
	for _, z := range r.o.sizes {
		s, p := r.find("fanout "+z.String(), sb), r.find("fanout "+z.String(), peer)
		if s == nil || p == nil {
			continue
		}
		out = append(out, fmt.Sprintf("- fanout %s, Switchboard ÷ peer: last-sub p50 %s, p99 %s; server CPU per 1k deliveries %s; RSS %s",
			z, ratio(float64(s.res.Last.P50), float64(p.res.Last.P50)), ratio(float64(s.res.Last.P99), float64(p.res.Last.P99)),
			ratio(s.cpuPer1k(), p.cpuPer1k()), ratio(float64(s.use.RSS), float64(p.use.RSS))))
	}
	ss, ps := r.find("saturation", sb), r.find("saturation", peer)
	if ss != nil && ps != nil {
		pe := "no publish error"
		if ss.satPubErr {
			pe = "**its search ended on a publish error** (see the saturation row)"
		}
		met := ss.delivPerSec() >= 4*ps.delivPerSec() && ps.delivPerSec() > 0 && !ss.satPubErr
		verdict := check(met)
		if !met && ss.satStop == "" && !ss.satPubErr {
			// Switchboard never failed a step: its figure is only a floor.
			verdict = "**UNDECIDED**: Switchboard passed every step, so its figure is a lower bound (raise -sat-rates)"
		}
		out = append(out, fmt.Sprintf("- target saturation (deliveries/s with last-sub p99 < 500 ms, zero loss) ≥ 4× the peer's with no publish error: Switchboard %.0f, peer %.0f → %s, %s %s",
			ss.delivPerSec(), ps.delivPerSec(), ratio(ss.delivPerSec(), ps.delivPerSec()), pe, verdict))
	}
	if s := r.find("fanout 5000×20/s", sb); s != nil {
		out = append(out, fmt.Sprintf("- target fanout 5k×20/s last-sub p50 ≤ 100 ms: %s ms %s; p99 ≤ 200 ms: %s ms %s",
			ms(s.res.Last.P50), check(s.res.Last.P50 <= 100*time.Millisecond && s.res.Events > 0 && !s.short()), ms(s.res.Last.P99), check(s.res.Last.P99 <= 200*time.Millisecond && s.res.Events > 0 && !s.short())))
		if p := r.find("fanout 5000×20/s", peer); p != nil {
			out = append(out, fmt.Sprintf("- target server CPU per 1k deliveries at 5k×20/s ≤ 0.5× peer: %.1f vs %.1f ms = %s %s",
				s.cpuPer1k(), p.cpuPer1k(), ratio(s.cpuPer1k(), p.cpuPer1k()), check(p.cpuPer1k() > 0 && s.cpuPer1k() <= 0.5*p.cpuPer1k() && !s.short() && !p.short())))
		}
	}
	for _, name := range []string{sb, "switchboard/centrifugo"} {
		s := r.find("fanout 10000×20/s", name)
		if s == nil {
			continue
		}
		line := fmt.Sprintf("- target fanout 10k×20/s (200k deliveries/s), %s: zero loss (%d / %d delivered) and last-sub p99 ≤ 250 ms (%s ms) %s",
			name, s.res.Delivered, s.res.Expected, ms(s.res.Last.P99),
			check(s.res.Events > 0 && !s.short() && s.res.Delivered == s.res.Expected && s.pubErrs == 0 && s.res.Last.P99 <= 250*time.Millisecond))
		if p := r.find("fanout 10000×20/s", peer); p != nil {
			line += fmt.Sprintf("; peer: %s ms, loss %.3f%%", ms(p.res.Last.P99), 100*p.res.Loss())
		}
		out = append(out, line)
	}
	if p := r.find(r.neighbourScenario(), peer); p != nil || r.find(r.neighbourScenario(), sb) != nil {
		for _, name := range []string{sb, "switchboard/centrifugo"} {
			s := r.find(r.neighbourScenario(), name)
			if s == nil {
				continue
			}
			ok := s.res.Events > 0 && !s.short() && s.res.Last.P99 <= 150*time.Millisecond
			vs := "peer not measured"
			if p != nil {
				ok = ok && p.res.Events > 0 && s.res.Last.P99 <= p.res.Last.P99*7/10
				vs = fmt.Sprintf("peer %s ms → %s", ms(p.res.Last.P99), ratio(float64(s.res.Last.P99), float64(p.res.Last.P99)))
			} else {
				ok = false
			}
			out = append(out, fmt.Sprintf("- target %s, %s: last-sub p99 ≤ 0.7× the peer's and ≤ 150 ms: %s ms, %s %s",
				r.neighbourScenario(), name, ms(s.res.Last.P99), vs, check(ok)))
		}
	}
	lossy, peerLossy := 0, 0
	for _, x := range r.rows {
		if !x.idle && x.scenario != "saturation" && (x.res.Delivered < x.res.Expected || x.short()) {
			if strings.HasPrefix(x.server, "peer") {
				peerLossy++
			} else {
				lossy++
			}
		}
	}
	out = append(out, fmt.Sprintf("- target zero loss in every Switchboard run (saturation steps excluded): %d runs with loss or missing subscribers %s (peer: %d)",
		lossy, check(lossy == 0), peerLossy))
	for _, x := range r.rows {
		if x.scenario == "commit-to-screen postgres" && x.rate == 200 {
			out = append(out, fmt.Sprintf("- target commit-to-screen PostgreSQL at 200 writes/s p50 ≤ 10 ms, p99 ≤ 50 ms: %s / %s ms %s",
				ms(x.res.Delivery.P50), ms(x.res.Delivery.P99), check(x.res.Delivery.P50 <= 10*time.Millisecond && x.res.Delivery.P99 <= 50*time.Millisecond && x.res.Events > 0)))
		}
	}
	for _, x := range r.rows {
		if strings.HasPrefix(x.scenario, "c2s pg, unrelated tx open") {
			target := ""
			if strings.HasSuffix(x.server, "relay=logical") {
				target = " (target p99 ≤ 50 ms: " + check(x.res.Delivery.P99 <= 50*time.Millisecond && x.res.Events > 0 && x.res.Delivered == x.res.Expected) + ")"
			}
			out = append(out, fmt.Sprintf("- %s at %g writes/s, %s: p50 %s, p99 %s, max %s ms%s",
				x.scenario, x.rate, x.server, ms(x.res.Delivery.P50), ms(x.res.Delivery.P99), ms(x.res.Delivery.Max), target))
		}
	}
	var one, three, peer3 *row
	for i := range r.rows {
		x := &r.rows[i]
		switch {
		case strings.HasPrefix(x.scenario, "cluster") && strings.HasSuffix(x.scenario, ", 1 node"):
			one = x
		case strings.HasPrefix(x.scenario, "cluster") && x.server == sb:
			three = x
		case strings.HasPrefix(x.scenario, "cluster"):
			peer3 = x
		}
	}
	if three != nil && one != nil {
		line := fmt.Sprintf("- target cluster (3 nodes, NATS) last-sub p99 ≤ 1.5× one node at the same load: %s vs %s ms = %s %s",
			ms(three.res.Last.P99), ms(one.res.Last.P99), ratio(float64(three.res.Last.P99), float64(one.res.Last.P99)),
			check(three.res.Last.P99 <= one.res.Last.P99*3/2 && three.res.Events > 0 && three.res.Delivered == three.res.Expected))
		if peer3 != nil {
			line += fmt.Sprintf("; ≤ peer on Redis (%s ms): %s", ms(peer3.res.Last.P99),
				check(three.res.Last.P99 <= peer3.res.Last.P99 && peer3.res.Events > 0))
		}
		out = append(out, line)
	}
	for _, x := range r.idleRows {
		if x.skippedFD {
			out = append(out, fmt.Sprintf("- target idle ≤ 6 KB RSS/conn at %d connections: **NOT MEASURED** (%s)", x.want0(), strings.Join(x.note, "; ")))
			continue
		}
		if x.server == peer {
			continue
		}
		var peerIdle float64
		for _, p := range r.idleRows {
			if p.server == peer && p.scenario == x.scenario {
				peerIdle = p.rssPerConn
			}
		}
		vs := "vs peer n/a"
		if peerIdle > 0 {
			vs = fmt.Sprintf("vs peer %.1f KB = %s", peerIdle/1024, ratio(x.rssPerConn, peerIdle))
		}
		out = append(out, fmt.Sprintf("- target idle ≤ 6 KB RSS/conn at %d connections, 2 subscriptions each (%s): %.1f KB %s; %s",
			x.want0(), x.server, x.rssPerConn/1024, check(x.rssPerConn > 0 && x.rssPerConn <= 6*1024 && !x.short()), vs))
	}
	if x := r.outboxRow; x != nil {
		out = append(out, fmt.Sprintf("- target outbox ≥ 4,000 REST writes/s on PostgreSQL: %.0f %s; relay lag p99 ≤ 50 ms: %s ms %s",
			x.rate, check(x.rate >= 4000 && x.pubErrs == 0), ms(x.res.AckLag.P99), check(x.res.AckLag.P99 <= 50*time.Millisecond && x.res.Events > 0)))
	}
	out = append(out, r.onPaper()...)
	for _, x := range r.rows {
		if strings.HasPrefix(x.scenario, "churn") {
			out = append(out, fmt.Sprintf("- churn: stayers lost %d of %d deliveries; leak (goroutines over +10, or RSS growing in the second half): %v %s",
				x.res.Expected-x.res.Delivered, x.res.Expected, x.churnLeak, check(!x.churnLeak && x.res.Delivered == x.res.Expected && x.res.Events > 0)))
		}
	}
	return out
}

// want0 is the connections a row asked for (subs when it did not say).
func (x row) want0() int {
	if x.want > 0 {
		return x.want
	}
	return x.subs
}

// paperRate is the delivery rate the "1 million connections on paper"
// line assumes: every one of 1M subscribers gets 1 event/s.
const paperRate = 1e6

// onPaper extrapolates to one million connections: memory from the largest
// idle run (base RSS + 1M × RSS/conn), cores from the CPU per delivery of
// the busiest loss-free fan-out run, at paperRate deliveries/s.
func (r *runner) onPaper() []string {
	var out []string
	for _, name := range []string{"switchboard/pusher", "switchboard/centrifugo"} {
		var idle *row
		for i := range r.idleRows {
			x := &r.idleRows[i]
			if x.server == name && x.rssPerConn > 0 && (idle == nil || x.subs > idle.subs) {
				idle = x
			}
		}
		var fan *row
		for i := range r.rows {
			x := &r.rows[i]
			if x.server == name && strings.HasPrefix(x.scenario, "fanout ") && !strings.Contains(x.scenario, "neighbour") &&
				x.res.Events > 0 && x.res.Delivered == x.res.Expected && !x.short() && x.cpuPer1k() > 0 &&
				(fan == nil || x.delivPerSec() > fan.delivPerSec()) {
				fan = x
			}
		}
		if idle == nil && fan == nil {
			continue
		}
		line := fmt.Sprintf("- 1 million connections on paper (%s):", name)
		if idle != nil {
			gb := (float64(idle.baseRSS) + 1e6*idle.rssPerConn) / (1 << 30)
			line += fmt.Sprintf(" memory ≈ %.0f MB base + 1M × %.1f KB = %.1f GiB (RSS/conn of the %d-connection idle run, 2 subscriptions each);",
				mb(idle.baseRSS), idle.rssPerConn/1024, gb, idle.subs)
		} else {
			line += " memory n/a (no idle run);"
		}
		if fan != nil {
			cores := fan.cpuPer1k() * paperRate / 1000 / 1000
			line += fmt.Sprintf(" CPU ≈ %.1f cores, assuming each of 1M subscribers gets 1 event/s (1M deliveries/s) at the %.1f ms per 1k deliveries measured at %s (%.0f deliveries/s)",
				cores, fan.cpuPer1k(), strings.TrimPrefix(fan.scenario, "fanout "), fan.delivPerSec())
		} else {
			line += " CPU n/a (no loss-free fan-out run)"
		}
		out = append(out, line)
	}
	return out
}

func machine() string {
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			var kb float64
			fmt.Sscan(f[1], &kb)
			mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ":")
				model = strings.TrimSpace(model)
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d cores (%s), %s RAM, Linux %s, %s, GOMAXPROCS %d", runtime.NumCPU(), model, mem,
		strings.TrimSpace(string(kernel)), runtime.Version(), runtime.GOMAXPROCS(0))
}

const (
	beginMark = "<!-- switchboard-bench:begin -->"
	endMark   = "<!-- switchboard-bench:end -->"
)

// render is the generated report section.
func (r *runner) render(started time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Run of %s\n\n", started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s\n", machine())
	fmt.Fprintf(&b, "- Command: `%s` (took %s)\n", r.o.command, time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "- Load tool and servers share the machine; figures taken while other work ran on it may be pessimistic (see the Box busy %% and flags columns).\n\n")
	b.WriteString(r.table())
	b.WriteString("\n")
	for _, n := range r.notes {
		b.WriteString("- " + n + "\n")
	}
	for _, l := range r.summary() {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// writeReport puts the section between the markers of path (creating the
// file or appending the markers when needed), keeping hand-written analysis.
func writeReport(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := beginMark + "\n" + section + endMark + "\n"
	var out []byte
	i, j := bytes.Index(old, []byte(beginMark)), bytes.Index(old, []byte(endMark))
	switch {
	case i >= 0 && j > i:
		out = append(append(append([]byte{}, old[:i]...), block...), bytes.TrimPrefix(old[j+len(endMark):], []byte("\n"))...)
	case len(old) > 0:
		out = append(append(old, '\n'), block...)
	default:
		out = []byte("# Switchboard benchmarks\n\n" + block)
	}
	return os.WriteFile(path, out, 0o644)
}
