package whatsapp

import (
	"time"

	"github.com/passerelle/passerelle/internal/clock"
)

// Clock is the time source of reconnection backoff; tests use a fake one.
type Clock = clock.Clock

// RealClock is the system clock.
type RealClock = clock.Real

// Reconnection backoff: 2 s doubling up to 5 min.
const (
	minBackoff = 2 * time.Second
	maxBackoff = 5 * time.Minute
)

// Backoff returns the wait before reconnection attempt n (1-based).
func Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := minBackoff
	for i := 1; i < attempt; i++ {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return d
}
