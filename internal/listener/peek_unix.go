//go:build unix

package listener

import (
	"net"
	"syscall"
	"time"
)

// hasData waits up to wait for c to have a byte to read, without reading
// it: a peek in the runtime's poller, so a silent connection costs a
// parked goroutine, not a thread. It is false when the client closed
// first or wait ran out.
func hasData(c net.Conn, wait time.Duration) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return false
	}
	data := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // not yet: wait for readiness
			}
			data = err == nil && n > 0 // n == 0: the client closed
			return true
		}
	})
	if err != nil || !data {
		return false
	}
	return c.SetReadDeadline(time.Time{}) == nil
}
