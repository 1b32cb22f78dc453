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
