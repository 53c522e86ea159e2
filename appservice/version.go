package appservice

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"go.mau.fi/util/progver"
)

// PinnedModules are the libraries whose versions `passerelle --version`
// names: the ones an operator or a security notice asks about.
var PinnedModules = []string{
	"maunium.net/go/mautrix",
	"go.mau.fi/whatsmeow",
	"go.mau.fi/libsignal",
	"github.com/gotd/td",
	"github.com/lib/pq",
	"github.com/mattn/go-sqlite3",
}

// WantsVersion reports whether the command line asks for the version only.
func WantsVersion(args []string) bool {
	return slices.Contains(args, "-v") || slices.Contains(args, "--version")
}

// WriteVersion writes what `passerelle --version` prints: the version line
// bridgev2 uses elsewhere (bot command, user agent), then the tag, commit and
// build time stamped by the build, the Go version, and the versions of the
// pinned libraries as the binary's build information records them (so they
// are the ones linked in, never a copy that could drift).
func WriteVersion(w io.Writer, tag, commit, buildTime string) error {
	return writeVersion(w, tag, commit, buildTime, moduleVersions())
}

func writeVersion(w io.Writer, tag, commit, buildTime string, deps map[string]string) error {
	pv := progver.ProgramVersion{
		Name:        "passerelle",
		URL:         "https://github.com/passerelle/passerelle",
		BaseVersion: Version,
	}.Init(tag, commit, buildTime)
	var b strings.Builder
	fmt.Fprintln(&b, pv.VersionDescription)
	shown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	fmt.Fprintf(&b, "tag:        %s\n", shown(pv.Tag))
	fmt.Fprintf(&b, "commit:     %s\n", shown(pv.Commit))
	bt := "unknown"
	if !pv.BuildTime.IsZero() {
		bt = pv.BuildTime.UTC().Format("2006-01-02T15:04:05Z")
	}
	fmt.Fprintf(&b, "built:      %s\n", bt)
	fmt.Fprintf(&b, "go:         %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, mod := range PinnedModules {
		fmt.Fprintf(&b, "%-30s %s\n", mod, shown(deps[mod]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// moduleVersions maps each dependency of the running binary to its version
// (the replacement's, when go.mod replaces it by another module; the
// version with "(patched: dir)" when by a patched copy in the source tree).
func moduleVersions() map[string]string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return map[string]string{}
	}
	return depVersions(info.Deps)
}

func depVersions(deps []*debug.Module) map[string]string {
	out := map[string]string{}
	for _, dep := range deps {
		v := dep.Version
		switch {
		case dep.Replace != nil && localPath(dep.Replace.Path):
			v = dep.Version + " (patched: " + dep.Replace.Path + ")"
		case dep.Replace != nil:
			v = dep.Replace.Path + " " + dep.Replace.Version
		}
		out[dep.Path] = v
	}
	return out
}

// localPath reports whether a replacement is a directory (go.mod's
// "=> ./dir" form) rather than another module.
func localPath(path string) bool {
	return strings.HasPrefix(path, "./") || strings.HasPrefix(path, "../") || strings.HasPrefix(path, "/")
}
