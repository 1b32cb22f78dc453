//go:build !unix

package gateway

import "net"

// rawWriter has no non-blocking write here: frames go through the drain
// goroutine only.
func rawWriter(net.Conn) func([]byte) (int, error) { return nil }
