package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// ErrTooLarge is matched (errors.Is) by every *TooLargeError.
var ErrTooLarge = errors.New("file too large")

// TooLargeError says a file went over a byte limit. Size is what was seen
// before stopping: the declared size when known up front, otherwise at
// least Limit+1.
type TooLargeError struct {
	Limit int64
	Size  int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("file too large: more than %s (limit %d bytes)", FormatSize(e.Limit), e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// spoolBufSize is the copy buffer of Spool: the only heap a transfer needs
// besides the caller's own buffers.
const spoolBufSize = 64 * 1024

// Spooled is a file body held in a private temporary file (mode 0600). It is
// written once and then read as many times as needed; Remove deletes it.
type Spooled struct {
	path string
	// Size is the number of bytes.
	Size int64
	// SHA256 is the digest of the content.
	SHA256 [sha256.Size]byte
	// Head holds the first bytes (up to SniffLen), for Sniff.
	Head []byte
}

// Path is where the body is on disk, for APIs that take a file name.
func (s *Spooled) Path() string { return s.path }

// SHA256Hex is the digest in lowercase hexadecimal.
func (s *Spooled) SHA256Hex() string { return hex.EncodeToString(s.SHA256[:]) }

// Open opens the body for reading from the start. Each call gives an
// independent reader; the caller closes it.
func (s *Spooled) Open() (*os.File, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("failed to open spooled file: %w", err)
	}
	return f, nil
}

// Remove deletes the body; calling it again is harmless.
func (s *Spooled) Remove() error {
	if s == nil || s.path == "" {
		return nil
	}
	err := os.Remove(s.path)
	s.path = ""
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove spooled file: %w", err)
	}
	return nil
}

// SpoolWriter is an io.Writer into a new Spooled file, for producers that
// push bytes (a downloader writing to an io.Writer). Writes beyond the limit
// fail with a *TooLargeError and leave nothing on disk once Abort or Finish
// is called. Not safe for concurrent writes.
type SpoolWriter struct {
	f     *os.File
	limit int64
	n     int64
	h     hash.Hash
	head  []byte
	err   error
}

// NewSpoolWriter creates the private temporary file in dir (os.TempDir()
// when empty). limit is the byte cap; limit <= 0 means no cap.
func NewSpoolWriter(dir string, limit int64) (*SpoolWriter, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	// os.CreateTemp opens with mode 0600.
	f, err := os.CreateTemp(dir, "passerelle-media-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create spool file: %w", err)
	}
	return &SpoolWriter{f: f, limit: limit, h: sha256.New(), head: make([]byte, 0, SniffLen)}, nil
}

// Write implements io.Writer.
func (w *SpoolWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.limit > 0 && w.n+int64(len(p)) > w.limit {
		w.err = &TooLargeError{Limit: w.limit, Size: w.n + int64(len(p))}
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	if room := SniffLen - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, n)]...)
	}
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("failed to write spool file: %w", err)
		return n, w.err
	}
	return n, nil
}

// Written is the number of bytes accepted so far.
func (w *SpoolWriter) Written() int64 { return w.n }

// Finish closes the file and returns it as a Spooled. After an error in
// Write, Finish removes the file and returns that error.
func (w *SpoolWriter) Finish() (*Spooled, error) {
	if w.err != nil {
		w.Abort()
		return nil, w.err
	}
	if err := w.f.Close(); err != nil {
		_ = os.Remove(w.f.Name())
		return nil, fmt.Errorf("failed to close spool file: %w", err)
	}
	s := &Spooled{path: w.f.Name(), Size: w.n, Head: w.head}
	w.h.Sum(s.SHA256[:0])
	return s, nil
}

// Abort closes and deletes the file.
func (w *SpoolWriter) Abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}

// Spool copies r into a private temporary file in dir, reading at most
// limit bytes (limit <= 0: no cap). More than limit bytes gives a
// *TooLargeError and no file. Memory use is a fixed copy buffer whatever the
// size. The context is checked between buffers.
func Spool(ctx context.Context, r io.Reader, dir string, limit int64) (*Spooled, error) {
	w, err := NewSpoolWriter(dir, limit)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, spoolBufSize)
	for {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return nil, err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				w.Abort()
				return nil, werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			w.Abort()
			return nil, fmt.Errorf("failed to read media: %w", rerr)
		}
	}
	return w.Finish()
}
