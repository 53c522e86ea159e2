package clocktest

import (
	"testing"
	"time"
)

func TestManualMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := New(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now() = %v, want %v", c.Now(), start)
	}
	c.Advance(90 * time.Second)
	if want := start.Add(90 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("after Advance: %v, want %v", c.Now(), want)
	}
}

func TestManualTimersFireWhenReached(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(start)
	soon, later := c.After(time.Second), c.After(time.Minute)
	if n := c.Timers(); n != 2 {
		t.Fatalf("%d timers wait, want 2", n)
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-soon:
		t.Fatal("a 1 s timer fired after 999 ms")
	default:
	}
	c.Advance(time.Millisecond)
	if got := <-soon; !got.Equal(start.Add(time.Second)) {
		t.Fatalf("the timer fired with %v", got)
	}
	select {
	case <-later:
		t.Fatal("a 1 min timer fired after 1 s")
	default:
	}
	if n := c.Timers(); n != 1 {
		t.Fatalf("%d timers wait, want 1", n)
	}
	select {
	case <-c.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
}
