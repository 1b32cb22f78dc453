//go:build linux

package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// Reading by readiness (see socket.go). A connection is registered with
// one of a few pollers, each a goroutine waiting in epoll_wait on its own
// epoll instance. The runtime's netpoller keeps its own registration of the
// descriptor (used by the Writer's blocking writes); epoll allows both.
//
// Registrations are EPOLLONESHOT, so exactly one goroutine owns a
// connection's read state at a time: the poller from the event until it
// re-arms, or a resume goroutine while a full Inbox makes the connection
// wait. Re-arming happens under the poller's mutex, which the poller takes
// to find the connection of an event, so the hand-over is ordered for the
// race detector as it is for the kernel.
//
// The libraries made for this (gnet, nbio, netpoll) each take the socket
// over: they read and write it themselves, or dup and close the runtime's
// descriptor. Switchboard keeps gorilla's handshake and its own Writer, and
// only needs to know when a socket is readable, which x/sys/unix gives.

// pollReadSize is each poller's read buffer: one read takes what a client
// sent since the last one; an incomplete frame's bytes are copied out to the
// connection, and only then does it hold memory of its own.
const pollReadSize = 64 << 10

// pollReadsPerWake bounds the reads one readiness event gets, so a client
// that sends without pause cannot starve the poller's other connections;
// level-triggered epoll reports what is left on the next round.
const pollReadsPerWake = 8

type poller struct {
	epfd   int
	mu     sync.Mutex
	conns  map[int32]*pollConn
	nextID int32
	buf    []byte
}

var pollers struct {
	once sync.Once
	list []*poller
	next atomic.Uint32
}

// pickPoller returns a poller, starting them on first use; nil when epoll
// is unavailable (the goroutine reader is used then).
func pickPoller() *poller {
	pollers.once.Do(func() {
		n := runtime.GOMAXPROCS(0)
		if n > 8 {
			n = 8
		}
		for range n {
			fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			if err != nil {
				slog.Warn("epoll unavailable: reading connections with a goroutine each", "err", err)
				return
			}
			p := &poller{epfd: fd, conns: map[int32]*pollConn{}, buf: make([]byte, pollReadSize)}
			pollers.list = append(pollers.list, p)
			go p.run()
		}
	})
	if len(pollers.list) == 0 {
		return nil
	}
	return pollers.list[pollers.next.Add(1)%uint32(len(pollers.list))]
}

func (p *poller) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if !errors.Is(err, unix.EINTR) {
				slog.Error("epoll_wait failed", "err", err)
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		for i := range n {
			p.mu.Lock()
			pc := p.conns[events[i].Fd]
			p.mu.Unlock()
			if pc != nil {
				pc.readable()
			}
		}
	}
}

// ctl adds or re-arms pc; see the comment at the top for why under mu.
func (p *poller) ctl(pc *pollConn, op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: pc.id}
	var cerr error
	p.mu.Lock()
	err := pc.rc.Control(func(fd uintptr) { cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev) })
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return cerr
}

// add registers pc under a fresh id.
func (p *poller) add(pc *pollConn) bool {
	p.mu.Lock()
	for {
		p.nextID++
		if p.nextID <= 0 {
			p.nextID = 1
		}
		if _, used := p.conns[p.nextID]; !used {
			break
		}
	}
	pc.id = p.nextID
	p.conns[pc.id] = pc
	p.mu.Unlock()
	if err := p.ctl(pc, unix.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.conns, pc.id)
		p.mu.Unlock()
		return false
	}
	return true
}

