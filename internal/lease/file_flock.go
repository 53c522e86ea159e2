//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package lease

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Exclusive takes an exclusive lock on the file path (created 0600 if
// missing) for the life of the process, or until Close. It fails with
// ErrLocked when another process holds it.
func Exclusive(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open the lock file: %w", err)
	}
	if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	return &File{f: f}, nil
}
