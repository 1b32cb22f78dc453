//go:build unix

package gateway

import (
	"errors"
	"net"
	"syscall"
)

// rawWriter returns a non-blocking single write to c's socket, or nil when
// c has no file descriptor. A full socket buffer gives (0, nil).
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
		// The callback returns true whatever happens: returning false would
		// make the runtime park this goroutine until the socket is writable,
		// which is exactly the blocking this path exists to avoid.
		err := rc.Write(func(fd uintptr) bool {
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
				return true
			}
		})
		if err != nil {
			return 0, err
		}
		return n, werr
	}
}
