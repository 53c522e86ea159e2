package gate

import (
	"testing"
	"time"
)

func TestExpiryInterval(t *testing.T) {
	for _, c := range []struct {
		name          string
		interval, ttl time.Duration
		want          time.Duration
	}{
		{"default TTL keeps the interval", time.Minute, DefaultApprovalTTL, time.Minute},
		{"TTL of a few minutes keeps the interval", time.Minute, 10 * time.Minute, time.Minute},
		{"short TTL: a quarter of it", time.Minute, 20 * time.Second, 5 * time.Second},
		{"very short TTL: at least a second", time.Minute, 2 * time.Second, time.Second},
		{"switched off stays off", 0, 5 * time.Second, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := expiryInterval(c.interval, c.ttl); got != c.want {
				t.Errorf("expiryInterval(%s, %s) = %s, want %s", c.interval, c.ttl, got, c.want)
			}
		})
	}
}
