package gateway_test

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/gateway"
)

func TestWriterOrderAndBatching(t *testing.T) {
	var mu sync.Mutex
	var got []string
	batches := 0
	release := make(chan struct{})
	w := gateway.NewWriter(gateway.WriterConfig{MaxBatch: 4, Write: func(frames [][]byte) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		batches++
		for _, f := range frames {
			got = append(got, string(f))
		}
		return nil
	}})
	for i := 0; i < 10; i++ {
		if !w.Enqueue([]byte{byte('a' + i)}) {
			t.Fatal("enqueue refused")
		}
	}
	close(release)
	<-w.CloseWith([]byte("z"))
	mu.Lock()
	defer mu.Unlock()
	if s := join(got); s != "abcdefghijz" {
		t.Fatalf("written %q, want in order", s)
	}
	if batches > 5 || batches < 3 {
		t.Fatalf("%d batches for 11 frames with MaxBatch 4", batches)
	}
	if w.Enqueue([]byte("late")) {
		t.Fatal("enqueue accepted after close")
	}
}

func join(ss []string) (s string) {
	for _, x := range ss {
		s += x
	}
	return s
}

func TestWriterOverflowDisconnects(t *testing.T) {
	block := make(chan struct{})
	overflow := make(chan struct{})
	w := gateway.NewWriter(gateway.WriterConfig{MaxQueue: 3, Write: func([][]byte) error { <-block; return nil },
		OnOverflow: func() { close(overflow) }})
	accepted := 0
	for i := 0; i < 10; i++ {
		if w.Enqueue([]byte("x")) {
			accepted++
		}
	}
	select {
	case <-overflow:
	case <-time.After(time.Second):
		t.Fatal("overflow not reported")
	}
	if accepted > 4 {
		t.Fatalf("accepted %d frames with MaxQueue 3", accepted)
	}
	close(block)
	<-w.CloseWith([]byte("close"))
}

func TestWriterErrorStops(t *testing.T) {
	failed := make(chan error, 1)
	w := gateway.NewWriter(gateway.WriterConfig{Write: func([][]byte) error { return errors.New("broken pipe") },
		OnError: func(err error) { failed <- err }})
	w.Enqueue([]byte("a"))
	select {
	case <-failed:
	case <-time.After(time.Second):
		t.Fatal("write error not reported")
	}
	if w.Enqueue([]byte("b")) {
		t.Fatal("enqueue accepted after a write error")
	}
}

func TestFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		header []byte
	}{
		{"small", 5, []byte{0x81, 5}},
		{"16-bit length", 300, []byte{0x81, 126, 0x01, 0x2c}},
		{"64-bit length", 70000, []byte{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := gateway.TextFrame(make([]byte, tc.n))
			if string(f[:len(tc.header)]) != string(tc.header) || len(f) != len(tc.header)+tc.n {
				t.Fatalf("header % x, len %d", f[:len(tc.header)], len(f))
			}
		})
	}
	c := gateway.CloseFrame(4200, "bye")
	if c[0] != 0x88 || c[1] != 5 || c[2] != 0x10 || c[3] != 0x68 || string(c[4:]) != "bye" {
		t.Fatalf("close frame % x", c)
	}
}

// EnqueueMany sends a backlog as one write when the writer is idle, and
// queues it in order behind whatever is already waiting otherwise.
func TestWriterEnqueueMany(t *testing.T) {
	tests := []struct {
		name       string
		before     func(w *gateway.Writer) (release func())
		frames     []string
		want       string
		wantTries  int64
		wantResult bool
	}{
		{"idle: one write", nil, []string{"<a>", "<b>", "<c>"}, "<a><b><c>", 1, true},
		{"one frame", nil, []string{"<a>"}, "<a>", 1, true},
		{"nothing", nil, nil, "", 0, true},
		{"held: after what was queued", func(w *gateway.Writer) func() {
			release := w.Hold()
			w.Enqueue([]byte("<x>"))
			return release
		}, []string{"<a>", "<b>"}, "<x><a><b>", 0, true},
		{"closed", func(w *gateway.Writer) func() {
			<-w.CloseWith(nil)
			return nil
		}, []string{"<a>", "<b>"}, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var out bytes.Buffer
			var tries atomic.Int64
			w := gateway.NewWriter(gateway.WriterConfig{
				TryWrite: func(b []byte) (int, error) {
					tries.Add(1)
					mu.Lock()
					defer mu.Unlock()
					return out.Write(b)
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
			var release func()
			if tt.before != nil {
				release = tt.before(w)
			}
			frames := make([][]byte, len(tt.frames))
			for i, f := range tt.frames {
				frames[i] = []byte(f)
			}
			if got := w.EnqueueMany(frames); got != tt.wantResult {
				t.Fatalf("EnqueueMany = %v, want %v", got, tt.wantResult)
			}
			if release != nil {
				release()
			}
			<-w.CloseWith(nil)
			mu.Lock()
			defer mu.Unlock()
			if out.String() != tt.want {
				t.Fatalf("wrote %q, want %q", out.String(), tt.want)
			}
			if got := tries.Load(); got != tt.wantTries {
				t.Fatalf("%d non-blocking writes, want %d", got, tt.wantTries)
			}
		})
	}
}
