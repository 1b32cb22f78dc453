//go:build unix

package gateway

import (
	"syscall"
	"unsafe"
)

// rawIO is netIO's non-blocking single write to the socket. It writes
// inside RawConn.Control, which only pins the descriptor (a concurrent
// Close cannot recycle the number under us), rather than RawConn.Write,
// which also takes the descriptor's write lock and resets the poller's
// state and deadline on every call. Those touch two more cold cache lines
// per connection per fan-out: 11 % of the server's CPU per delivery at
// 5,000 subscribers (BENCHMARKS.md, session 5). The caller guarantees one
// writer at a time (see NetIO), so the call's arguments and results live
// in the struct, and the function handed to Control is bound once: a
// closure per write would be three allocations per delivery.
type rawIO struct {
	rc  syscall.RawConn
	do  func(fd uintptr)
	b   []byte
	n   int
	err error
}

// rawInit prepares the non-blocking write; false when c has no file
// descriptor (net.Pipe in tests).
func (io *netIO) rawInit() bool {
	sc, ok := io.c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	io.raw.rc = rc
	io.raw.do = io.raw.writeFD
	return true
}

// try writes what the socket takes now; a full socket buffer gives (0, nil).
func (io *netIO) try(b []byte) (int, error) {
	r := &io.raw
	r.b, r.n, r.err = b, 0, nil
	err := r.rc.Control(r.do)
	n, werr := r.n, r.err
	r.b, r.err = nil, nil // keep no frame alive
	if err != nil {
		return 0, err
	}
	return n, werr
}

// writeFD makes the write(2) a raw syscall: the socket is non-blocking, so
// the call never sleeps, and telling the scheduler about it (entersyscall
// and exitsyscall around every write, which also lets sysmon hand the P
// away mid-fan-out) cost ≈ 9 % of the server's CPU per delivery at 5,000
// subscribers (BENCHMARKS.md, session 12).
func (r *rawIO) writeFD(fd uintptr) {
	if len(r.b) == 0 {
		return
	}
	for {
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.b[0])), uintptr(len(r.b)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			if e != syscall.EAGAIN {
				r.err = e
			}
			return
		}
		r.n = int(m)
		return
	}
}
