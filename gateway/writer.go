package gateway

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/gorilla/websocket"
)

// WriterConfig configures a connection's Writer.
type WriterConfig struct {
	// Write sends a batch of complete frames, in order, in as few syscalls as
	// it can. It is only ever called from one goroutine at a time.
	Write func(frames [][]byte) error
	// OnOverflow is called once, in its own goroutine, when the queue is
	// full: the connection is too slow and must be dropped with its
	// protocol's reconnect code instead of growing memory.
	OnOverflow func()
	// OnError is called once, by the failing writer (the drain goroutine or
	// an inline Enqueue), when Write or TryWrite fails, also while the
	// writer is closing: a socket whose write failed is of no more use, and
	// whoever waits for a close frame on it should not wait longer. It must
	// not block.
	OnError func(error)
	// OnSlow, when set, is called at most once, when the writer gives up on
	// a client that cannot keep up: its queue overflowed (cause
	// CutQueueFull, just before OnOverflow, in the same goroutine) or a
	// write timed out (CutWriteTimeout, just before OnError) while the
	// writer was not closing. queued is the backlog in bytes at that
	// moment: the queue on overflow; the unwritten part of the timed-out
	// write and the queue behind it on a timeout. It is counted only then,
	// never on the write path. It must not block.
	OnSlow func(cause CutCause, queued int)
	// TryWrite, when set, writes one frame without blocking and reports how
	// many bytes went out (0 and no error: the socket buffer is full).
	// Enqueue uses it to write straight from the caller's goroutine when
	// nothing is queued: the hub then loops writes over all subscribers in
	// a few goroutines, instead of waking a goroutine per subscriber, whose
	// fan-out tail is several times longer (performance-anchors §6.2). What
	// does not go out at once is left to the drain goroutine.
	TryWrite func(frame []byte) (int, error)
	// MaxQueue is the most frames waiting at once. Zero means 1024.
	MaxQueue int
	// MaxBatch is the most frames handed to one Write. Zero means 64.
	MaxBatch int
}

// Writer is a connection's bounded outgoing queue. Enqueue never blocks the
// hub. No goroutine exists while the queue is empty, so idle connections cost
// no writer stack.
type Writer struct {
	cfg     WriterConfig
	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte
	running bool
	held    int    // Hold depth: frames queue but nothing is written
	batch   *Batch // the batch whose Flush will write the queue, if any
	closed  bool   // no more frames accepted
	final   bool   // close after the queue drains
	// partial: queue[0] is the unwritten tail of a frame whose head is
	// already on the wire (an inline write the socket took only part of).
	// An overflow must keep it: dropping it would splice the close frame
	// into the middle of that frame, and the client would read garbage
	// and then a reset instead of the close code.
	partial  bool
	overflow bool // the queue overflowed (and that cut was reported)
	// Counters for Stats, kept under mu where Deliver and the writes hold
	// it anyway, beside closed (which every Deliver reads): a connection's
	// own memory, never a cache line the fan-out goroutines share.
	delivered uint64 // frames queued by Deliver and DeliverMany
	sent      uint64 // bytes the socket took
	end       *End   // how the connection ended, once known
	// done is closed once a final writer has written everything; made
	// when the writer becomes final (a channel is 96 bytes of every idle
	// connection otherwise).
	done chan struct{}
}

// Counts are a Writer's counters (see Stats.Traffic).
type Counts struct {
	Deliveries uint64 // frames queued by Deliver and DeliverMany
	Bytes      uint64 // bytes the socket took, control frames included
}

// Counts returns the writer's counters so far.
func (w *Writer) Counts() Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Counts{Deliveries: w.delivered, Bytes: w.sent}
}

// End is how a connection ended, for its disconnect log line: the close
// code and reason of the first close frame queued (the server's, or its
// echo of the client's), or 1006 (abnormal closure) with the read or write
// error when the socket ended without one.
type End struct {
	Code   int
	Reason string
	// ByClient: the client closed (its close frame, or the socket went
	// away under the read loop); false when the server closed.
	ByClient bool
}

// End reports how the connection ended; ok is false while nobody has
// closed it.
func (w *Writer) End() (e End, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.end == nil {
		return End{}, false
	}
	return *w.end, true
}

// noteEnd records e unless an earlier end was recorded. The caller holds
// mu.
func (w *Writer) noteEnd(e End) {
	if w.end == nil {
		w.end = &e
	}
}

