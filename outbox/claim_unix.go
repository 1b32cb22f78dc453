//go:build unix

package outbox

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// claimFile holds an exclusive flock on path. The kernel drops it when the
// process dies, so a kill -9 never leaves a stale claim.
func claimFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("claim relay: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (SQLite file %s)", ErrClaimed, path[:len(path)-len(".lock")])
		}
		return nil, fmt.Errorf("claim relay: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
