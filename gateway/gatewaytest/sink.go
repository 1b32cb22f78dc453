// Package gatewaytest has helpers for testing protocol adapters against a
// real gateway.Writer without a socket.
package gatewaytest

import (
	"sync"

	"switchboard/gateway"
)

// Sink collects, in order, every frame written by the Writers it makes.
type Sink struct {
	mu     sync.Mutex
	frames [][]byte
}

// Writer returns a Writer (drain path only, no inline writes) whose frames
// go to s. Several Writers may share one Sink.
func (s *Sink) Writer() *gateway.Writer {
	return gateway.NewWriter(gateway.WriterConfig{Write: func(frames [][]byte) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.frames = append(s.frames, frames...)
		return nil
	}})
}

// Frames returns the frames written so far. Close the Writers first
// (<-w.CloseWith(nil)) to be sure everything queued has been written.
func (s *Sink) Frames() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.frames...)
}
