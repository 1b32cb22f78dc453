package console

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/gateway"
)

// The feed turns the tap's lines into the JSON the page reads and hands
// them to every open stream. It watches the tap only while a stream is
// open here or a console elsewhere in the cluster holds a lease on this
// node (cluster.go), so nothing is encoded while nobody watches. It keeps
// the last RingSize lines, in memory only, for a page that (re)connects.

// tapBuffer is how many lines wait between the tap and the feed's
// goroutine: a burst of connects after a deploy is thousands of lines in
// a second; beyond this they are dropped at the tap (and counted).
const tapBuffer = 4096

// entry is one encoded line and its sequence number on this node's feed.
type entry struct {
	seq uint64
	b   []byte // the line's JSON, "seq" included
}

// stream is one open page's queue.
type stream struct {
	ch      chan entry
	dropped atomic.Uint64
}

type feed struct {
	tap    *gateway.Tap
	node   string
	buffer int
	now    func() time.Time

	mu      sync.Mutex
	seq     uint64
	ring    []entry // circular, len ≤ cap
	head    int     // next slot to write once full
	streams map[*stream]struct{}
	lease   time.Time // another node's console watches until then
	w       *gateway.Watcher
	stop    chan struct{} // closes the pump of w
	down    bool
	// forward, while leased, receives the lines this node's tap sees, for
	// the other nodes' consoles (cluster.go); nil otherwise.
	forward func(b []byte)
	// tapDropped is what closed watchers dropped, plus the live one's
	// Dropped: lines lost at the tap.
	tapDropped uint64
}

func newFeed(tap *gateway.Tap, node string, ringSize, buffer int, now func() time.Time) *feed {
	return &feed{tap: tap, node: node, buffer: buffer, now: now, ring: make([]entry, 0, ringSize),
		streams: map[*stream]struct{}{}}
}

// open registers a stream and returns it with the ring's lines after
// last, atomically: the stream gets every later line exactly once.
func (f *feed) open(last uint64) (*stream, []entry) {
	s := &stream{ch: make(chan entry, f.buffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	var replay []entry
	for i := range f.ring {
		e := f.ring[(f.head+i)%len(f.ring)]
		if e.seq > last {
			replay = append(replay, e)
		}
	}
	if f.down {
		return s, replay
	}
	f.streams[s] = struct{}{}
	f.watchLocked()
	return s, replay
}

// close forgets s.
func (f *feed) close(s *stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.streams, s)
	f.maybeStopLocked()
}

// watching reports how many streams are open here, and whether the tap is
// on (for this node's pages or another node's lease).
func (f *feed) watching() (streams int, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams), f.w != nil
}

// dropped is how many lines the tap could not hand to this feed.
func (f *feed) dropped() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.tapDropped
	if f.w != nil {
		n += f.w.Dropped()
	}
	return n
}

// leaseUntil keeps the tap on until t for another node's console, whose
// lines go to forward. It reports whether the lease is new (none ran).
func (f *feed) leaseUntil(t time.Time, forward func(b []byte)) (started bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false
	}
	started = !f.now().Before(f.lease)
	if t.After(f.lease) {
		f.lease = t
	}
	f.forward = forward
	f.watchLocked()
	return started
}

// expire turns the tap off once no stream is open and the lease ran out.
func (f *feed) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maybeStopLocked()
}

func (f *feed) watchLocked() {
	if f.w != nil {
		return
	}
	f.w = f.tap.Watch(tapBuffer)
	f.stop = make(chan struct{})
	go f.pump(f.w, f.stop)
}

func (f *feed) maybeStopLocked() {
	leased := f.now().Before(f.lease)
	if !leased {
		f.forward = nil
	}
	if f.w == nil || (!f.down && (len(f.streams) > 0 || leased)) {
		return
	}
	f.tapDropped += f.w.Dropped()
	f.w.Close()
	close(f.stop)
	f.w, f.stop = nil, nil
}

// shutdown stops watching for good (the server stops).
func (f *feed) shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	f.streams = map[*stream]struct{}{}
	f.maybeStopLocked()
}

// pump encodes what w sees until stop closes.
func (f *feed) pump(w *gateway.Watcher, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case l := <-w.Lines():
			f.add(encodeLine(l, f.node), true)
		}
	}
}

// add numbers b (a line's JSON without "seq"), keeps it in the ring and
// queues it on every stream; a stream whose queue is full loses it. local
// lines also go to the other nodes' consoles while one watches.
func (f *feed) add(b []byte, local bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if local && f.forward != nil {
		f.forward(b)
	}
	f.seq++
	e := entry{seq: f.seq, b: withSeq(b, f.seq)}
	if len(f.ring) < cap(f.ring) {
		f.ring = append(f.ring, e)
	} else if len(f.ring) > 0 {
		f.ring[f.head] = e
		f.head = (f.head + 1) % len(f.ring)
	}
	for s := range f.streams {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

// withSeq puts "seq":n first in the JSON object b.
func withSeq(b []byte, n uint64) []byte {
	out := make([]byte, 0, len(b)+24)
	out = append(out, `{"seq":`...)
	out = strconv.AppendUint(out, n, 10)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}
