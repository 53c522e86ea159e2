package packaging

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
)

// TestHealthcheckOnDendrite runs the container's HEALTHCHECK command,
// `passerelle --healthcheck -c config.yaml`, against a real gateway
// registered with Dendrite: unhealthy (exit 1) before the gateway runs,
// healthy (exit 0) once it has started, unhealthy again once it stopped.
func TestHealthcheckOnDendrite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Dendrite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dendriteBin, err := stack.EnsureDendrite(ctx)
	if err != nil {
		t.Fatalf("Dendrite: %v", err)
	}
	dir := t.TempDir()
	bin, _, err := stack.BuildGateway(ctx, filepath.Join(dir, "bin"), "v0.0.0-healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	hsPort, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := stack.NewGateway(ctx, stack.GatewayOptions{
		Binary:        bin,
		Dir:           filepath.Join(dir, "gateway"),
		HomeserverURL: fmt.Sprintf("http://127.0.0.1:%d", hsPort),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := stack.StartDendrite(ctx, stack.DendriteOptions{
		BinDir:                dendriteBin,
		DataDir:               filepath.Join(dir, "dendrite"),
		Port:                  hsPort,
		AppServiceConfigFiles: gw.RegistrationFiles(),
	})
	if err != nil {
		t.Fatalf("Dendrite: %v", err)
	}
	t.Cleanup(func() { _ = hs.Stop() })

	check := func(wantCode int, wantOut string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin, "--healthcheck", "-c", gw.ConfigPath).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode || !strings.Contains(string(out), wantOut) {
			t.Errorf("--healthcheck: exit %d %q, want exit %d and %q", code, out, wantCode, wantOut)
		}
	}
	check(1, "does not answer")
	if err = gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	check(0, "ready: "+gw.URL+"/_matrix/mau/ready")
	if err = gw.Stop(); err != nil {
		t.Fatal(err)
	}
	check(1, "does not answer")
}
