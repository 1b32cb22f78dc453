package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/gateway"
)

// sink is a fake socket: TryWrite accepts at most room bytes per call (0
// when full), Write takes whole batches. Both append to one byte stream, so
// a test can check nothing was reordered, lost or duplicated.
type sink struct {
	mu      sync.Mutex
	out     bytes.Buffer
	room    int // bytes TryWrite accepts per call
	tries   atomic.Int64
	drained atomic.Int64 // bytes written by the drain goroutine
}

func (s *sink) try(b []byte) (int, error) {
	s.tries.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(b), s.room)
	s.out.Write(b[:n])
	return n, nil
}

func (s *sink) write(frames [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range frames {
		s.drained.Add(int64(len(f)))
		s.out.Write(f)
	}
	return nil
}

func TestWriterInline(t *testing.T) {
	tests := []struct {
		name        string
		room        int
		wantBatches bool // the drain goroutine had to write something
	}{
		{"socket takes everything: no drain goroutine", 1 << 20, false},
		{"partial writes: tails drained in order", 3, true},
		{"socket full: everything drained", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{room: tt.room}
			w := gateway.NewWriter(gateway.WriterConfig{Write: s.write, TryWrite: s.try})
			var want bytes.Buffer
			for i := range 200 {
				f := fmt.Appendf(nil, "<frame %03d>", i)
				want.Write(f)
				if !w.Enqueue(f) {
					t.Fatalf("frame %d refused", i)
				}
			}
			<-w.CloseWith([]byte("<close>")) // always written by the drain goroutine
			want.WriteString("<close>")
			if got := s.out.String(); got != want.String() {
				t.Fatalf("stream differs:\n got %.120q\nwant %.120q", got, want.String())
			}
			if s.tries.Load() == 0 {
				t.Fatal("TryWrite never used")
			}
			if drained := s.drained.Load() > int64(len("<close>")); drained != tt.wantBatches {
				t.Fatalf("drain used = %v, want %v", drained, tt.wantBatches)
			}
		})
	}
}

// Concurrent publishers onto one writer: each publisher's frames keep their
// order and none is lost or duplicated, whichever path wrote them.
func TestWriterInlineConcurrent(t *testing.T) {
	s := &sink{room: 7}
	w := gateway.NewWriter(gateway.WriterConfig{Write: s.write, TryWrite: s.try, MaxQueue: 1 << 16})
	const pubs, each = 8, 300
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Enqueue(fmt.Appendf(nil, "[%d:%04d]", p, i))
			}
		}()
	}
	wg.Wait()
	<-w.CloseWith(nil)
	next := make([]int, pubs)
	for _, tok := range bytes.Split(bytes.Trim(s.out.Bytes(), "[]"), []byte("][")) {
		var p, i int
		if _, err := fmt.Sscanf(string(tok), "%d:%d", &p, &i); err != nil {
			t.Fatalf("torn frame %q: %v", tok, err)
		}
		if i != next[p] {
			t.Fatalf("publisher %d: frame %d after %d", p, i, next[p]-1)
		}
		next[p]++
	}
	for p, n := range next {
		if n != each {
			t.Fatalf("publisher %d: %d of %d frames written", p, n, each)
		}
	}
}

func TestWriterInlineErrorReportedOnce(t *testing.T) {
	var errs atomic.Int64
	w := gateway.NewWriter(gateway.WriterConfig{
		Write:    func([][]byte) error { return nil },
		TryWrite: func([]byte) (int, error) { return 0, errors.New("broken pipe") },
		OnError:  func(error) { errs.Add(1) },
	})
	if w.Enqueue([]byte("a")) {
		t.Fatal("failed inline write reported as accepted")
	}
	if w.Enqueue([]byte("b")) {
		t.Fatal("enqueue accepted after a write error")
	}
	select {
	case <-w.CloseWith(nil):
	case <-time.After(time.Second):
		t.Fatal("writer not done after error")
	}
	if n := errs.Load(); n != 1 {
		t.Fatalf("OnError called %d times, want 1", n)
	}
}

