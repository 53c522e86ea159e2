package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"time"
)

// Twin returns a second instance of g: the same config, registration and
// database, as an operator starts a standby with the same config file. Its
// readable output goes to its own file; the JSON log file is the config's,
// shared with g.
func (g *Gateway) Twin(name string) *Gateway {
	return &Gateway{
		Dir:                          g.Dir,
		ConfigPath:                   g.ConfigPath,
		RegistrationPath:             g.RegistrationPath,
		DoublePuppetRegistrationPath: g.DoublePuppetRegistrationPath,
		LogPath:                      g.LogPath,
		StdoutPath:                   filepath.Join(g.Dir, "gateway-"+name+".stdout.log"),
		URL:                          g.URL,
		Port:                         g.Port,
		ServerName:                   g.ServerName,
		binary:                       g.binary,
		readyTimeout:                 g.readyTimeout,
	}
}

// Launch runs the gateway without waiting for it to be ready: a standby
// is not ready until it takes over.
func (g *Gateway) Launch() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil && !g.proc.exited() {
		return errors.New("gateway is already running")
	}
	cmd := exec.Command(g.binary, "-c", g.ConfigPath, "-r", g.RegistrationPath, "--ignore-unsupported-server")
	cmd.Dir = g.Dir
	proc, err := startProcess(cmd, g.StdoutPath)
	if err != nil {
		return err
	}
	g.proc = proc
	return nil
}

// WaitReady waits until the appservice address answers
// /_matrix/mau/ready while this process runs. Twins share the address:
// call it once the other instance is gone.
func (g *Gateway) WaitReady(ctx context.Context, timeout time.Duration) error {
	g.mu.Lock()
	proc := g.proc
	g.mu.Unlock()
	if proc == nil {
		return errors.New("gateway is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitHTTP(ctx, proc, g.URL+"/_matrix/mau/ready", http.StatusOK); err != nil {
		return fmt.Errorf("gateway not ready (logs: %s): %w", g.StdoutPath, err)
	}
	return nil
}

// Exited waits until the process ends (or ctx does) and returns its exit code.
func (g *Gateway) Exited(ctx context.Context) (int, error) {
	g.mu.Lock()
	proc := g.proc
	g.mu.Unlock()
	if proc == nil {
		return 0, errors.New("gateway is not running")
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-proc.done:
	}
	return proc.cmd.ProcessState.ExitCode(), nil
}
