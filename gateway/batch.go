package gateway

import "sync"

// Batch collects the connections that got frames while a backlog of events
// was dispatched together, so each is written once at the end (see
// Writer.Deliver). Safe for concurrent use by the hub's fan-out parts.
type Batch struct {
	mu      sync.Mutex
	writers []*Writer
	done    bool
}

// add records w; false once the batch has been flushed.
func (b *Batch) add(w *Writer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	b.writers = append(b.writers, w)
	return true
}

// take closes the batch and returns its writers.
func (b *Batch) take() []*Writer {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	ws := b.writers
	b.writers = nil
	return ws
}
