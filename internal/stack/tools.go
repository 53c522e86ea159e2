package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// DendriteVersion is the Dendrite release the stack runs. It is installed from
// source with `go install`, never from a prebuilt binary, and always from
// github.com/matrix-org/dendrite (Apache-2.0), never a fork.
const DendriteVersion = "v0.13.8"

// DendriteModule is the module Dendrite is installed from.
const DendriteModule = "github.com/matrix-org/dendrite"

// DendriteCommands are the Dendrite commands the stack needs.
var DendriteCommands = []string{"dendrite", "generate-keys", "generate-config", "create-account"}

// ToolsDir is where installed tools live: $PASSERELLE_TOOLS, or
// ~/.cache/passerelle/bin.
func ToolsDir() (string, error) {
	if dir := os.Getenv("PASSERELLE_TOOLS"); dir != "" {
		return filepath.Abs(dir)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("failed to find the home directory: %w", err)
	}
	return filepath.Join(home, ".cache", "passerelle", "bin"), nil
}

// MissingDendriteTools lists the Dendrite commands absent from binDir.
func MissingDendriteTools(binDir string) []string {
	var missing []string
	for _, name := range DendriteCommands {
		if st, err := os.Stat(filepath.Join(binDir, name)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

var installMu sync.Mutex

// EnsureDendrite installs the Dendrite commands into ToolsDir() when any is
// missing, with `go install <module>/cmd/<name>@DendriteVersion`, and returns
// the directory. The build output goes to stderr of the go command, which is
// returned in the error on failure.
func EnsureDendrite(ctx context.Context) (binDir string, err error) {
	binDir, err = ToolsDir()
	if err != nil {
		return "", err
	}
	installMu.Lock()
	defer installMu.Unlock()
	missing := MissingDendriteTools(binDir)
	if len(missing) == 0 {
		return binDir, nil
	}
	if err = os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", binDir, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("failed to find the go command to install Dendrite: %w", err)
	}
	args := []string{"install"}
	for _, name := range missing {
		args = append(args, fmt.Sprintf("%s/cmd/%s@%s", DendriteModule, name, DendriteVersion))
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	// Outside any module, so the project's go.mod plays no part.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOFLAGS=", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("failed to install Dendrite %s (%s): %w\n%s", DendriteVersion, strings.Join(missing, ", "), err, out)
	}
	if still := MissingDendriteTools(binDir); len(still) > 0 {
		return "", errors.New("failed to install Dendrite: still missing " + strings.Join(still, ", "))
	}
	return binDir, nil
}
