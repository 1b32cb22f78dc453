//go:build !unix

package gateway

// rawIO is empty here: there is no non-blocking write, and frames go
// through the drain goroutine only.
type rawIO struct{}

func (io *netIO) rawInit() bool { return false }

func (io *netIO) try([]byte) (int, error) { return 0, nil }