// Over a real TCP socket whose reader is stalled (for less than the write
// timeout), inline writes fill the kernel buffer, the rest queues, and once
// the reader drains the stream
// arrives whole and in order; an old expired write deadline never fails a
// later write.
func TestNetIOStalledReader(t *testing.T) {
	server, client := tcpPair(t)

	// The timeout must outlast building and queueing 16 MB under -race on
	// a busy machine, or the drain's blocked write times out first.
	const timeout = 2 * time.Second
	write, try := gateway.NetIO(server, timeout)
	if try == nil {
		t.Skip("no non-blocking write on this platform")
	}
	var drained atomic.Int64
	w := gateway.NewWriter(gateway.WriterConfig{
		Write:    func(f [][]byte) error { drained.Add(1); return write(f) },
		TryWrite: try, MaxQueue: 1 << 20,
		OnError: func(err error) { t.Errorf("write error: %v", err) },
	})
	frame := bytes.Repeat([]byte("x"), 4096)
	var want bytes.Buffer
	want.WriteString("start")
	frames := make([][]byte, 4000) // 16 MB: far beyond loopback socket buffers
	for i := range frames {
		f := append([]byte(nil), frame...)
		copy(f, fmt.Sprintf("%08d", i))
		want.Write(f)
		frames[i] = f
	}
	// Let a deadline expire unused first.
	w.Enqueue([]byte("start"))
	time.Sleep(timeout + 100*time.Millisecond)
	for _, f := range frames {
		w.Enqueue(f)
	}
	if w.Queued() == 0 && drained.Load() == 0 {
		t.Fatal("a stalled reader never made the writer queue")
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, int64(want.Len())))
		got <- b
	}()
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("stream differs (%d bytes, want %d)", len(b), want.Len())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stream not delivered")
	}
}

func TestWriterHold(t *testing.T) {
	tests := []struct {
		name   string
		before int // frames enqueued before Hold
		room   int
	}{
		{"idle writer", 0, 1 << 20},
		{"writer with a backlog", 50, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{room: tt.room}
			w := gateway.NewWriter(gateway.WriterConfig{Write: s.write, TryWrite: s.try})
			var want bytes.Buffer
			for i := range tt.before {
				f := fmt.Appendf(nil, "<old %02d>", i)
				want.Write(f)
				w.Enqueue(f)
			}
			release := w.Hold()
			w.Enqueue([]byte("<confirm>"))
			w.Enqueue([]byte("<event>"))
			time.Sleep(20 * time.Millisecond)
			s.mu.Lock()
			early := bytes.Contains(s.out.Bytes(), []byte("<confirm>"))
			s.mu.Unlock()
			if early {
				t.Fatal("a frame left while the writer was held")
			}
			release()
			release() // idempotent
			want.WriteString("<confirm><event>")
			<-w.CloseWith(nil)
			if got := s.out.String(); got != want.String() {
				t.Fatalf("stream %q, want %q", got, want.String())
			}
		})
	}
}

// TryWrite pins the descriptor rather than taking the connection's write
// lock: on a connection closed locally it must fail with an error (not
// write to a recycled descriptor, not report a full buffer), and once the
// peer is gone it must fail too.
func TestNetIOTryWriteAfterClose(t *testing.T) {
	cases := []struct {
		name  string
		close func(server, client net.Conn)
	}{
		{"closed here", func(server, _ net.Conn) { server.Close() }},
		{"peer gone", func(_, client net.Conn) {
			client.(*net.TCPConn).SetLinger(0) // RST: later writes fail
			client.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tcpPair(t)
			_, try := gateway.NetIO(server, time.Second)
			if try == nil {
				t.Skip("no non-blocking write on this platform")
			}
			if n, err := try([]byte("hello")); n != 5 || err != nil {
				t.Fatalf("open connection: got (%d, %v), want (5, nil)", n, err)
			}
			tc.close(server, client)
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := try([]byte("x"))
				if err != nil {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("writes after close kept succeeding")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}
