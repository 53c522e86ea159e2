package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
)

// saveProfile fetches one of the gateway's profiles (path under
// /debug/pprof/) into the work directory as name.
func (b *bench) saveProfile(ctx context.Context, path, name string) error {
	return b.saveProfileFrom(ctx, b.pprofURL, path, name)
}

// saveProfileFrom fetches a profile from a process's /debug/pprof/ at base
// (Passerelle's, or stock bridgev2's control endpoint) into the work
// directory as name.
func (b *bench) saveProfileFrom(ctx context.Context, base, path, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
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
		parts, err := profileParts(file)
		if err != nil {
			fmt.Fprintf(w, "  (%v)\n", err)
			continue
		}
		perMsg := 0.0
		switch filepath.Base(file) {
		case "gateway-cpu.pprof":
			perMsg = b.profiledCPUms
		case stockCPUProfile:
			perMsg = b.stockProfiledCPUms
		}
		printParts(w, parts, perMsg)
	}
}

// pprofPatch, with -profile, reserves the gateway's metrics port, sets
// b.pprofURL and returns the config patch that opens the listener with Go's
// profiler; without it, a patch that changes nothing.
func (b *bench) pprofPatch() (func(doc *stack.YAMLDoc) error, error) {
	if b.o.profile <= 0 {
		return func(*stack.YAMLDoc) error { return nil }, nil
	}
	port, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	b.pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port)
	return func(doc *stack.YAMLDoc) error {
		for k, v := range map[string]any{"network.metrics.enabled": true, "network.metrics.listen": fmt.Sprintf("127.0.0.1:%d", port), "network.metrics.pprof": true} {
			if err := doc.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// maxGoroutineDumps bounds the goroutine dumps of one load.
const maxGoroutineDumps = 12

// profileLoad, with -profile, takes the gateway's CPU profile for -profile
// from now and a goroutine dump (every goroutine's stack: where the work
// waits) every goroutineDumpEvery, at most maxGoroutineDumps, until stop is
// closed; the files are named after tag. The returned channel is closed
// when all are saved.
func (b *bench) profileLoad(ctx context.Context, tag string, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	if b.pprofURL == "" {
		close(done)
		return done
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := b.saveProfile(ctx, "profile?seconds="+strconv.Itoa(int(b.o.profile.Seconds())), "gateway-"+tag+"-cpu.pprof"); err != nil {
			b.logf("%v", err)
		}
	}()
	go func() {
		defer wg.Done()
		for i := range maxGoroutineDumps {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(goroutineDumpEvery):
			}
			if err := b.saveProfile(ctx, "goroutine?debug=2", fmt.Sprintf("gateway-%s-goroutines-%02d.txt", tag, i)); err != nil {
				b.logf("%v", err)
			}
		}
	}()
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// goroutineDumpEvery is the period of profileLoad's goroutine dumps.
const goroutineDumpEvery = 5 * time.Second

// stockCPUProfile is the file of stock bridgev2's CPU profile (burst, with
// -profile): its first pass, for as long as Passerelle's.
const stockCPUProfile = "stock-cpu.pprof"
