package listener

import (
	"net"
	"time"
)

// WaitForDataMax is WaitForData with maxSilent in place of MaxSilent.
func WaitForDataMax(ln net.Listener, wait time.Duration, maxSilent int) net.Listener {
	return waitForData(ln, wait, maxSilent)
}
