package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"switchboard/gateway"
)

// cut records a Writer's OnSlow and OnError calls.
type cut struct {
	mu     sync.Mutex
	causes []gateway.CutCause
	queued []int
	errs   int
	done   chan struct{} // closed by OnError
}

func newCut() *cut { return &cut{done: make(chan struct{})} }

func (c *cut) slow(cause gateway.CutCause, queued int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.causes = append(c.causes, cause)
	c.queued = append(c.queued, queued)
}

func (c *cut) err(error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errs++; c.errs == 1 {
		close(c.done)
	}
}

func (c *cut) get() ([]gateway.CutCause, []int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]gateway.CutCause(nil), c.causes...), append([]int(nil), c.queued...), c.errs
}

// wait returns the OnSlow calls once there are n of them (an overflow
// reports from its own goroutine), or after a second.
func (c *cut) wait(n int) ([]gateway.CutCause, []int) {
	deadline := time.Now().Add(time.Second)
	for {
		causes, queued, _ := c.get()
		if len(causes) >= n || time.Now().After(deadline) {
			return causes, queued
		}
		time.Sleep(time.Millisecond)
	}
}

// An overflow while the socket holds only the head of a frame keeps that
// frame's tail: the close frame must follow the whole frame, or the client
// reads the close frame as payload, then a reset (1006 instead of the
// protocol's slow-consumer code).
func TestWriterOverflowKeepsPartlyWrittenFrame(t *testing.T) {
	const maxQueue = 4
	var (
		mu      sync.Mutex
		out     bytes.Buffer
		w       *gateway.Writer
		release func()
		first   = true
	)
	c := newCut()
	frame := []byte("<frame 0123456789>")
	w = gateway.NewWriter(gateway.WriterConfig{
		MaxQueue: maxQueue,
		OnSlow:   c.slow,
		TryWrite: func(b []byte) (int, error) {
			mu.Lock()
			out.Write(b[:3]) // the socket takes 3 bytes, then is full
			mu.Unlock()
			if first {
				first = false
				// While the frame's head is on the wire: hold the writer
				// (so nothing drains) and queue up to the limit.
				release = w.Hold()
				for i := range maxQueue - 1 {
					w.Enqueue(fmt.Appendf(nil, "<queued %d>", i))
				}
			}
			return 3, nil
		},
		Write: func(frames [][]byte) error {
			mu.Lock()
			defer mu.Unlock()
			for _, f := range frames {
				out.Write(f)
			}
			return nil
		},
	})
	if !w.Enqueue(frame) {
		t.Fatal("first frame refused")
	}
	if w.Enqueue([]byte("<one too many>")) {
		t.Fatal("a frame beyond MaxQueue was accepted")
	}
	done := w.CloseWith([]byte("<close>"))
	release()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer never finished")
	}
	mu.Lock()
	got := out.String()
	mu.Unlock()
	if want := string(frame) + "<close>"; got != want {
		t.Fatalf("stream %q, want %q (the whole frame, then the close frame)", got, want)
	}
	causes, queued := c.wait(1)
	wantQueued := len(frame) - 3 + 3*len("<queued 0>")
	if len(causes) != 1 || causes[0] != gateway.CutQueueFull || queued[0] != wantQueued {
		t.Fatalf("OnSlow calls %v with %v bytes, want one queue_full with %d", causes, queued, wantQueued)
	}
}

// OnSlow fires once per writer, for a slow client only (an overflow or a
// write timeout), never for a peer that went away or a write that timed
// out while the connection was closing anyway; OnError fires for every
// failed write.
func TestWriterReportsSlowCutOnce(t *testing.T) {
	timeout := fmt.Errorf("write tcp: %w", os.ErrDeadlineExceeded)
	tests := []struct {
		name      string
		writeErr  error
		closeWith bool // CloseWith before the write fails
		overflow  bool // overflow the queue before the write fails
		want      []gateway.CutCause
		queued    int
	}{
		{"write timeout", timeout, false, false, []gateway.CutCause{gateway.CutWriteTimeout}, 10},
		{"peer gone", errors.New("write tcp: broken pipe"), false, false, nil, 0},
		{"timeout while closing", timeout, true, false, nil, 0},
		{"overflow, then the blocked write times out", timeout, false, true, []gateway.CutCause{gateway.CutQueueFull}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCut()
			unblock := make(chan struct{})
			w := gateway.NewWriter(gateway.WriterConfig{
				MaxQueue: 2,
				OnSlow:   c.slow,
				OnError:  c.err,
				Write: func([][]byte) error {
					<-unblock
					return tt.writeErr
				},
			})
			w.Enqueue([]byte("0123456789")) // the write that blocks, then fails
			for !queuedUp(w) {
				time.Sleep(time.Millisecond) // until the drain took it
			}
			if tt.overflow {
				w.Enqueue([]byte("abc"))
				w.Enqueue([]byte("def"))
				if w.Enqueue([]byte("ghi")) {
					t.Fatal("a frame beyond MaxQueue was accepted")
				}
			}
			if tt.closeWith {
				w.CloseWith([]byte("<close>"))
			}
			close(unblock)
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				t.Fatal("OnError not called for the failed write")
			}
			causes, queued := c.wait(len(tt.want))
			_, _, errs := c.get()
			if fmt.Sprint(causes) != fmt.Sprint(tt.want) || errs != 1 {
				t.Fatalf("OnSlow %v, OnError %d times; want OnSlow %v, OnError once", causes, errs, tt.want)
			}
			if len(queued) > 0 && queued[0] != tt.queued {
				t.Fatalf("queued %d bytes, want %d", queued[0], tt.queued)
			}
		})
	}
}

// queuedUp reports that the drain goroutine took the first frame (the
// queue is empty again while its write blocks).
func queuedUp(w *gateway.Writer) bool { return w.Queued() == 0 }

// A real socket whose reader stalls past the write timeout is reported as
// a write-timeout cut: IsTimeout recognises what NetIO's write returns.
func TestNetIOStalledPastTimeoutIsASlowCut(t *testing.T) {
	server, _ := tcpPair(t) // the client end never reads
	write, try := gateway.NetIO(server, 100*time.Millisecond)
	c := newCut()
	w := gateway.NewWriter(gateway.WriterConfig{Write: write, TryWrite: try, MaxQueue: 1 << 20, OnSlow: c.slow, OnError: c.err})
	frame := bytes.Repeat([]byte("x"), 64<<10)
	for range 256 { // 16 MB: far beyond loopback socket buffers
		w.Enqueue(frame)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a write to a stalled reader never timed out")
	}
	causes, queued := c.wait(1)
	if len(causes) != 1 || causes[0] != gateway.CutWriteTimeout || queued[0] <= 0 {
		t.Fatalf("OnSlow %v with %v bytes, want one write_timeout with a backlog", causes, queued)
	}
}
