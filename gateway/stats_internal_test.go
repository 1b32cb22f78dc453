package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// closeFrameEnd reads the code and reason of the close frame among the
// frames a close queues.
func TestCloseFrameEnd(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name   string
		frames []byte
		want   End
		ok     bool
	}{
		{"close frame", CloseFrame(4200, "Server is restarting"), End{Code: 4200, Reason: "Server is restarting"}, true},
		{"no status", frame(opClose, nil), End{Code: 1005}, true},
		{"after a text frame", append(TextFrame([]byte(`{"type":"disconnect"}`)), CloseFrame(1000, "")...), End{Code: 1000}, true},
		{"after a long text frame", append(TextFrame([]byte(long)), CloseFrame(3008, "slow")...), End{Code: 3008, Reason: "slow"}, true},
		{"text only", TextFrame([]byte("hi")), End{}, false},
		{"truncated", CloseFrame(1000, "bye")[:3], End{}, false},
		{"empty", nil, End{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := closeFrameEnd(tc.frames)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("closeFrameEnd = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A Writer counts the publications it queued and the bytes the socket
// took; replies and control frames are bytes, not deliveries.
func TestWriterCounts(t *testing.T) {
	for _, mode := range []string{"inline", "drain"} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			var wrote int
			cfg := WriterConfig{Write: func(frames [][]byte) error {
				mu.Lock()
				defer mu.Unlock()
				for _, f := range frames {
					wrote += len(f)
				}
				return nil
			}}
			if mode == "inline" {
				cfg.TryWrite = func(f []byte) (int, error) {
					mu.Lock()
					defer mu.Unlock()
					wrote += len(f)
					return len(f), nil
				}
			}
			w := NewWriter(cfg)
			ev := TextFrame([]byte(`{"event":"x"}`))
			w.Deliver(&Message{}, ev)
			w.DeliverMany([][]byte{ev, ev})
			w.Enqueue(PongFrame(nil))
			b := &Batch{}
			w.Deliver(&Message{batch: b}, ev)
			for _, bw := range b.take() {
				bw.flushBatch()
			}
			<-w.CloseWith(nil)
			want := 4*len(ev) + len(PongFrame(nil))
			if c := w.Counts(); c.Deliveries != 4 || c.Bytes != uint64(want) {
				t.Fatalf("Counts = %+v, want 4 deliveries and %d bytes", c, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if wrote != want {
				t.Fatalf("socket got %d bytes, want %d", wrote, want)
			}
		})
	}
}

// How a connection ended is the first close recorded: the server's close
// frame, the echo of the client's, or the error that ended the socket.
func TestWriterEnd(t *testing.T) {
	boom := errors.New("broken pipe")
	for _, tc := range []struct {
		name  string
		close func(w *Writer)
		want  End
	}{
		{"server close", func(w *Writer) {
			<-w.CloseWith(CloseFrame(4200, "Server is restarting"))
			w.CloseEcho(4200) // the client's answer changes nothing
		}, End{Code: 4200, Reason: "Server is restarting"}},
		{"client close", func(w *Writer) { <-w.CloseEcho(1001) }, End{Code: 1001, ByClient: true}},
		{"reason beside the frame", func(w *Writer) {
			<-w.CloseWithReason(append(TextFrame([]byte(`{"type":"disconnect"}`)), CloseFrame(1000, "")...), "too_slow")
		}, End{Code: 1000, Reason: "too_slow"}},
		{"client vanished", func(w *Writer) {
			w.noteReadEnd(errors.New("unexpected EOF"))
			<-w.CloseWith(nil)
		}, End{Code: CloseAbnormal, Reason: "read: unexpected EOF", ByClient: true}},
		{"write failed", func(w *Writer) {
			w.Enqueue(TextFrame([]byte("x")))
			<-w.CloseWith(nil) // done once the failed write ended the writer
		}, End{Code: CloseAbnormal, Reason: "write: broken pipe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(WriterConfig{Write: func([][]byte) error { return boom }})
			if _, ok := w.End(); ok {
				t.Fatal("End known before the connection ended")
			}
			tc.close(w)
			if got, ok := w.End(); !ok || got != tc.want {
				t.Fatalf("End = %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
}

// Stats sums the live connections' traffic with that of the ended ones,
// and an ended connection's traffic stays counted.
func TestStatsTraffic(t *testing.T) {
	var s Stats
	ok := func(frames [][]byte) error { return nil }
	a, b := NewWriter(WriterConfig{Write: ok}), NewWriter(WriterConfig{Write: ok})
	s.opened(ProtoCentrifuge, a)
	s.opened(ProtoCentrifuge, b)
	ev := TextFrame([]byte("12345"))
	a.Deliver(&Message{}, ev)
	b.DeliverMany([][]byte{ev, ev})
	<-a.CloseWith(nil)
	<-b.CloseWith(nil)
	want := Traffic{Deliveries: 3, Bytes: uint64(3 * len(ev))}
	if got := s.Traffic(ProtoCentrifuge); got != want || s.Connections(ProtoCentrifuge) != 2 {
		t.Fatalf("live: Traffic %+v, Connections %d; want %+v, 2", got, s.Connections(ProtoCentrifuge), want)
	}
	s.closed(ProtoCentrifuge, a)
	s.closed(ProtoCentrifuge, a) // a second close counts the disconnect, not the traffic again
	if got := s.Traffic(ProtoCentrifuge); got != want || s.Connections(ProtoCentrifuge) != 1 {
		t.Fatalf("after a close: Traffic %+v, Connections %d; want %+v, 1", got, s.Connections(ProtoCentrifuge), want)
	}
	if s.Connects(ProtoCentrifuge) != 2 || s.Disconnects(ProtoCentrifuge) != 2 || s.Traffic(ProtoPusher) != (Traffic{}) {
		t.Fatalf("connects %d, disconnects %d, pusher %+v", s.Connects(ProtoCentrifuge), s.Disconnects(ProtoCentrifuge), s.Traffic(ProtoPusher))
	}
}

// The minute line appears when something changed, with the open
// connections and what happened since the previous line, and not while
// the server is idle.
func TestLogCountsOnlyOnChange(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil))
	reads := make(chan counts, 1)
	ticks := []counts{
		{}, // idle: no line
		{open: [numProtocols]int{2, 1, 0}, connects: 3, authFailures: 1},                 // line
		{open: [numProtocols]int{2, 1, 0}, connects: 3, authFailures: 1},                 // same: no line
		{open: [numProtocols]int{1, 1, 0}, connects: 3, disconnects: 1, authFailures: 1}, // line
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		logCounts(ctx, log, time.Millisecond, func() counts {
			select {
			case c := <-reads:
				return c
			case <-ctx.Done():
				return ticks[len(ticks)-1]
			}
		})
	}()
	reads <- counts{} // the start
	for _, c := range ticks {
		reads <- c
	}
	// One more read proves the last tick was logged (or not) already.
	reads <- ticks[len(ticks)-1]
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	want := []map[string]float64{
		{"pusher": 2, "centrifuge": 1, "actioncable": 0, "connects": 3, "disconnects": 0, "auth_failures": 1},
		{"pusher": 1, "centrifuge": 1, "actioncable": 0, "connects": 0, "disconnects": 1, "auth_failures": 0},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.Bytes())
	}
	for i, w := range want {
		if lines[i]["level"] != "INFO" || lines[i]["msg"] != "connections" {
			t.Fatalf("line %d: %v", i, lines[i])
		}
		for k, v := range w {
			if lines[i][k] != v {
				t.Fatalf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
