package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The production binary never links the simulators or the test helpers:
// dialling a test server is an option of the connectors, set from the
// simulator's side (CONVENTIONS 17).
func TestBinaryLinksNoTestCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const module = "github.com/passerelle/passerelle/"
	forbidden := []string{module + "simulator", module + "internal/dbtest", module + "internal/fakematrix", module + "internal/stack"}
	out, err := exec.Command("go", "list", "-deps", "-tags", "goolm", module+"cmd/passerelle").CombinedOutput()
	if err != nil {
		t.Fatalf("go list failed: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 || !slices.Contains(deps, module+"appservice") {
		t.Fatalf("go list gave an implausible dependency list (%d packages)", len(deps))
	}
	for _, dep := range deps {
		for _, bad := range forbidden {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("the passerelle binary links %s", dep)
			}
		}
		if dep == "testing" || dep == "net/http/httptest" {
			t.Errorf("the passerelle binary links the test package %s", dep)
		}
	}
}
