package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// Linux has exported 100 to user space on every architecture since 2.6.
const clockTicks = 100

// ProcessCPU is the CPU time (user + system, all threads, children not
// included) a process has used since it started, from /proc/<pid>/stat.
// Its resolution is one clock tick (10 ms).
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("failed to read the process CPU time: %w", err)
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime + stime (fields 14 and 15) from a /proc/<pid>/stat
// line. The command name (field 2) is in parentheses and may hold spaces.
func parseStatCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("unreadable /proc stat line: no command name")
	}
	fields := strings.Fields(stat[end+1:])
	// fields[0] is field 3 (state): utime is field 14, stime 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("unreadable /proc stat line: %d fields after the command", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unreadable /proc stat CPU field %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// WaitCPUIdle waits until the CPU time of every process in pids has not
// moved for quiet (sampled every poll), and returns their CPU times at that
// moment. It gives up with an error, and the times it last read, when ctx
// ends first.
func WaitCPUIdle(ctx context.Context, pids []int, quiet, poll time.Duration) ([]time.Duration, error) {
	last := make([]time.Duration, len(pids))
	read := func() error {
		for i, pid := range pids {
			t, err := ProcessCPU(pid)
			if err != nil {
				return err
			}
			last[i] = t
		}
		return nil
	}
	if err := read(); err != nil {
		return nil, err
	}
	prev := append([]time.Duration(nil), last...)
	since := time.Now()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("processes never idle for %s: %w", quiet, ctx.Err())
		case <-tick.C:
		}
		if err := read(); err != nil {
			return nil, err
		}
		moved := false
		for i := range last {
			if last[i] != prev[i] {
				moved = true
			}
		}
		if moved {
			copy(prev, last)
			since = time.Now()
		} else if time.Since(since) >= quiet {
			return last, nil
		}
	}
}

// Machine describes the host a measurement ran on.
type Machine struct {
	Cores    int    `json:"cores"`
	CPUModel string `json:"cpu_model"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Kernel   string `json:"kernel,omitempty"`
}

// ThisMachine reads the number of usable cores and the CPU model
// (/proc/cpuinfo).
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// PID is the Dendrite process's ID, 0 when it is not running.
func (d *Dendrite) PID() int {
	if d == nil || d.proc == nil || d.proc.exited() {
		return 0
	}
	return d.proc.cmd.Process.Pid
}

// PID is the gateway process's ID, 0 when it is not running.
func (g *Gateway) PID() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc == nil || g.proc.exited() {
		return 0
	}
	return g.proc.cmd.Process.Pid
}

// PeakRSS is the most memory the Dendrite process has held resident since
// it started (VmHWM), in bytes.
func (d *Dendrite) PeakRSS() (int64, error) {
	pid := d.PID()
	if pid == 0 {
		return 0, errors.New("Dendrite is not running")
	}
	return peakRSS(pid)
}