// noteReadEnd records that the read loop ended with err (nil: the adapter
// stopped reading), for a connection that ended without a close frame: the
// client vanished (EOF, reset) or went silent past a read deadline.
// A client's close frame that no close handler echoed through CloseEcho is
// recorded as the client's.
func (w *Writer) noteReadEnd(err error) {
	e := End{Code: CloseAbnormal, Reason: "read stopped"}
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		e = End{Code: ce.Code, Reason: ce.Text, ByClient: true}
	case err != nil:
		// A read deadline is the server giving up on a silent client;
		// anything else is the client's socket going away.
		e = End{Code: CloseAbnormal, Reason: "read: " + err.Error(), ByClient: !IsTimeout(err)}
	}
	w.mu.Lock()
	w.noteEnd(e)
	w.mu.Unlock()
}

// CloseAbnormal is the close code logged for a connection that ended
// without a close frame (RFC 6455 §7.4.1, 1006: never sent on the wire).
const CloseAbnormal = websocket.CloseAbnormalClosure

// closeFrameEnd finds the close frame in frames (server frames, unmasked,
// possibly several concatenated: ActionCable sends its disconnect message
// and the close frame as one) and returns its code and reason.
func closeFrameEnd(frames []byte) (End, bool) {
	for len(frames) >= 2 {
		op, n, h := frames[0]&0x0f, int(frames[1]&0x7f), 2
		switch n {
		case 126:
			if len(frames) < 4 {
				return End{}, false
			}
			n, h = int(binary.BigEndian.Uint16(frames[2:])), 4
		case 127:
			if len(frames) < 10 {
				return End{}, false
			}
			n, h = int(binary.BigEndian.Uint64(frames[2:])), 10
		}
		if n < 0 || len(frames) < h+n {
			return End{}, false
		}
		if op == opClose {
			p := frames[h : h+n]
			if len(p) < 2 {
				return End{Code: websocket.CloseNoStatusReceived}, true
			}
			return End{Code: int(binary.BigEndian.Uint16(p)), Reason: string(p[2:])}, true
		}
		frames = frames[h+n:]
	}
	return End{}, false
}

// NewWriter returns an idle Writer.
func NewWriter(cfg WriterConfig) *Writer {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 1024
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 64
	}
	return &Writer{cfg: cfg}
}

// Enqueue queues frame. It reports false when the writer is closed or the
// queue overflowed (the connection is then being dropped).
func (w *Writer) Enqueue(frame []byte) bool { return w.EnqueueMany([][]byte{frame}) }

// idle reports, with mu held, that a frame may be written inline now:
// nothing queued or held, no drain running, and a non-blocking write.
func (w *Writer) idle() bool {
	return !w.running && w.held == 0 && len(w.queue) == 0 && w.cfg.TryWrite != nil
}

// admit checks, with mu held, that one more frame may be queued. When not,
// it releases mu (and on overflow schedules OnOverflow) and reports false.
func (w *Writer) admit() bool {
	if w.closed {
		w.mu.Unlock()
		return false
	}
	if len(w.queue) >= w.cfg.MaxQueue {
		w.closed = true
		w.overflow = true
		queued := queuedBytes(w.queue)
		if w.partial {
			// Keep the tail of the frame already partly written; the
			// drain that is running writes it before the close frame.
			clear(w.queue[1:])
			w.queue = w.queue[:1]
		} else {
			w.queue = nil
		}
		w.mu.Unlock()
		if w.cfg.OnOverflow != nil || w.cfg.OnSlow != nil {
			go w.overflowed(queued)
		}
		return false
	}
	return true
}

// overflowed reports an overflow (see WriterConfig.OnSlow, OnOverflow), off
// the publisher's goroutine.
func (w *Writer) overflowed(queued int) {
	if w.cfg.OnSlow != nil {
		w.cfg.OnSlow(CutQueueFull, queued)
	}
	if w.cfg.OnOverflow != nil {
		w.cfg.OnOverflow()
	}
}

// Deliver queues a hub message's frame. Outside a batch it is Enqueue.
// Inside one (m was dispatched with a backlog of events behind it) an idle
// writer only queues the frame and joins the batch; the batch's Flush then
// writes every event queued for this connection with one write. Under
// load this is what keeps the cost at one syscall per connection per
// batch instead of per event.
func (w *Writer) Deliver(m *Message, frame []byte) bool {
	b := m.batch
	if b == nil {
		return w.enqueue([][]byte{frame}, true)
	}
	w.mu.Lock()
	if !w.admit() {
		return false
	}
	if w.batch == nil && !w.running && w.held == 0 && len(w.queue) == 0 {
		if !b.add(w) {
			// The batch was already flushed (a late redelivery).
			w.mu.Unlock()
			return w.enqueue([][]byte{frame}, true)
		}
		w.batch = b
	}
	// Otherwise a drain, a hold or an earlier batch will write it.
	w.queue = append(w.queue, frame)
	w.delivered++
	w.mu.Unlock()
	return true
}

