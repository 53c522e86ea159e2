package appservice

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// --version names the build's tag, commit and time, the Go version, and
// each pinned library at the version linked in (the build information).
func TestWriteVersion(t *testing.T) {
	// A test binary carries no dependency list; these are the ones the
	// gateway's build records (TestReproducibleBuild checks the real binary).
	linked := depVersions([]*debug.Module{
		{Path: "maunium.net/go/mautrix", Version: "v0.32.0"},
		{Path: "go.mau.fi/whatsmeow", Version: "v0.0.0-20251217143725-11cf47c62d32", Replace: &debug.Module{Path: "./third_party/whatsmeow", Version: "(devel)"}},
		{Path: "go.mau.fi/libsignal", Version: "v0.2.1", Replace: &debug.Module{Path: "./third_party/libsignal", Version: "(devel)"}},
		{Path: "github.com/gotd/td", Version: "v0.162.0"},
		{Path: "github.com/lib/pq", Version: "v1.12.3", Replace: &debug.Module{Path: "example.org/pq-fork", Version: "v1.12.4"}},
		{Path: "github.com/mattn/go-sqlite3", Version: "v1.14.52"},
		{Path: "github.com/rs/zerolog", Version: "v1.35.1"},
	})
	if linked["github.com/lib/pq"] != "example.org/pq-fork v1.12.4" {
		t.Errorf("a replaced module shows %q, want its replacement", linked["github.com/lib/pq"])
	}
	if want := "v0.0.0-20251217143725-11cf47c62d32 (patched: ./third_party/whatsmeow)"; linked["go.mau.fi/whatsmeow"] != want {
		t.Errorf("a module patched in the source tree shows %q, want %q", linked["go.mau.fi/whatsmeow"], want)
	}
	var b strings.Builder
	if err := writeVersion(&b, "v0.1.0", "0123456789abcdef0123456789abcdef01234567", "2026-11-28T10:11:12Z", linked); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"passerelle v" + Version + " (built at Sat, 28 Nov 2026 10:11:12 UTC",
		"tag:        v0.1.0\n",
		"commit:     0123456789abcdef0123456789abcdef01234567\n",
		"built:      2026-11-28T10:11:12Z\n",
		"go:         " + runtime.Version() + " ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--version lacks %q:\n%s", want, out)
		}
	}
	for _, mod := range PinnedModules {
		v := linked[mod]
		if !strings.Contains(out, mod+strings.Repeat(" ", 31-len(mod))+v+"\n") {
			t.Errorf("--version lacks %s %s:\n%s", mod, v, out)
		}
	}

	// An untagged build says it is a development build of the commit.
	b.Reset()
	if err := WriteVersion(&b, "unknown", "fedcba9876543210fedcba9876543210fedcba98", "unknown"); err != nil {
		t.Fatal(err)
	}
	if out = b.String(); !strings.Contains(out, "+dev.fedcba98") || !strings.Contains(out, "tag:        unknown\n") || !strings.Contains(out, "built:      unknown\n") || strings.Contains(out, "zerolog") {
		t.Errorf("untagged build:\n%s", out)
	}
}

func TestWantsVersion(t *testing.T) {
	for args, want := range map[string]bool{"--version": true, "-v": true, "-c x.yaml -v": true, "": false, "-c -v.yaml": false, "--version-json": false, "-g": false} {
		if got := WantsVersion(strings.Fields(args)); got != want {
			t.Errorf("WantsVersion(%q) = %v, want %v", args, got, want)
		}
	}
}
