package stack

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 50 ticks.
	line := "1234 (dendrite (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 1000 100000 200 18446744073709551615"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Fatalf("CPU time %s, want %s", got, want)
	}
	if _, err = parseStatCPU("1234 (short) S 1 2"); err == nil {
		t.Fatal("a truncated stat line was accepted")
	}
}

// This process's CPU time grows while it spins, and an idle wait on it
// returns once it stops.
func TestProcessCPUOfThisProcess(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		now, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %s while spinning for 5 s", now)
		}
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
	}
	m := ThisMachine()
	if m.Cores < 1 || m.OS == "" {
		t.Fatalf("machine %+v", m)
	}
}

func TestWaitCPUIdleGivesUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WaitCPUIdle(ctx, []int{os.Getpid()}, time.Hour, time.Millisecond); err == nil {
		t.Fatal("an idle wait with an ended context returned no error")
	}
}