// DeliverMany is EnqueueMany for publications: what it queues counts as
// deliveries (Counts), what Enqueue and EnqueueMany queue (replies,
// control frames) does not.
func (w *Writer) DeliverMany(frames [][]byte) bool { return w.enqueue(frames, true) }

// EnqueueMany queues frames, in order, as one unit: an idle writer sends
// them at once, joined into one non-blocking write (what a batch's Flush
// would do, without the second visit). It reports false when the writer is
// closed or the queue overflowed (the connection is then being dropped).
func (w *Writer) EnqueueMany(frames [][]byte) bool { return w.enqueue(frames, false) }

// enqueue is EnqueueMany; deliveries says whether frames are publications
// (counted in Counts).
func (w *Writer) enqueue(frames [][]byte, deliveries bool) bool {
	if len(frames) == 0 {
		return true
	}
	w.mu.Lock()
	if !w.admit() {
		return false
	}
	if deliveries {
		w.delivered += uint64(len(frames))
	}
	if !w.idle() {
		// Queue behind whatever waits; start a drain unless a drain or a
		// hold will write them.
		w.queue = append(w.queue, frames...)
		start := !w.running && w.held == 0
		if start {
			w.running = true
		}
		w.mu.Unlock()
		if start {
			go w.drain()
		}
		return true
	}
	// Nothing queued and no drain running: write inline. running keeps
	// other callers queueing behind these frames meanwhile.
	w.running = true
	w.mu.Unlock()
	if len(frames) == 1 {
		ok, _ := w.inline(frames[0])
		return ok
	}
	return w.inlineJoined(joinFrames(frames))
}

// flushBatch writes what a batch queued, as one non-blocking write when
// possible; the rest goes to the drain goroutine.
func (w *Writer) flushBatch() {
	w.mu.Lock()
	w.batch = nil
	if w.running || w.held > 0 || len(w.queue) == 0 {
		w.mu.Unlock()
		return // someone else writes the queue
	}
	w.running = true
	if w.cfg.TryWrite == nil {
		w.mu.Unlock()
		go w.drain()
		return
	}
	if len(w.queue) == 1 {
		buf := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[:0]
		w.mu.Unlock()
		w.inline(buf)
		return
	}
	bp, buf := joinFrames(w.queue)
	clear(w.queue)
	w.queue = w.queue[:0]
	w.mu.Unlock()
	w.inlineJoined(bp, buf)
}

// joinFrames concatenates frames into a pooled buffer for one write.
func joinFrames(frames [][]byte) (*[]byte, []byte) {
	bp := catPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, f := range frames {
		buf = append(buf, f...)
	}
	return bp, buf
}

// inlineJoined writes a joinFrames buffer inline (the caller has set
// running). The buffer goes back to the pool only if the socket took all
// of it (otherwise its tail is queued and still referenced).
func (w *Writer) inlineJoined(bp *[]byte, buf []byte) (ok bool) {
	ok, all := w.inline(buf)
	if all {
		putJoined(bp, buf)
	}
	return ok
}

// putJoined returns a joinFrames buffer nothing references any more to
// catPool, unless it grew past maxPooledCat.
func putJoined(bp *[]byte, buf []byte) {
	if cap(buf) <= maxPooledCat {
		*bp = buf[:0]
		catPool.Put(bp)
	}
}

// catPool holds buffers for concatenating a batch's frames: under load every
// busy connection needs one per batch, and allocating them made the garbage
// collector a visible share of the fan-out.
var catPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledCat is the largest buffer kept in catPool.
const maxPooledCat = 64 << 10

// Hold stops frames from leaving until release is called; they queue in
// order meanwhile. Adapters hold the writer while they queue a subscribe
// confirmation and join the hub: events published in between queue behind
// the confirmation, and the confirmation cannot reach the client before
// the subscription is in place (a client may publish as soon as it is
// confirmed and expects to see the result). A batch already being written
// finishes. release may be called once; holds nest.
func (w *Writer) Hold() (release func()) {
	w.mu.Lock()
	w.held++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.held--
			start := w.held == 0 && !w.running && len(w.queue) > 0
			if start {
				w.running = true
			}
			w.mu.Unlock()
			if start {
				go w.drain()
			}
		})
	}
}

// inline tries to write frame at once, then hands whatever is left (the
// frame's unwritten tail, frames queued meanwhile) to a drain goroutine.
// The caller has set running. ok is false when the writer failed; all
// reports that the socket took the whole frame (nothing references it).
func (w *Writer) inline(frame []byte) (ok, all bool) {
	n, err := w.cfg.TryWrite(frame)
	w.mu.Lock()
	w.sent += uint64(n)
	if err != nil {
		w.fail(err, len(frame)-n)
		return false, false
	}
	if n < len(frame) {
		// The rest of this frame must leave before anything queued after it.
		w.queue = append([][]byte{frame[n:]}, w.queue...)
		w.partial = n > 0
	}
	if len(w.queue) == 0 || w.held > 0 {
		w.running = false
		if w.final && len(w.queue) == 0 {
			close(w.done)
		}
		w.mu.Unlock()
		return true, n == len(frame)
	}
	w.mu.Unlock()
	go w.drain()
	return true, n == len(frame)
}

