package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/domain"
)

// BenchmarkNodeDispatch is BenchmarkHubFanout one level up, through
// Node.DispatchBatch as the broker calls it: the path the debug console's
// tap sits on (tap.go). "one" dispatches events one at a time, "many16"
// a backlog of 16 on one channel (Hub.PublishMany). Run it before and
// after a change to the dispatch path with nobody watching:
//
//	go test -run '^$' -bench 'NodeDispatch' -benchtime 1s -count 6 ./gateway/
//
// BenchmarkNodeDispatchWatched is the same with a console watching.
func BenchmarkNodeDispatch(b *testing.B) {
	for _, mode := range []string{"one", "many16"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/subs=%d", mode, n), func(b *testing.B) { benchDispatch(b, mode, n, nil) })
		}
	}
}

// BenchmarkNodeDispatchWatched is BenchmarkNodeDispatch while a console
// watches: a goroutine drains the tap and counts each line's fan-out per
// protocol, as the console's feed does.
func BenchmarkNodeDispatchWatched(b *testing.B) {
	for _, mode := range []string{"one", "many16"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/subs=%d", mode, n), func(b *testing.B) {
				var w *Watcher
				done := make(chan struct{})
				benchDispatch(b, mode, n, func(node *Node) {
					w = node.Tap().Watch(4096)
					go func() {
						for {
							select {
							case l := <-w.Lines():
								_ = l.Fanout()
							case <-done:
								return
							}
						}
					}()
				})
				close(done)
				w.Close()
			})
		}
	}
}

func benchDispatch(b *testing.B, mode string, n int, setup func(*Node)) {
	data, _ := json.Marshal(map[string]any{"pad": strings.Repeat("x", 250),
		"x-triggered-by": map[string]string{"operation_id": "v1.project.attendees.store", "request_id": "abc"}})
	node := NewNode(nil, nil)
	if setup != nil {
		setup(node)
	}
	var written atomic.Int64
	frameLen := len(TextFrame(data))
	cfg := WriterConfig{
		Write: func(frames [][]byte) error { written.Add(int64(len(frames))); return nil },
		TryWrite: func(f []byte) (int, error) {
			written.Add(int64(len(f) / frameLen))
			return len(f), nil
		},
	}
	const channel = "dashboard.project.bench.attendees"
	for i := range n {
		node.Hub.Subscribe(channel, &benchMultiConn{benchConn{id: fmt.Sprint(i), w: NewWriter(cfg)}})
	}
	per := 1
	if mode == "many16" {
		per = 16
	}
	envs := make([]domain.Envelope, per)
	for j := range envs {
		envs[j] = domain.Envelope{ID: fmt.Sprint(j), Name: "AttendeeCreated", Scope: domain.Scope{Project: "bench", Family: "attendees"},
			Data: data, TriggeredBy: &domain.TriggeredBy{OperationID: "v1.project.attendees.store", RequestID: "abc"}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		node.DispatchBatch(envs)
	}
	want := int64(b.N) * int64(n) * int64(per)
	for written.Load() < want {
		time.Sleep(20 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
}