func (p *poller) remove(pc *pollConn) {
	p.mu.Lock()
	delete(p.conns, pc.id)
	_ = pc.rc.Control(func(fd uintptr) { _ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	p.mu.Unlock()
}

// pollConn is one connection's read state. Apart from lastRead and
// timedOut it is touched only by its current owner (see above).
type pollConn struct {
	p        *poller
	id       int32
	timedOut atomic.Bool
	stop     bool // Stopped said so
	bigSeen  bool // a message was too big: lingering
	rc       syscall.RawConn
	nc       net.Conn
	w        *Writer
	cfg      ReadConfig
	in       *Inbox
	parser   frameParser
	x        *pollExtra // nil until needed
	idle     *time.Timer
	lastRead atomic.Int64
}

// pollExtra is the read state an idle connection does not need, allocated
// the first time it is: pollConn is then 240 bytes instead of 320 of every
// idle connection (BENCHMARKS.md, "Session 10").
type pollExtra struct {
	pending []byte // bytes of an incomplete frame
	blocked []byte // a message the full Inbox has not taken yet
	endErr  error
	linger  *time.Timer
}

func (pc *pollConn) extra() *pollExtra {
	if pc.x == nil {
		pc.x = &pollExtra{}
	}
	return pc.x
}

// endErr is how the client ended the connection (its close frame, a
// protocol error), if it did.
func (pc *pollConn) endErr() error {
	if pc.x == nil {
		return nil
	}
	return pc.x.endErr
}

func servePolled(ws *websocket.Conn, w *Writer, cfg ReadConfig, in *Inbox) bool {
	nc := ws.NetConn()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	p := pickPoller()
	if p == nil {
		return false
	}
	pc := &pollConn{p: p, rc: rc, nc: nc, w: w, cfg: cfg, in: in, parser: frameParser{limit: cfg.Limit}}
	if cfg.OnActivity != nil {
		cfg.OnActivity()
	}
	if cfg.IdleTimeout > 0 {
		pc.lastRead.Store(time.Now().UnixNano())
		pc.idle = time.AfterFunc(cfg.IdleTimeout, pc.checkIdle)
	}
	if !p.add(pc) {
		if pc.idle != nil {
			pc.idle.Stop()
		}
		return false
	}
	return true
}

// read is one non-blocking read; (0, nil) is end-of-file.
func (pc *pollConn) read(buf []byte) (n int, err error) {
	cerr := pc.rc.Control(func(fd uintptr) {
		for {
			n, err = syscall.Read(int(fd), buf)
			if err != syscall.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

// readable runs on the poller when the socket has something to read.
func (pc *pollConn) readable() {
	buf := pc.p.buf
	for range pollReadsPerWake {
		n, err := pc.read(buf)
		if n > 0 {
			if pc.cfg.IdleTimeout > 0 {
				pc.lastRead.Store(time.Now().UnixNano())
			}
			switch pc.consume(buf[:n]) {
			case feedStop:
				pc.finish(pc.endErr())
				return
			case feedPause:
				go pc.resume()
				return
			}
			if n < len(buf) {
				break // most likely drained; re-arming reports it if not
			}
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err == nil {
			err = io.EOF
		}
		if pc.timedOut.Load() {
			err = os.ErrDeadlineExceeded
		}
		pc.finish(err)
		return
	}
	pc.rearm()
}

func (pc *pollConn) rearm() {
	if err := pc.p.ctl(pc, unix.EPOLL_CTL_MOD); err != nil {
		pc.finish(err)
	}
}

// consume parses b after the bytes already pending. It never keeps b
// (the poller's buffer): an incomplete frame is copied out.
func (pc *pollConn) consume(b []byte) feedStatus {
	data, own := b, false
	if pc.x != nil && len(pc.x.pending) > 0 {
		pc.x.pending = append(pc.x.pending, b...)
		data, own = pc.x.pending, true
	}
	n, st := pc.parser.feed(data, pc)
	switch rest := data[n:]; {
	case len(rest) == 0:
		if pc.x != nil {
			pc.x.pending = nil
		}
	case own:
		pc.x.pending = append(pc.x.pending[:0], rest...)
	default:
		pc.extra().pending = append([]byte(nil), rest...)
	}
	if pc.stop {
		return feedStop
	}
	return st
}

// resume waits, on a goroutine of its own, for the Inbox to take the
// message it refused, parses what is pending and hands the connection
// back to the poller.
func (pc *pollConn) resume() {
	for {
		if x := pc.x; x != nil && x.blocked != nil {
			pc.in.Push(x.blocked)
			x.blocked = nil
		}
		switch pc.consume(nil) {
		case feedPause:
			continue
		case feedStop:
			pc.finish(pc.endErr())
			return
		}
		pc.rearm()
		return
	}
}

// finish ends the read side: the poller forgets the connection, and once
// the Inbox has run every message OnEnd gets err.
func (pc *pollConn) finish(err error) {
	pc.p.remove(pc)
	if pc.idle != nil {
		pc.idle.Stop()
	}
	if pc.x != nil && pc.x.linger != nil {
		pc.x.linger.Stop()
	}
	if pc.bigSeen {
		err = ErrMessageTooBig
	} else {
		pc.w.noteReadEnd(err)
	}
	pc.x, pc.parser.msg = nil, nil
	go func() {
		pc.in.Wait()
		pc.cfg.OnEnd(err)
	}()
}

func (pc *pollConn) activity() {
	if pc.cfg.OnActivity != nil {
		pc.cfg.OnActivity()
	}
}

// checkIdle ends a connection silent for IdleTimeout (a timer: no
// goroutine waits meanwhile).
func (pc *pollConn) checkIdle() {
	idle := time.Since(time.Unix(0, pc.lastRead.Load()))
	if idle < pc.cfg.IdleTimeout {
		pc.idle.Reset(pc.cfg.IdleTimeout - idle)
		return
	}
	pc.timedOut.Store(true)
	Shutdown(pc.nc)
}

// The frameSink side, called by feed on the owner.

func (pc *pollConn) message(data []byte) bool {
	pc.activity()
	if pc.cfg.Stopped != nil && pc.cfg.Stopped() {
		pc.stop = true
		return false
	}
	msg := append([]byte(nil), data...) // data is the poller's buffer
	if !pc.in.TryPush(msg) {
		pc.extra().blocked = msg
		return false
	}
	return true
}

func (pc *pollConn) ping(payload []byte) {
	pc.activity()
	pc.w.Enqueue(PongFrame(payload))
}

func (pc *pollConn) pong() { pc.activity() }

func (pc *pollConn) closed(code int, text string) {
	_ = EchoClose(pc.w)(code, text)
	pc.extra().endErr = &websocket.CloseError{Code: code, Text: text}
}

func (pc *pollConn) protocolError(reason string) {
	pc.w.CloseWith(CloseFrame(websocket.CloseProtocolError, reason))
	pc.extra().endErr = errors.New("websocket: " + reason)
}

// tooBig answers with 1009 and lingers (see Linger): the parser discards
// what the client still sends until its close frame, lingerBytes or
// lingerTimeout.
func (pc *pollConn) tooBig() {
	pc.bigSeen = true
	pc.w.CloseWith(CloseFrame(CloseTooBig, pc.cfg.TooBig))
	nc := pc.nc
	pc.extra().linger = time.AfterFunc(lingerTimeout, func() { Shutdown(nc) })
}

// shutdownFD shuts c down both ways (see Shutdown); false when c has no
// descriptor.
func shutdownFD(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// An error (closed already, or not connected any more) leaves nothing
	// to shut down: the read side sees the end either way.
	_ = rc.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	return true
}
