//go:build unix

package gateway

import (
	"errors"
	"net"
	"syscall"
)

// rawWriter returns a non-blocking single write to c's socket, or nil when
// c has no file descriptor. A full socket buffer gives (0, nil).
//
// It writes inside RawConn.Control, which only pins the descriptor (a
// concurrent Close cannot recycle the number under us), rather than
// RawConn.Write, which also takes the descriptor's write lock and resets
// the poller's state and deadline on every call. Those touch two more
// cold cache lines per connection per fan-out: 11 % of the server's CPU per
// delivery at 5,000 subscribers (BENCHMARKS.md, session 5). The caller
// guarantees one writer at a time (see NetIO).
func rawWriter(c net.Conn) func([]byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (int, error) {
		var n int
		var werr error
		err := rc.Control(func(fd uintptr) {
			for {
				m, e := syscall.Write(int(fd), b)
				if e == syscall.EINTR {
					continue
				}
				if m > 0 {
					n = m
				}
				if e != nil && !errors.Is(e, syscall.EAGAIN) {
					werr = e
				}
				return
			}
		})
		if err != nil {
			return 0, err
		}
		return n, werr
	}
}
