package remote_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/bridges/remote"
)

// TestConnectLimiterBounds: with 4 slots, 4 logins connect at once and a
// fifth waits until one of them is connected; then 50 logins all get
// through.
func TestConnectLimiterBounds(t *testing.T) {
	l := remote.NewConnectLimiter(4)
	var held []func()
	for range 4 {
		r, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fifth login connecting beside four: %v, want it to wait", err)
	}
	held[0]()
	held[0]() // a second release gives nothing back twice
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	r, err := l.Acquire(ctx2)
	if err != nil {
		t.Fatalf("a slot given back was not taken: %v", err)
	}
	ctx3, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel3()
	if _, err := l.Acquire(ctx3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a double release made room for a fifth login: %v", err)
	}
	r()
	for _, h := range held[1:] {
		h()
	}
	var done atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			release()
			done.Add(1)
		}()
	}
	wg.Wait()
	if done.Load() != 50 {
		t.Fatalf("%d of 50 logins got through", done.Load())
	}
}

// TestConnectLimiterWaitEnds: with every slot held, a login waiting for
// one stops waiting when it is disconnected (its context ends), and gets
// one as soon as a slot is given back.
func TestConnectLimiterWaitEnds(t *testing.T) {
	l := remote.NewConnectLimiter(1)
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting with every slot held and a cancelled context: %v, want context.Canceled", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	release()
	select {
	case err = <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting login never got the slot given back")
	}
	var nilLimiter *remote.ConnectLimiter
	if r, err := nilLimiter.Acquire(ctx); err != nil || r == nil {
		t.Fatalf("a nil limiter limits: %v", err)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := remote.Jitter(8 * time.Second); d < 4*time.Second || d >= 8*time.Second {
			t.Fatalf("Jitter(8s) = %s, want within [4s, 8s)", d)
		}
	}
	if d := remote.Jitter(0); d != 0 {
		t.Fatalf("Jitter(0) = %s", d)
	}
}
