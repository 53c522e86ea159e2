package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A process that ignores SIGTERM still ends at once on kill, with no grace
// period, and kill on an ended process is a no-op.
func TestProcessKill(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	p, err := startProcess(exec.Command(sh, "-c", "trap '' TERM; while :; do sleep 1; done"), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	if err = p.kill(); err != nil {
		t.Fatal(err)
	}
	if !p.exited() {
		t.Fatal("process still running after kill")
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("process ended with %v, want SIGKILL", p.cmd.ProcessState)
	}
	if err = p.kill(); err != nil {
		t.Fatalf("second kill: %v", err)
	}
	var none *process
	if err = none.kill(); err != nil {
		t.Fatalf("kill of no process: %v", err)
	}
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	n, err := peakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary holds at least a megabyte and far less than 64 GiB.
	if n < 1<<20 || n > 64<<30 {
		t.Fatalf("peak RSS of this process: %d bytes", n)
	}
}

// TestFreePortNeverRepeats: ports asked for one after the other, none
// listened on yet, are all different (two probes of the kernel in a row
// can return the same free port; a gateway was once configured on its
// homeserver's).
func TestFreePortNeverRepeats(t *testing.T) {
	const n = 2000
	seen := make(map[int]int, n)
	for i := range n {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if j, ok := seen[port]; ok {
			t.Fatalf("port %d returned by call %d and again by call %d", port, j, i)
		}
		seen[port] = i
	}
}
