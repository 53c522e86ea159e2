// Package testlog gives tests a zerolog logger that writes to the test's
// log and drops what is written after the test ended. bridgev2 starts
// background goroutines (the disappearing-message loop) that can run their
// first step after a quick test stopped the bridge; testing panics on a
// log call after the test completed, which would fail the whole package.
package testlog

import (
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
)

// Writer forwards to the test's log until the test's cleanup runs.
type Writer struct {
	out  zerolog.TestWriter
	done atomic.Bool
}

// NewWriter returns a writer for t, closed at t's cleanup.
func NewWriter(t testing.TB) *Writer {
	w := &Writer{out: zerolog.NewTestWriter(t)}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done.Load() {
		return len(p), nil
	}
	return w.out.Write(p)
}
