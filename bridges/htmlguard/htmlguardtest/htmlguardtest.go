// Package htmlguardtest holds the hostile-input checks the formatters of both
// networks share in their tests: inputs of an exact size, and the check that
// a converter's allocations grow linearly with hostile HTML.
package htmlguardtest

import (
	"runtime"
	"strings"
	"testing"
)

// Fill repeats unit until the result is n bytes long.
func Fill(unit string, n int) string {
	s := strings.Repeat(unit, n/len(unit)+1)
	return s[:n]
}

// Allocated returns the bytes f allocates (after a warm-up call).
func Allocated(f func()) uint64 {
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Shape is a hostile HTML input made of k repetitions.
type Shape struct {
	Name string
	HTML func(k int) string
}

// linearK is the repetitions of a small input: 4k nested tags stay under the
// 512 levels x/net/html accepts.
const linearK = 60

// LinearAllocs compares the bytes convert allocates for k and 4k repetitions
// of each shape: linear work allocates about 4 times more, quadratic work
// (copying the text at every level) 16 times.
func LinearAllocs(t *testing.T, shapes []Shape, convert func(html string)) {
	t.Helper()
	for _, sh := range shapes {
		t.Run(sh.Name, func(t *testing.T) {
			measure := func(size int) uint64 {
				html := sh.HTML(size)
				return Allocated(func() { convert(html) })
			}
			small, big := measure(linearK), measure(4*linearK)
			if big > 6*small+4096 {
				t.Fatalf("allocated %d bytes for %d repetitions but %d for %d: faster than linear growth", small, linearK, big, 4*linearK)
			}
		})
	}
}
