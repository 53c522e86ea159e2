// Package packaging holds the tests of the build script, the systemd unit
// and the container image recipe in this directory.
package packaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// repoRoot is the clone this test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// needTool returns the path of a command the test needs. It skips when the
// command is missing on a developer's machine, and fails under CI, where
// scripts/test installs it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (scripts/test installs it)", name)
		}
		t.Skipf("%s is missing", name)
	}
	return path
}

func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s%s", name, strings.Join(args, " "), dir, err, out.String(), errOut.String())
	}
	return out.String()
}

// cloneAt clones the commit this test runs at (committed files only) into
// dir, as a packager or CI would check it out.
func cloneAt(t *testing.T, root, commit, dir string) {
	t.Helper()
	runIn(t, "/", nil, "git", "clone", "-q", "--no-checkout", root, dir)
	runIn(t, dir, nil, "git", "checkout", "-q", "--detach", commit)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestReproducibleBuild builds the same commit twice with
// packaging/build.sh, from two clones at different paths, and checks that
// the binaries are byte-identical and that `passerelle --version` reports
// the tag, commit and commit time of the clone and the library versions
// that go.mod pins.
func TestReproducibleBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway twice")
	}
	needTool(t, "git")
	root := repoRoot(t)
	commit := strings.TrimSpace(runIn(t, root, nil, "git", "rev-parse", "HEAD"))
	tmp := t.TempDir()
	dirs := []string{filepath.Join(tmp, "a"), filepath.Join(tmp, "elsewhere", "b")}
	var bins []string
	for i, dir := range dirs {
		cloneAt(t, root, commit, dir)
		bin := filepath.Join(tmp, "passerelle-"+string(rune('1'+i)))
		runIn(t, dir, []string{"SOURCE_DATE_EPOCH="}, "bash", "packaging/build.sh", bin)
		bins = append(bins, bin)
	}
	sum1, sum2 := sha256File(t, bins[0]), sha256File(t, bins[1])
	if sum1 != sum2 {
		t.Fatalf("two builds of %s differ: %s and %s", commit, sum1, sum2)
	}
	t.Logf("two builds of %s from different paths: sha256 %s", commit[:8], sum1)

	clone := dirs[0]
	out := runIn(t, clone, nil, bins[0], "--version")
	t.Logf("passerelle --version:\n%s", out)
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+(.+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("--version has no %q line:\n%s", name, out)
		}
		return strings.TrimSpace(m[1])
	}
	if tag := strings.TrimSpace(runIn(t, clone, nil, "git", "describe", "--tags", "--always", "--dirty")); field("tag:") != tag {
		t.Errorf("--version tag = %q, want %q (git describe)", field("tag:"), tag)
	}
	if field("commit:") != commit {
		t.Errorf("--version commit = %q, want %q", field("commit:"), commit)
	}
	epoch := strings.TrimSpace(runIn(t, clone, nil, "git", "log", "-1", "--format=%cI", commit))
	want, err := time.Parse(time.RFC3339, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if field("built:") != want.UTC().Format("2006-01-02T15:04:05Z") {
		t.Errorf("--version built = %q, want the commit time %s", field("built:"), want.UTC())
	}
	goVersion := strings.TrimSpace(runIn(t, clone, nil, "go", "env", "GOVERSION"))
	if !strings.HasPrefix(field("go:"), goVersion+" ") {
		t.Errorf("--version go = %q, want %s", field("go:"), goVersion)
	}
	for _, mod := range []string{"maunium.net/go/mautrix", "go.mau.fi/whatsmeow", "github.com/gotd/td", "github.com/lib/pq"} {
		// A module go.mod replaces by a patched copy in the tree shows as
		// its version, patched.
		pinned := strings.TrimSpace(runIn(t, clone, nil, "go", "list", "-m", "-f", "{{.Version}}{{with .Replace}} (patched: {{.Path}}){{end}}", mod))
		if got := field(mod); got != pinned {
			t.Errorf("--version %s = %q, want %q (go.mod)", mod, got, pinned)
		}
	}
	// The build records its flags: trimmed paths, the goolm tag, the VCS state.
	info := runIn(t, clone, nil, "go", "version", "-m", bins[0])
	for _, want := range []string{"-trimpath=true", "-tags=goolm", "vcs.revision=" + commit, "vcs.modified=false"} {
		if !strings.Contains(info, want) {
			t.Errorf("go version -m does not show %s:\n%s", want, info)
		}
	}
}
