package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"syscall"
	"time"
)

// runBusy is the neighbour of the neighbour scenario: a process that burns
// about -cores of CPU in short duty cycles (spin for a few milliseconds,
// sleep for the rest of the period), as a busy co-tenant does, until it is
// stopped. Every second it compares the CPU it really got (getrusage) with
// the target and adjusts its spin share, so on a loaded box it still takes
// about -cores (up to twice the nominal share per period) rather than less.
func runBusy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("busy", flag.ContinueOnError)
	cores := fs.Float64("cores", 0.4, "CPU to burn, in cores (> 0)")
	period := fs.Duration("period", 10*time.Millisecond, "duty cycle: spin cores×period, then sleep the rest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cores <= 0 || *period <= 0 {
		return fmt.Errorf("busy: -cores and -period must be > 0")
	}
	workers := int(math.Ceil(*cores))
	runtime.GOMAXPROCS(workers)
	nominal := *cores / float64(workers) // share of each worker's period
	share := nominal
	stops := make([]chan float64, workers)
	for i := range stops {
		stops[i] = make(chan float64, 1)
		go spin(ctx, *period, share, stops[i])
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastCPU := time.Now(), cpuTime()
	// Never outlive the tool that started it (it stops it with SIGINT; if
	// the tool dies, this process is re-parented).
	parent := os.Getppid()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if os.Getppid() != parent {
				return nil
			}
			c := cpuTime()
			got := float64(c-lastCPU) / float64(now.Sub(last)) // cores
			last, lastCPU = now, c
			if got > 0 {
				// Proportional correction, clamped to [½, 2]× the nominal share.
				share = math.Min(math.Max(share*(*cores/got), nominal/2), math.Min(1, 2*nominal))
			}
			for _, s := range stops {
				select {
				case s <- share:
				default:
				}
			}
		}
	}
}

// spin runs one worker's duty cycle; a new share arrives on upd.
func spin(ctx context.Context, period time.Duration, share float64, upd <-chan float64) {
	runtime.LockOSThread()
	next := time.Now()
	for ctx.Err() == nil {
		select {
		case share = <-upd:
		default:
		}
		next = next.Add(period)
		until := time.Now().Add(time.Duration(share * float64(period)))
		x := 1.0
		for time.Now().Before(until) {
			for range 1000 {
				x = x*1.0000001 + 1e-9
			}
		}
		sink = x
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		} else {
			next = time.Now()
		}
	}
}

var sink float64

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
