// Package mediatest helps tests and benchmarks of media transfers: a
// deterministic generated stream of any size that needs no memory, and a
// sampler of the peak heap while a transfer runs.
package mediatest

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"runtime"
	"sync"
	"time"
)

// Pattern is a reader of size deterministic pseudo-random bytes (xorshift
// from seed) that holds no buffer: a stream of any size for tests.
type Pattern struct {
	left  int64
	state uint64
	word  [8]byte
	used  int // bytes of word already returned
}

// NewPattern returns a reader of size bytes derived from seed.
func NewPattern(size int64, seed uint64) *Pattern {
	return &Pattern{left: size, state: seed | 1, used: 8}
}

// Read implements io.Reader.
func (p *Pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	n := len(b)
	if int64(n) > p.left {
		n = int(p.left)
	}
	// The bytes do not depend on how reads are cut: a partly used word is
	// finished by the next read.
	for i := 0; i < n; {
		if p.used == 8 {
			p.state ^= p.state << 13
			p.state ^= p.state >> 7
			p.state ^= p.state << 17
			binary.LittleEndian.PutUint64(p.word[:], p.state)
			p.used = 0
		}
		c := copy(b[i:n], p.word[p.used:])
		p.used += c
		i += c
	}
	p.left -= int64(n)
	return n, nil
}

// PatternBytes is the whole pattern in memory, for small test files.
func PatternBytes(size int, seed uint64) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(NewPattern(int64(size), seed), b)
	return b
}

// PatternSHA256 is the digest of a pattern, computed by streaming.
func PatternSHA256(size int64, seed uint64) [sha256.Size]byte {
	h := sha256.New()
	_, _ = io.Copy(h, NewPattern(size, seed))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// HeapSampler records the largest HeapInuse seen while it runs.
type HeapSampler struct {
	base uint64
	peak uint64
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
}

// StartHeapSampler runs a GC, notes the heap in use as the baseline and
// samples it every interval until Stop.
func StartHeapSampler(interval time.Duration) *HeapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &HeapSampler{base: ms.HeapInuse, peak: ms.HeapInuse, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *HeapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	s.peak = max(s.peak, ms.HeapInuse)
	s.mu.Unlock()
}

// Stop ends sampling and returns the peak heap growth over the baseline in
// bytes.
func (s *HeapSampler) Stop() uint64 {
	s.sample()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peak < s.base {
		return 0
	}
	return s.peak - s.base
}
