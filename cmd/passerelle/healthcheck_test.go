package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHealthcheck: --healthcheck exits 0 when the gateway's appservice
// listener (from the config) answers /_matrix/mau/ready with 200, and 1 when
// it answers 500 (starting or stopping), when nothing listens, and when the
// config has no listener.
func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/_matrix/mau/ready" && ready.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	// A wildcard listen address, as in a container, is checked on loopback.
	if err = os.WriteFile(cfg, []byte("appservice:\n    hostname: 0.0.0.0\n    port: "+port+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := healthcheck(context.Background(), args, &out)
		return code, out.String()
	}

	if code, out := check("--healthcheck", "-c", cfg); code != 1 || !strings.Contains(out, "500") {
		t.Errorf("gateway not ready: exit %d %q, want 1 and the status", code, out)
	}
	ready.Store(true)
	if code, out := check("--healthcheck", "--config="+cfg); code != 0 {
		t.Errorf("gateway ready: exit %d %q, want 0", code, out)
	}
	if len(paths) != 2 || paths[1] != "/_matrix/mau/ready" {
		t.Errorf("requested %q, want /_matrix/mau/ready twice", paths)
	}
	srv.Close()
	if code, out := check("--healthcheck", "-c", cfg); code != 1 || !strings.Contains(out, "does not answer") {
		t.Errorf("gateway down: exit %d %q, want 1", code, out)
	}
	if code, _ := check("--healthcheck", "-c", filepath.Join(dir, "missing.yaml")); code != 1 {
		t.Errorf("missing config: exit %d, want 1", code)
	}
	if err = os.WriteFile(cfg, []byte("appservice:\n    hostname: 0.0.0.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := check("--healthcheck", "-c", cfg); code != 1 || !strings.Contains(out, "appservice.port") {
		t.Errorf("no port: exit %d %q, want 1", code, out)
	}
}
