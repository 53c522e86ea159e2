package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "passerelle.service"

// unitSettings reads the [Service] settings of the shipped unit, each key
// with its values in order.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: malformed line %q", unitFile, line)
			}
			settings[k] = append(settings[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

// The unit runs the gateway as its own unprivileged user with the hardening
// an administrator expects, keeps its state in /var/lib/passerelle, and
// restarts it when it fails.
func TestSystemdUnitHardening(t *testing.T) {
	s := unitSettings(t)
	for key, want := range map[string]string{
		"Type":                    "exec",
		"User":                    "passerelle",
		"StateDirectory":          "passerelle",
		"StateDirectoryMode":      "0700",
		"WorkingDirectory":        "/var/lib/passerelle",
		"UMask":                   "0077",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"Restart":                 "on-failure",
	} {
		if got, ok := s[key]; !ok || got[len(got)-1] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if got := s["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", got)
	}
	// The config, registration and database all live in the state
	// directory, the one place the unit can write.
	exec := strings.Join(s["ExecStart"], " ")
	if !strings.Contains(exec, "-c /var/lib/passerelle/config.yaml") || !strings.Contains(exec, "-r /var/lib/passerelle/registration.yaml") {
		t.Errorf("ExecStart=%q does not keep config and registration in /var/lib/passerelle", exec)
	}
	for _, key := range []string{"ReadWritePaths", "DynamicUser", "PermissionsStartOnly"} {
		if v, ok := s[key]; ok {
			t.Errorf("unexpected %s=%q", key, v)
		}
	}
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the shipped unit
// (with ExecStart pointing at a real executable, since verify checks it) and
// fails on anything it says about the unit; then `systemd-analyze security`
// must rate its exposure at most 2.0 out of 10.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "passerelle")
	if err = os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const installed = "/usr/local/bin/passerelle"
	if !strings.Contains(string(raw), "ExecStart="+installed+" ") {
		t.Fatalf("ExecStart does not run %s", installed)
	}
	unit := filepath.Join(dir, unitFile)
	if err = os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "ExecStart="+installed, "ExecStart="+bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify failed: %v\n%s", err, out)
	}
	// verify exits 0 on unknown keys and bad values: it only warns.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, unitFile) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}

	out, err = exec.Command(analyze, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security failed: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security output:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: exposure %.1f", level)
	if level > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0:\n%s", level, out)
	}
}
