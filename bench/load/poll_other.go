//go:build !linux

package load

import "fmt"

// clientPoll is empty where there is no client poller (poll_linux.go).
type clientPoll struct{}

// SetReadMode accepts both names; without epoll every client is read by a
// goroutine of its own.
func SetReadMode(mode string) error {
	if mode != "goroutine" && mode != "epoll" {
		return fmt.Errorf("read mode %q: want epoll or goroutine", mode)
	}
	return nil
}

func (c *Client) startReader(proto Protocol, fc *framedConn) { go c.read(proto, fc) }

func (c *Client) polled() bool { return false }

func (c *Client) stopPolling() {}
