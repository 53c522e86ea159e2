// Package testbin finds the programs tests drive that are not Go code
// (Debian's chromium, prometheus): scripts/test installs them. Without one a
// test is skipped, except under CI, where it fails: CI must run it.
package testbin

import (
	"os"
	"os/exec"
	"testing"
)

// Find returns $envVar when set, else the first of names on the PATH.
// debianPackage names what to install.
func Find(t testing.TB, envVar, debianPackage string, names ...string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing := names[0] + " is missing: install Debian's " + debianPackage + " package (scripts/test does, as root) or set " + envVar
	if os.Getenv("CI") != "" {
		t.Fatal(missing + "; CI must run this test")
	}
	t.Skip(missing)
	return ""
}

// Chromium finds a Chromium to drive headless.
func Chromium(t testing.TB) string {
	t.Helper()
	return Find(t, "PASSERELLE_CHROMIUM", "chromium", "chromium", "chromium-browser", "google-chrome")
}

// Prometheus finds Prometheus' server.
func Prometheus(t testing.TB) string {
	t.Helper()
	return Find(t, "PASSERELLE_PROMETHEUS", "prometheus", "prometheus")
}
