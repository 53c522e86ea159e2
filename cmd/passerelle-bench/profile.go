package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// saveProfile fetches one of the gateway's profiles (path under
// /debug/pprof/) into the work directory as name.
func (b *bench) saveProfile(ctx context.Context, path, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.pprofURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("failed to fetch the gateway's %s profile: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failed to fetch the gateway's %s profile: HTTP %d", name, resp.StatusCode)
	}
	file := filepath.Join(b.dir, name)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err = io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("failed to save the gateway's %s profile: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return err
	}
	b.profiles = append(b.profiles, file)
	return nil
}

// printProfiles prints where the profiles are and the CPU profile's top
// functions (go tool pprof -top), cumulative and flat.
func (b *bench) printProfiles(w io.Writer) {
	for _, file := range b.profiles {
		fmt.Fprintf(w, "profile: %s\n", file)
		if !strings.HasSuffix(file, "cpu.pprof") {
			continue
		}
		for _, sort := range []string{"-flat", "-cum"} {
			out, err := exec.Command("go", "tool", "pprof", "-top", sort, "-nodecount=25", file).CombinedOutput()
			if err != nil {
				fmt.Fprintf(w, "  (go tool pprof failed: %v)\n", err)
				break
			}
			fmt.Fprintf(w, "%s\n", out)
		}
	}
}
