package appservice

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/passerelle/passerelle/config"
)

// rawExampleEnv marks the child process that prints bridgev2's own example.
const rawExampleEnv = "PASSERELLE_RAW_EXAMPLE"

// maybeWriteExampleConfig handles -e: bridgev2 writes its example config and
// exits, so the gateway asks a child copy of itself for that example, applies
// Passerelle's defaults and writes the result. It reports whether it handled
// the command line (and then the process is done).
func maybeWriteExampleConfig(args []string) bool {
	if os.Getenv(rawExampleEnv) != "" || !wantsExample(args[1:]) {
		return false
	}
	path := configPathFromArgs(args[1:])
	if err := writeExampleConfig(args[0], path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return true
}

func wantsExample(args []string) bool {
	return slices.Contains(args, "-e") || slices.Contains(args, "--generate-example-config")
}

func configPathFromArgs(args []string) string {
	path := "config.yaml"
	for i, arg := range args {
		switch {
		case (arg == "-c" || arg == "--config") && i+1 < len(args):
			path = args[i+1]
		case strings.HasPrefix(arg, "--config="):
			path = strings.TrimPrefix(arg, "--config=")
		}
	}
	return path
}

func writeExampleConfig(self, path string) error {
	toStdout := path == "-" || path == "/dev/stdout"
	if !toStdout {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s already exists, please remove it if you want to generate a new example", path)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		exe = self
	}
	cmd := exec.Command(exe, "-e", "-c", "-")
	cmd.Env = append(os.Environ(), rawExampleEnv+"=1")
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("failed to generate the example config: %w", err)
	}
	cfgPath := path
	if toStdout {
		cfgPath = "config.yaml"
	}
	out, err := config.ApplyDefaults(raw, cfgPath)
	if err != nil {
		return fmt.Errorf("failed to apply Passerelle's defaults to the example config: %w", err)
	}
	if toStdout {
		_, err = os.Stdout.Write(out)
		return err
	}
	if err = os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("failed to write the example config: %w", err)
	}
	fmt.Println("Wrote example config to", path)
	return nil
}
