package remote_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
)

// waitFor fails the test if ch is not closed or sent on within 10 s.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestLanesOrderPerChatChatsSideBySide: a chat whose first event is stuck
// (its portal being created) keeps its later events behind it, in order,
// while another chat's events are all handled; Low stays before the stuck
// one until it ends, then passes everything.
func TestLanesOrderPerChatChatsSideBySide(t *testing.T) {
	var advanced []uint64
	var amu sync.Mutex
	l := remote.NewLanes(0, func(low uint64) {
		amu.Lock()
		advanced = append(advanced, low)
		amu.Unlock()
	})
	ctx := context.Background()
	release := make(chan struct{})
	var mu sync.Mutex
	var slow, fast []int
	if err := l.Go(ctx, "slow", func() bool {
		<-release
		mu.Lock()
		slow = append(slow, 0)
		mu.Unlock()
		return true
	}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := l.Go(ctx, "slow", func() bool {
			mu.Lock()
			slow = append(slow, i)
			mu.Unlock()
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	fastDone := make(chan struct{})
	for i := range 10 {
		if err := l.Go(ctx, "fast", func() bool {
			mu.Lock()
			fast = append(fast, i)
			mu.Unlock()
			if i == 9 {
				close(fastDone)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, fastDone, "the other chat's ten events while the first chat is stuck")
	mu.Lock()
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(fast, want) || len(slow) != 0 {
		t.Errorf("while the first chat is stuck: other chat %v (want %v), first chat %v (want none)", fast, want, slow)
	}
	mu.Unlock()
	if low := l.Low(); low != 0 {
		t.Errorf("Low = %d while task 0 has not ended, want 0", low)
	}
	if next := l.Next(); next != 16 {
		t.Errorf("Next = %d after 16 tasks, want 16", next)
	}
	close(release)
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if want := []int{0, 1, 2, 3, 4, 5}; !slices.Equal(slow, want) {
		t.Errorf("the stuck chat's events ran as %v, want %v", slow, want)
	}
	mu.Unlock()
	if low := l.Low(); low != 16 {
		t.Errorf("Low = %d once all 16 ended, want 16", low)
	}
	amu.Lock()
	if len(advanced) == 0 || slices.Max(advanced) != 16 {
		t.Errorf("advance saw %v, want it to reach 16", advanced)
	}
	amu.Unlock()
}

// TestLanesNotDoneStopsLow: a task not done (its connection ended) keeps
// Low before it for good, even when later tasks of other chats end;
// Wait still returns once they all ended.
func TestLanesNotDoneStopsLow(t *testing.T) {
	l := remote.NewLanes(0, nil)
	ctx := context.Background()
	for i, done := range []bool{true, true, false, true} {
		if err := l.Go(ctx, fmt.Sprint("chat", i), func() bool { return done }); err != nil {
			t.Fatal(err)
		}
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := l.Go(ctx, fmt.Sprint("other", i), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if low := l.Low(); low != 2 {
		t.Errorf("Low = %d after task 2 was not done, want 2", low)
	}
}

// TestLanesSpanBounds: with a span of 64 and the oldest task stuck, 64
// tasks are handed over and the next waits (until its context ends); once
// the oldest ends it goes through. A span is rounded up to 64.
func TestLanesSpanBounds(t *testing.T) {
	l := remote.NewLanes(50, nil)
	ctx := context.Background()
	release := make(chan struct{})
	if err := l.Go(ctx, "stuck", func() bool { <-release; return true }); err != nil {
		t.Fatal(err)
	}
	for i := range 63 {
		if err := l.Go(ctx, fmt.Sprint(i), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.Go(short, "next", func() bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a 65th task with the oldest of 64 stuck: %v, want it to wait", err)
	}
	handed := make(chan error, 1)
	ran := make(chan struct{})
	go func() { handed <- l.Go(ctx, "next", func() bool { close(ran); return true }) }()
	close(release)
	if err := waitFor(t, handed, "the 65th task handed over"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ran, "the 65th task run")
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if low := l.Low(); low != 65 {
		t.Errorf("Low = %d after 65 tasks, want 65", low)
	}
}

// TestLanesLeaveNoGoroutine: 1,000 chats with an event each leave no
// goroutine behind once handled.
func TestLanesLeaveNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	l := remote.NewLanes(0, nil)
	ctx := context.Background()
	if l.Busy() {
		t.Fatal("new lanes busy")
	}
	block := make(chan struct{})
	if err := l.Go(ctx, "blocked", func() bool { <-block; return true }); err != nil {
		t.Fatal(err)
	}
	if !l.Busy() {
		t.Error("lanes with a task running not busy")
	}
	close(block)
	for i := range 1000 {
		if err := l.Go(ctx, fmt.Sprint(i), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after 1,000 chats were handled, %d before", n, before)
	}
	if l.Busy() {
		t.Error("lanes busy after Wait")
	}
	if low := l.Low(); low != 1001 {
		t.Errorf("Low = %d, want 1001", low)
	}
}

// TestLanesRingWraps: 5,000 tasks over 7 chats through a span of 64 (the
// ring of ended tasks reused 78 times, tasks ending out of order across
// chats): every task runs once, each chat's in order, and Low ends at
// 5,000.
func TestLanesRingWraps(t *testing.T) {
	l := remote.NewLanes(64, nil)
	ctx := context.Background()
	var mu sync.Mutex
	last := map[string]int{}
	runs := 0
	for i := range 5000 {
		key := fmt.Sprint(i % 7)
		if err := l.Go(ctx, key, func() bool {
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := last[key]; ok && prev >= i {
				t.Errorf("chat %s ran task %d after %d", key, i, prev)
			}
			last[key] = i
			runs++
			if i%13 == 0 {
				runtime.Gosched()
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if low := l.Low(); low != 5000 || runs != 5000 {
		t.Errorf("Low = %d after %d runs, want 5000 and 5000", low, runs)
	}
}

// TestLanesSettle: idle lanes settle at once (no timer); lanes with a task
// running settle when it ends, or report the bound passed first.
func TestLanesSettle(t *testing.T) {
	clk := clocktest.New(time.Unix(1800000000, 0))
	l := remote.NewLanes(0, nil)
	if !l.Settle(clk, time.Minute) || clk.Timers() != 0 {
		t.Fatalf("idle lanes: not settled at once (%d timers)", clk.Timers())
	}
	block := make(chan struct{})
	if err := l.Go(context.Background(), "slow", func() bool { <-block; return true }); err != nil {
		t.Fatal(err)
	}
	res := make(chan bool, 1)
	go func() { res <- l.Settle(clk, time.Minute) }()
	for clk.Timers() == 0 {
		runtime.Gosched()
	}
	clk.Advance(time.Minute)
	if <-res {
		t.Fatal("settled while a task ran past the bound")
	}
	go func() { res <- l.Settle(clk, time.Minute) }()
	close(block)
	if !<-res {
		t.Error("not settled once the task ended")
	}
}
