package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
)

// Set by TestMain.
var (
	dendriteBin string
	buildDir    string
	skipAll     bool
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		skipAll = true
		os.Exit(m.Run())
	}
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	// Missing tools fail the run: CI must never pass by running nothing.
	if dendriteBin, err = stack.EnsureDendrite(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: Dendrite is not available and could not be installed: %v\n", err)
		return 1
	}
	if err = CheckClientInstalled(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: Dendrite ready in %s\n", time.Since(start).Round(time.Millisecond))
	if buildDir, err = os.MkdirTemp("", "passerelle-e2e-bin-"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(buildDir)
	return m.Run()
}

var (
	gatewayOnce   sync.Once
	gatewayBinary string
	gatewayErr    error
)

// needGateway builds the gateway binary once per test run.
func needGateway(t testing.TB) string {
	t.Helper()
	gatewayOnce.Do(func() {
		if bin := os.Getenv("PASSERELLE_E2E_GATEWAY_BIN"); bin != "" {
			// A prebuilt binary, to iterate on tests without relinking.
			gatewayBinary = bin
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var took time.Duration
		gatewayBinary, took, gatewayErr = stack.BuildGateway(ctx, buildDir, "e2e")
		if gatewayErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: gateway built in %s\n", took.Round(time.Millisecond))
		}
	})
	if gatewayErr != nil {
		t.Fatalf("gateway binary: %v", gatewayErr)
	}
	return gatewayBinary
}
