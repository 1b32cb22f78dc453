package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/bench/load"
)

func TestWriteReportKeepsHandWrittenText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	tests := []struct {
		name    string
		initial string
		want    []string
	}{
		{"new file", "", []string{"# Switchboard benchmarks", beginMark, "TABLE-2", endMark}},
		{"markers replaced", "intro\n" + beginMark + "\nold TABLE-1\n" + endMark + "\nanalysis\n", []string{"intro\n" + beginMark, "TABLE-2", endMark + "\nanalysis\n"}},
		{"no markers yet", "notes only\n", []string{"notes only\n", beginMark, "TABLE-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(path)
			if tc.initial != "" {
				if err := os.WriteFile(path, []byte(tc.initial), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := writeReport(path, "TABLE-2\n"); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			got := string(b)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("report lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "TABLE-1") || strings.Count(got, beginMark) != 1 {
				t.Errorf("old section kept or markers duplicated:\n%s", got)
			}
		})
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in   string
		want []size
		err  bool
	}{
		{"1000x20,5000x20", []size{{1000, 20}, {5000, 20}}, false},
		{"10000x0.5", []size{{10000, 0.5}}, false},
		{"1000", nil, true},
		{"x20", nil, true},
		{"-5x2", nil, true},
	}
	for _, tc := range tests {
		got, err := parseSizes(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v", tc.in, got)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestRowFlagsOverloadAndLoss(t *testing.T) {
	x := row{rate: 10, attempted: 100,
		res: load.Result{Expected: 1000, Delivered: 990},
		use: load.Usage{Wall: time.Second, ServerCPU: 900 * time.Millisecond, ToolCPU: 850 * time.Millisecond,
			MachineCPU: 1900 * time.Millisecond, Cores: 2}}
	f := strings.Join(x.flags(), "; ")
	for _, w := range []string{"CPU-saturated", "load tool 85% CPU", "LOSS 1.000%"} {
		if !strings.Contains(f, w) {
			t.Errorf("flags %q lack %q", f, w)
		}
	}
	if got := x.cpuPer1k(); got < 909 || got > 910 {
		t.Errorf("cpu per 1k = %f, want 909.1", got)
	}
	quiet := row{res: load.Result{Expected: 10, Delivered: 10}, use: load.Usage{Wall: time.Second, Cores: 2, MachineCPU: 200 * time.Millisecond}}
	if f := quiet.flags(); len(f) != 0 {
		t.Errorf("quiet run flagged: %v", f)
	}
}

func TestParseCounts(t *testing.T) {
	got, err := parseCounts("10000, 19000")
	if err != nil || len(got) != 2 || got[0] != 10000 || got[1] != 19000 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-3", "10k"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// fakeRow is a loss-free measured row.
func fakeRow(scenario, server string, subs int, rate float64, lastP99 time.Duration, cpu time.Duration) row {
	ev := int(rate * 10)
	return row{scenario: scenario, server: server, subs: subs, rate: rate, attempted: ev, want: subs,
		res: load.Result{Events: ev, Expected: int64(ev * subs), Delivered: int64(ev * subs), Last: load.Summary{P99: lastP99}},
		use: load.Usage{Wall: 10 * time.Second, ServerCPU: cpu, Cores: 2, MachineCPU: cpu}}
}

func TestSummaryNewTargets(t *testing.T) {
	r := &runner{o: opts{nbCores: 0.4, nbSize: size{5000, 20}, sizes: []size{{5000, 20}, {10000, 20}}}}
	nb := r.neighbourScenario()
	if nb != "fanout 5000×20/s + neighbour 0.4 cores" {
		t.Fatalf("neighbour scenario %q", nb)
	}
	r.rows = []row{
		fakeRow("fanout 5000×20/s", "switchboard/pusher", 5000, 20, 100*time.Millisecond, 5*time.Second),
		fakeRow("fanout 5000×20/s", "peer/centrifugo", 5000, 20, 200*time.Millisecond, 11*time.Second),
		fakeRow("fanout 10000×20/s", "switchboard/pusher", 10000, 20, 240*time.Millisecond, 12*time.Second),
		fakeRow(nb, "switchboard/pusher", 5000, 20, 120*time.Millisecond, 5*time.Second),
		fakeRow(nb, "peer/centrifugo", 5000, 20, 200*time.Millisecond, 11*time.Second),
	}
	r.idleRows = []row{
		{scenario: idleScenario(19000), server: "switchboard/pusher", subs: 19000, want: 19000, idle: true, rssPerConn: 5 * 1024, baseRSS: 20 << 20},
		{scenario: idleScenario(50000), server: "all", subs: 50000, want: 50000, idle: true, skippedFD: true, note: []string{"skipped: the hard fd limit is 20000"}},
	}
	sum := strings.Join(r.summary(), "\n")
	for _, w := range []string{
		"server CPU per 1k deliveries at 5k×20/s ≤ 0.5× peer: 5.0 vs 11.0 ms = 0.45× MET",
		"fanout 10k×20/s (200k deliveries/s), switchboard/pusher: zero loss (2000000 / 2000000 delivered) and last-sub p99 ≤ 250 ms (240 ms) MET",
		"target " + nb + ", switchboard/pusher: last-sub p99 ≤ 0.7× the peer's and ≤ 150 ms: 120 ms, peer 200 ms → 0.60× MET",
		"idle ≤ 6 KB RSS/conn at 19000 connections, 2 subscriptions each (switchboard/pusher): 5.0 KB MET; vs peer n/a",
		"idle ≤ 6 KB RSS/conn at 50000 connections: **NOT MEASURED** (skipped: the hard fd limit is 20000)",
		"1 million connections on paper (switchboard/pusher): memory ≈ 20 MB base + 1M × 5.0 KB = 4.8 GiB",
		"CPU ≈ 6.0 cores, assuming each of 1M subscribers gets 1 event/s (1M deliveries/s) at the 6.0 ms per 1k deliveries measured at 10000×20/s",
	} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary lacks %q:\n%s", w, sum)
		}
	}
}

// TestSummarySaturationVerdict: a Switchboard search that never failed a
// step only gives a floor, so a ratio under 4× is undecided, not missed.
func TestSummarySaturationVerdict(t *testing.T) {
	tests := []struct {
		name    string
		sbRate  float64
		satStop string
		pubErr  bool
		want    string
	}{
		{"four times the peer", 320, "next failed at 360/s", false, "→ 4.00×, no publish error MET"},
		{"below and stopped by a failing step", 300, "next failed at 360/s", false, "→ 3.75×, no publish error **MISSED**"},
		{"below but every step passed", 300, "", false, "→ 3.75×, no publish error **UNDECIDED**: Switchboard passed every step"},
		{"four times but a publish error", 320, "publish error", true, "**its search ended on a publish error** (see the saturation row) **MISSED**"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeRow("saturation", "switchboard/pusher", 5000, tt.sbRate, 200*time.Millisecond, time.Second)
			s.satStop, s.satPubErr = tt.satStop, tt.pubErr
			p := fakeRow("saturation", "peer/centrifugo", 5000, 80, 200*time.Millisecond, time.Second)
			p.satStop = "next failed at 100/s"
			r := &runner{rows: []row{s, p}}
			sum := strings.Join(r.summary(), "\n")
			if !strings.Contains(sum, tt.want) {
				t.Fatalf("summary lacks %q:\n%s", tt.want, sum)
			}
		})
	}
}
