package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchConn is an in-memory connection: a real Writer whose Write discards
// the frames and counts them, so the benchmark measures the hub, the frame
// cache and the writer queues without sockets.
type benchConn struct {
	id string
	w  *Writer
}

func (c *benchConn) ConnID() string { return c.id }

func (c *benchConn) Deliver(m *Message) {
	c.w.Deliver(m, m.Frame("bench", func(m *Message) []byte { return TextFrame(m.Data) }))
}

// benchMultiConn also takes a backlog in one call (see MultiSubscriber).
type benchMultiConn struct{ benchConn }

func (c *benchMultiConn) DeliverMany(ms []*Message) {
	var arr [MaxBrokerBatch][]byte
	frames := arr[:0]
	for _, m := range ms {
		frames = append(frames, m.Frame("bench", func(m *Message) []byte { return TextFrame(m.Data) }))
	}
	c.w.DeliverMany(frames)
}

// BenchmarkHubFanout publishes 300-byte messages to N subscribers and waits
// until every Writer has written them. Modes: "drain" hands each delivery
// to a drain goroutine (a writer without TryWrite); "inline" writes from
// the publishing goroutines as the gateway does on sockets; "batch16"
// dispatches 16 messages as one batch (a backlog), one write per
// connection per batch; "batch2" is a coalesced pair. "many2" and
// "many16" hand the same backlogs to MultiSubscribers through PublishMany
// (one visit per connection instead of one per message plus the flush).
func BenchmarkHubFanout(b *testing.B) {
	data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 290)})
	for _, mode := range []string{"drain", "inline", "batch2", "batch16", "many2", "many16"} {
		for _, n := range []int{100, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/subs=%d", mode, n), func(b *testing.B) {
				benchFanout(b, mode, n, data)
			})
		}
	}
}

func benchFanout(b *testing.B, mode string, n int, data []byte) {
	h := NewHub()
	var written, writes atomic.Int64
	cfg := WriterConfig{Write: func(frames [][]byte) error {
		written.Add(int64(len(frames)))
		writes.Add(1)
		return nil
	}}
	if mode != "drain" {
		frameLen := len(TextFrame(data))
		cfg.TryWrite = func(f []byte) (int, error) {
			written.Add(int64(len(f) / frameLen)) // a batch's frames come concatenated
			writes.Add(1)
			return len(f), nil
		}
	}
	many := strings.HasPrefix(mode, "many")
	for i := range n {
		c := benchConn{id: fmt.Sprint(i), w: NewWriter(cfg)}
		if many {
			h.Subscribe("dashboard.project.bench.attendees", &benchMultiConn{c})
		} else {
			h.Subscribe("dashboard.project.bench.attendees", &c)
		}
	}
	per := 1
	switch mode {
	case "batch2", "many2":
		per = 2
	case "batch16", "many16":
		per = 16
	}
	ms := make([]*Message, per)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var batch *Batch
		if per > 1 {
			batch = &Batch{}
		}
		for j := range per {
			ms[j] = &Message{Channel: "dashboard.project.bench.attendees", Event: "AttendeeCreated", Data: data, batch: batch}
			if !many {
				h.Publish(ms[j])
			}
		}
		if many {
			h.PublishMany(ms)
		}
		if batch != nil {
			h.Flush(batch)
		}
	}
	{
		want := int64(b.N) * int64(n) * int64(per)
		for written.Load() < want {
			time.Sleep(20 * time.Microsecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
		b.ReportMetric(float64(writes.Load())/float64(want), "writes/delivery")
	}
}

// BenchmarkWriterEnqueue is the per-subscriber cost on the publishing
// goroutine when the connection's writer is already busy (no new goroutine).
func BenchmarkWriterEnqueue(b *testing.B) {
	frame := TextFrame(make([]byte, 300))
	release := make(chan struct{})
	w := NewWriter(WriterConfig{MaxQueue: 1 << 30, Write: func([][]byte) error { <-release; return nil }})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.Enqueue(frame)
	}
	b.StopTimer()
	close(release)
}

// BenchmarkTextFrame is the WebSocket framing of a 300-byte payload.
func BenchmarkTextFrame(b *testing.B) {
	p := make([]byte, 300)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = TextFrame(p)
	}
}

// BenchmarkHubSubscribe10k is 10,000 clients joining one channel: the
// connect storm after a deploy. Bytes/op show the garbage it makes.
func BenchmarkHubSubscribe10k(b *testing.B) {
	conns := make([]*benchConn, 10000)
	for i := range conns {
		conns[i] = &benchConn{id: fmt.Sprint(i)}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h := NewHub()
		for _, c := range conns {
			h.Subscribe("dashboard.project.bench.attendees", c)
		}
	}
}

// BenchmarkNetIOTryWrite is the fan-out's per-delivery write on a real
// socket: one non-blocking write(2) of a 300-byte frame through NetIO's
// TryWrite, the peer reading and discarding. allocs/op shows what a
// delivery costs the collector (BENCHMARKS.md, "Session 10").
func BenchmarkNetIOTryWrite(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_, try := NetIO(c, time.Second)
	if try == nil {
		b.Skip("no non-blocking write on this system")
	}
	frame := TextFrame([]byte(strings.Repeat("x", 300)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := 0; off < len(frame); {
			n, err := try(frame[off:])
			if err != nil {
				b.Fatal(err)
			}
			off += n // a full socket buffer gives 0: try again
		}
	}
}
