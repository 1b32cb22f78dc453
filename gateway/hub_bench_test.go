package gateway

import (
	"encoding/json"
	"fmt"
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
	c.w.Enqueue(m.Frame("bench", func(m *Message) []byte { return TextFrame(m.Data) }))
}

// BenchmarkHubFanout publishes one 300-byte message per op to N subscribers
// and waits until every Writer has drained it.
func BenchmarkHubFanout(b *testing.B) {
	data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 290)})
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h := NewHub()
			var written atomic.Int64
			write := func(frames [][]byte) error {
				written.Add(int64(len(frames)))
				return nil
			}
			for i := range n {
				h.Subscribe("dashboard.project.bench.attendees", &benchConn{id: fmt.Sprint(i), w: NewWriter(WriterConfig{Write: write})})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Publish(&Message{Channel: "dashboard.project.bench.attendees", Event: "AttendeeCreated", Data: data})
			}
			want := int64(b.N) * int64(n)
			for written.Load() < want {
				time.Sleep(20 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
		})
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
