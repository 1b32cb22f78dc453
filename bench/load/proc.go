package load

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

// ProcStat is a process's memory and CPU time at one moment.
type ProcStat struct {
	RSS int64         // bytes (VmRSS)
	CPU time.Duration // utime + stime
}

// ReadProc samples /proc/<pid>/status and /proc/<pid>/stat.
func ReadProc(pid int) (ProcStat, error) {
	var s ProcStat
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("proc status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			s.RSS = kb << 10
		}
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("proc stat: %w", err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(raw, ')')
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("proc stat: short line")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration(ut+stt) * time.Second / clockTick
	return s, nil
}

// MachineCPU is the whole machine's busy and total CPU time so far
// (/proc/stat), to tell how much of the box a run really had.
type MachineCPU struct{ Busy, Total time.Duration }

// ReadMachine samples /proc/stat.
func ReadMachine() (MachineCPU, error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	var m MachineCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * time.Second / clockTick
		m.Total += d
		if i != 3 && i != 4 { // idle, iowait
			m.Busy += d
		}
	}
	return m, nil
}

// Usage is CPU and memory over a window, for one process and the machine.
type Usage struct {
	Wall       time.Duration
	ServerCPU  time.Duration
	ToolCPU    time.Duration
	MachineCPU time.Duration // busy time of all cores
	Cores      float64       // cores the machine has (busy share is over this)
	RSS        int64         // server RSS at the end
}

// Meter measures a window: Start, then Stop.
type Meter struct {
	pid, self int
	t0        time.Time
	s0, me0   ProcStat
	m0        MachineCPU
}

// StartMeter begins a window for server pid (and this process).
func StartMeter(pid int) *Meter {
	m := &Meter{pid: pid, self: os.Getpid(), t0: time.Now()}
	m.s0, _ = ReadProc(pid)
	m.me0, _ = ReadProc(m.self)
	m.m0, _ = ReadMachine()
	return m
}

// Stop ends the window.
func (m *Meter) Stop() Usage {
	s1, _ := ReadProc(m.pid)
	me1, _ := ReadProc(m.self)
	m1, _ := ReadMachine()
	wall := time.Since(m.t0)
	cores := 1.0
	if m1.Total > m.m0.Total && wall > 0 {
		cores = float64(m1.Total-m.m0.Total) / float64(wall)
	}
	return Usage{Wall: wall, ServerCPU: s1.CPU - m.s0.CPU, ToolCPU: me1.CPU - m.me0.CPU,
		MachineCPU: m1.Busy - m.m0.Busy, Cores: cores, RSS: s1.RSS}
}

// Pct is d as a percentage of one core over the window.
func (u Usage) Pct(d time.Duration) float64 {
	if u.Wall <= 0 {
		return 0
	}
	return 100 * float64(d) / float64(u.Wall)
}

// BusyShare is the machine's busy share of all its cores (0..1).
func (u Usage) BusyShare() float64 {
	if u.Wall <= 0 || u.Cores <= 0 {
		return 0
	}
	return float64(u.MachineCPU) / (float64(u.Wall) * u.Cores)
}
