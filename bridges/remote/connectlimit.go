package remote

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultConnectConcurrency is how many logins of one network may be
// connecting at the same time: at start every stored login connects, and a
// network outage ends every connection at once; without a bound the
// gateway opens all of them in the same instant (a thundering herd the
// network may answer with rate limits).
const DefaultConnectConcurrency = 8

// ConnectSlotTimeout is how long one connection attempt may hold its slot:
// an attempt that hangs (a dial that never answers) does not hold back the
// other logins longer than this.
const ConnectSlotTimeout = 30 * time.Second

// ConnectLimiter bounds the logins of a network that are connecting (from
// dialling to the first "connected") at the same time. A connected login
// holds no slot. The zero value and nil do not limit.
type ConnectLimiter struct {
	slots chan struct{}
}

// NewConnectLimiter allows n connections in progress at once (n < 1: no
// limit).
func NewConnectLimiter(n int) *ConnectLimiter {
	if n < 1 {
		return &ConnectLimiter{}
	}
	return &ConnectLimiter{slots: make(chan struct{}, n)}
}

// Acquire waits for a slot and returns the function that gives it back
// (idempotent: call it once connected, and again when the attempt ends),
// or ctx's error.
func (l *ConnectLimiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil || l.slots == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }, nil
}

// Jitter spreads d over [d/2, d): logins that lost their connection together
// do not all retry in the same instant.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}
