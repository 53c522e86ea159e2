// Package memtrim gives the Go heap's free memory back to the kernel once
// the gateway has gone idle after a peak.
//
// After a burst (a thousand contacts typing after a restart, a flood, a
// backfill) the Go runtime keeps the heap it grew: the collector lets the
// heap reach twice what is live before it runs, and its scavenger returns
// only what lies above that goal. An idle gateway thus keeps up to its live
// heap again in freed memory, for hours: measured on the cold-start bench,
// 38.7 KiB of freed heap per loaded portal beside 14.9 KiB live
// (passerelle-bench -scenario coldstart, README "Cold start and idle
// memory"). The trimmer looks every period: if the process used almost no
// CPU since its last look and the free heap is at least MinFree, it
// collects and returns the free memory (debug.FreeOSMemory). Busy, it does
// nothing; idle with little free memory, nothing either, so an idle
// gateway is trimmed once per peak, not once per period.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/internal/clock"
)

// Defaults of Trimmer's settings.
const (
	// DefaultEvery is how often the trimmer looks.
	DefaultEvery = 10 * time.Second
	// DefaultMinFree is the free heap below which nothing is returned.
	DefaultMinFree = 16 << 20
	// DefaultIdleShare is the share of one core the process may have used
	// since the last look and still be idle.
	DefaultIdleShare = 0.02
)

// Trimmer returns free heap memory when the process is idle. The zero
// value uses the defaults, the system clock and the process's own figures.
type Trimmer struct {
	Clock     clock.Clock
	Every     time.Duration
	MinFree   uint64
	IdleShare float64
	Log       zerolog.Logger

	// The process's figures and the trim, replaced in tests.
	cpuTime  func() time.Duration
	freeHeap func() uint64
	trim     func()
}

// Run looks every period until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	t.defaults()
	c := clock.Or(t.Clock)
	last := t.cpuTime()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.After(t.Every):
		}
		last = t.look(last)
	}
}

// look decides on one period: last is the process's CPU time at the
// previous look; it returns the CPU time to compare the next period with
// (after the trim, so that its own collection does not count as work).
func (t *Trimmer) look(last time.Duration) time.Duration {
	now := t.cpuTime()
	idle := now-last <= time.Duration(float64(t.Every)*t.IdleShare)
	if !idle {
		return now
	}
	free := t.freeHeap()
	if free < t.MinFree {
		return now
	}
	start := time.Now()
	t.trim()
	t.Log.Debug().Uint64("free_mib", free>>20).Uint64("free_after_mib", t.freeHeap()>>20).
		Dur("took", time.Since(start)).Msg("Idle: returned the free heap to the system")
	return t.cpuTime()
}

func (t *Trimmer) defaults() {
	if t.Every <= 0 {
		t.Every = DefaultEvery
	}
	if t.MinFree == 0 {
		t.MinFree = DefaultMinFree
	}
	if t.IdleShare <= 0 {
		t.IdleShare = DefaultIdleShare
	}
	if t.cpuTime == nil {
		t.cpuTime = ProcessCPU
	}
	if t.freeHeap == nil {
		t.freeHeap = freeHeap
	}
	if t.trim == nil {
		t.trim = debug.FreeOSMemory
	}
}

// ProcessCPU is the process's user and system CPU time so far.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// freeHeapMetric is the heap memory that is free and not yet returned.
const freeHeapMetric = "/memory/classes/heap/free:bytes"

func freeHeap() uint64 {
	s := []metrics.Sample{{Name: freeHeapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
