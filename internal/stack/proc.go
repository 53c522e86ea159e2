package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago and
// that no earlier call in this process returned: a stack asks for its
// ports (homeserver, appservice, metrics) before anything listens on them,
// and the kernel may give the same free port to two probes in a row (it
// did: a gateway was configured on its homeserver's port and never
// listened).
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	// Probes stay open until one is new, so the kernel offers another port
	// each time.
	var probes []net.Listener
	defer func() {
		for _, ln := range probes {
			ln.Close()
		}
	}()
	for range maxPortProbes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("failed to find a free port: %w", err)
		}
		probes = append(probes, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		if _, ok := portsGiven[port]; ok {
			continue
		}
		if len(portsOrder) == maxPortsRemembered {
			delete(portsGiven, portsOrder[0])
			portsOrder = portsOrder[1:]
		}
		portsGiven[port] = struct{}{}
		portsOrder = append(portsOrder, port)
		return port, nil
	}
	return 0, fmt.Errorf("failed to find a free port: the kernel offered %d ports this process had already used", maxPortProbes)
}

const (
	// maxPortsRemembered bounds the ports FreePort remembers: far more
	// than one process's stacks use at once.
	maxPortsRemembered = 4096
	maxPortProbes      = 64
)

var (
	portsMu    sync.Mutex
	portsGiven = map[int]struct{}{}
	portsOrder []int
)

func loopbackURL(port int) string {
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// process is a child process with its output in a log file.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open log file: %w", err)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group, so a Ctrl-C in a terminal reaches the parent only and
	// the parent stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err = cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("failed to start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills the process.
func (p *process) stop(grace time.Duration) error {
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM and was killed", p.cmd.Path, grace)
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() error {
	if p == nil || p.exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		return fmt.Errorf("failed to kill %s: %w", p.cmd.Path, err)
	}
	<-p.done
	return nil
}

// waitHTTP polls url until it answers with want, the process exits, or ctx ends.
func waitHTTP(ctx context.Context, p *process, url string, want int) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to reach %s: %w", url, ctx.Err())
		case <-p.done:
			return fmt.Errorf("process exited before %s answered: %v", url, p.err)
		case <-tick.C:
		}
	}
}

// peakRSS reads a process's resident-memory high-water mark (VmHWM) from
// /proc, in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("failed to read the process status: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("unreadable VmHWM %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in the process status")
}
