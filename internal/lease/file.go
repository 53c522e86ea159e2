package lease

import (
	"errors"
	"os"
)

// ErrLocked is Exclusive's error when another process holds the lock.
var ErrLocked = errors.New("another process holds the lock")

// File is a held lock file. The lock ends with the process (a crash frees
// it too) or with Close.
type File struct {
	f *os.File
}

// Close releases the lock.
func (l *File) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	return l.f.Close()
}