// fail marks the writer broken after a write error and reports it once.
// The caller holds mu (released here) and is the running writer; lost is
// what the failed write left unwritten.
func (w *Writer) fail(err error, lost int) {
	// A timeout while closing (shutdown, a protocol close) or after an
	// overflow is not a new slow-consumer cut.
	slow := w.cfg.OnSlow != nil && !w.final && !w.overflow && IsTimeout(err)
	queued := 0
	if slow {
		queued = lost + queuedBytes(w.queue)
	}
	w.closed = true
	w.queue = nil
	w.partial = false
	w.becomeFinal()
	w.running = false
	w.noteEnd(End{Code: CloseAbnormal, Reason: "write: " + err.Error()})
	close(w.done)
	w.mu.Unlock()
	if slow {
		w.cfg.OnSlow(CutWriteTimeout, queued)
	}
	if w.cfg.OnError != nil {
		w.cfg.OnError(err)
	}
}

// becomeFinal marks the writer final and makes its done channel. The
// caller holds mu.
func (w *Writer) becomeFinal() {
	w.final = true
	if w.done == nil {
		w.done = make(chan struct{})
	}
}

// queuedBytes sums the frames' lengths.
func queuedBytes(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

// CloseWith queues a last frame (e.g. a close frame), refuses further frames
// and returns a channel closed once everything queued has been written (or
// writing failed). Later calls return the same channel.
func (w *Writer) CloseWith(frame []byte) <-chan struct{} { return w.closeWith(frame, "", false) }

// CloseWithReason is CloseWith for a close whose reason is not in the close
// frame (ActionCable says it in a message before an empty close frame):
// reason is what the disconnect log line says.
func (w *Writer) CloseWithReason(frame []byte, reason string) <-chan struct{} {
	return w.closeWith(frame, reason, false)
}

// CloseEcho answers the client's close frame with code (RFC 6455 §5.5.1)
// as CloseWith does; the disconnect log line then says the client closed.
// Adapters call it from their close handler.
func (w *Writer) CloseEcho(code int) <-chan struct{} {
	return w.closeWith(CloseFrame(code, ""), "", true)
}

func (w *Writer) closeWith(frame []byte, reason string, byClient bool) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.final {
		return w.done
	}
	w.becomeFinal()
	w.closed = true
	if frame != nil {
		if e, ok := closeFrameEnd(frame); ok {
			if reason != "" {
				e.Reason = reason
			}
			e.ByClient = byClient
			w.noteEnd(e)
		}
		w.queue = append(w.queue, frame)
	}
	if !w.running {
		if len(w.queue) == 0 {
			close(w.done)
			return w.done
		}
		if w.held == 0 {
			w.running = true
			go w.drain()
		}
	}
	return w.done
}

// Queued is the number of frames waiting.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// drain writes batches until the queue is empty. Only one drain runs at a
// time (guarded by running).
func (w *Writer) drain() {
	for {
		w.mu.Lock()
		if w.held > 0 && len(w.queue) > 0 {
			// Release starts a new drain.
			w.running = false
			w.mu.Unlock()
			return
		}
		if len(w.queue) == 0 {
			w.running = false
			// An idle connection keeps no queue: the next drain, if any,
			// allocates again (a drain starts only when an inline write
			// could not be done).
			w.queue, w.spare = nil, nil
			if w.final {
				close(w.done)
			}
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.partial = false // the head leaves the queue with this batch
		whole := len(batch) <= w.cfg.MaxBatch
		if whole {
			// Swap in the spare slice so the hub appends elsewhere while we write.
			w.queue, w.spare = w.spare, nil
		} else {
			batch = batch[:w.cfg.MaxBatch:w.cfg.MaxBatch]
			w.queue = w.queue[w.cfg.MaxBatch:]
		}
		w.mu.Unlock()

		err := w.cfg.Write(batch)

		w.mu.Lock()
		if err != nil {
			w.fail(err, queuedBytes(batch)) // before the batch is cleared for reuse
			return
		}
		w.sent += uint64(queuedBytes(batch))
		if whole && w.spare == nil && cap(batch) <= 4*w.cfg.MaxBatch {
			clear(batch)
			w.spare = batch[:0]
		}
		w.mu.Unlock()
	}
}
