package memtrim

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/clock"
)

// fakeProcess is a process whose CPU time and free heap the test sets.
type fakeProcess struct {
	cpu   time.Duration
	free  uint64
	trims int
}

func (p *fakeProcess) trimmer(c clock.Clock) *Trimmer {
	return &Trimmer{Clock: c, Every: 10 * time.Second, MinFree: 16 << 20, IdleShare: 0.02,
		cpuTime:  func() time.Duration { return p.cpu },
		freeHeap: func() uint64 { return p.free },
		trim:     func() { p.trims++; p.free = 0; p.cpu += 30 * time.Millisecond },
	}
}

// The trimmer returns free memory once the process is idle, and only once
// per peak; never while the process works.
func TestTrimsOnlyWhenIdleAfterAPeak(t *testing.T) {
	p := &fakeProcess{}
	tr := p.trimmer(nil)
	tr.defaults()
	last := p.cpu

	// Busy with a peak of free heap: 1 s of CPU in a 10 s period.
	p.free = 64 << 20
	p.cpu += time.Second
	if last = tr.look(last); p.trims != 0 {
		t.Fatal("trimmed while the process was working")
	}
	// Idle (100 ms in 10 s: 1%): trimmed.
	p.cpu += 100 * time.Millisecond
	if last = tr.look(last); p.trims != 1 || p.free != 0 {
		t.Fatalf("idle with 64 MiB free: %d trims, %d bytes left free; want 1 trim", p.trims, p.free)
	}
	// Still idle, little free memory: the trim's own collection does not
	// count as work, and nothing is trimmed again.
	p.free = 1 << 20
	for range 5 {
		last = tr.look(last)
	}
	if p.trims != 1 {
		t.Fatalf("%d trims while idle with 1 MiB free; want none after the first", p.trims)
	}
	// Idle, but less than the minimum free: nothing.
	p.free = 15 << 20
	if tr.look(last); p.trims != 1 {
		t.Fatal("trimmed with less free heap than the minimum")
	}
}

// stepClock hands the test each wait the trimmer starts: the test ends a
// period by sending on it.
type stepClock struct{ waits chan chan time.Time }

func (c stepClock) Now() time.Time { return time.Unix(0, 0) }

func (c stepClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- ch
	return ch
}

// Run looks once per period of its clock, and stops with its context.
func TestRunLooksEveryPeriod(t *testing.T) {
	c := stepClock{waits: make(chan chan time.Time)}
	p := &fakeProcess{free: 64 << 20}
	tr := p.trimmer(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	nextWait := func() chan time.Time {
		select {
		case w := <-c.waits:
			return w
		case <-time.After(5 * time.Second):
			t.Fatal("the trimmer never waited on its clock")
			return nil
		}
	}
	first := nextWait()
	if p.trims != 0 {
		t.Fatal("trimmed before the first period ended")
	}
	first <- time.Unix(10, 0)
	nextWait() // the second period has begun: the first one was looked at
	if p.trims != 1 {
		t.Fatalf("%d trims after one idle period with 64 MiB free; want 1", p.trims)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

var sink [][]byte

// With the process's own figures, a trim gives back a peak's freed heap.
func TestTrimReturnsTheFreedHeap(t *testing.T) {
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC()
	tr := &Trimmer{MinFree: 16 << 20, cpuTime: func() time.Duration { return 0 }}
	tr.defaults()
	before := freeHeap()
	if before < 16<<20 {
		t.Skipf("the runtime already returned the freed heap (%d MiB free)", before>>20)
	}
	tr.look(0)
	if after := freeHeap(); after > 4<<20 {
		t.Fatalf("%d MiB free before the trim, %d MiB after; want under 4", before>>20, after>>20)
	}
}
