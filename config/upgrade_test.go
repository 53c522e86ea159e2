package config_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// entry is one key of a YAML mapping, by dotted path: the key node (which
// carries the comments above the key) and its value.
type entry struct {
	key, value *yaml.Node
}

// opaque are the sections whose keys are the operator's data (user IDs,
// server names), not settings: an upgrade keeps the operator's map whole and
// never merges the example's placeholders into it.
var opaque = []string{"bridge.permissions", "double_puppet.servers", "double_puppet.secrets"}

func entries(t *testing.T, data []byte) map[string]entry {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			out[path] = entry{k, v}
			if v.Kind == yaml.MappingNode && !slices.Contains(opaque, path) {
				walk(path, v)
			}
		}
	}
	walk("", root.Content[0])
	return out
}

func render(t *testing.T, n *yaml.Node) string {
	t.Helper()
	out, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "passerelle")
	cmd := exec.Command("go", "build", "-tags", "goolm", "-o", bin, "github.com/passerelle/passerelle/cmd/passerelle")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the gateway: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startUntilInitialized runs the gateway on the config as an operator
// starts it, until it logs "Initializing bridge": by then it has upgraded
// and saved its config (bridgev2 does that before it sets up logging from
// the config). Then it stops the gateway, which would go on to reach the
// homeserver.
func startUntilInitialized(t *testing.T, bin, dir, cfg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", cfg, "-r", filepath.Join(dir, "registration.yaml"))
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err = cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var seen strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Initializing bridge") {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return
		}
	}
	t.Fatalf("the gateway stopped before it initialized (%v):\n%s%s", ctx.Err(), seen.String(), stderr.String())
}

// TestUpgradeFirstReleaseConfig starts the gateway on the config file of the
// first release (testdata/first-release-config.yaml: what `passerelle -e`
// wrote at commit 55f6666, the first with the gateway binary, with the
// values an operator sets: homeserver, domain, permissions, tokens from -g,
// Telegram API credentials). On start the gateway rewrites the file in
// place: every key the current release's example has and the old file
// lacked is added with its comment, every value the operator had is kept,
// and a second start leaves the file byte for byte as it was.
func TestUpgradeFirstReleaseConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gateway")
	}
	bin := buildGateway(t)
	dir := t.TempDir()
	fixture, err := os.ReadFile("testdata/first-release-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The install lives in dir instead of /var/lib/passerelle, listens on a
	// free port, and its homeserver is a port where nothing listens (the
	// gateway must not reach a homeserver another test runs on 8008).
	old := strings.ReplaceAll(string(fixture), "/var/lib/passerelle", dir)
	old = strings.Replace(old, "    port: 29340\n", "    port: "+strconv.Itoa(freePort(t))+"\n", 1)
	old = strings.Replace(old, "address: http://127.0.0.1:8008\n", "address: http://127.0.0.1:"+strconv.Itoa(freePort(t))+"\n", 1)
	if !strings.Contains(old, dir+"/passerelle.db") || strings.Contains(old, ":8008") || strings.Contains(old, "port: 29340") {
		t.Fatal("the fixture does not have the database, homeserver and port this test moves")
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err = os.WriteFile(cfg, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	exampleDir := t.TempDir()
	example := filepath.Join(exampleDir, "config.yaml")
	if out, err := exec.Command(bin, "-e", "-c", example).CombinedOutput(); err != nil {
		t.Fatalf("-e: %v\n%s", err, out)
	}
	exampleRaw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}

	startUntilInitialized(t, bin, dir, cfg)
	upgraded, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(upgraded, []byte(old)) {
		t.Fatal("the gateway did not rewrite the first release's config")
	}
	if st, err := os.Stat(cfg); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("upgraded config: %v %v, want mode 0600", st, err)
	}
	before, after, want := entries(t, []byte(old)), entries(t, upgraded), entries(t, exampleRaw)

	var added []string
	commented := 0
	for path, ex := range want {
		if _, had := before[path]; had {
			continue
		}
		if parent, _, ok := cutLast(path); ok && slices.Contains(opaque, parent) {
			continue
		}
		added = append(added, path)
		got, ok := after[path]
		if !ok {
			t.Errorf("new key %s was not added", path)
			continue
		}
		if ex.key.HeadComment != "" {
			commented++
		}
		if got.key.HeadComment != ex.key.HeadComment {
			t.Errorf("new key %s has comment %q, want the example's %q", path, got.key.HeadComment, ex.key.HeadComment)
		}
		if ex.value.Kind == yaml.ScalarNode && render(t, got.value) != render(t, ex.value) {
			t.Errorf("new key %s = %s, want the default %s", path, render(t, got.value), render(t, ex.value))
		}
	}
	slices.Sort(added)
	t.Logf("%d keys added (%d with a comment), e.g. %v", len(added), commented, added[:min(len(added), 12)])
	if len(added) == 0 || commented == 0 {
		t.Fatal("the current example has no commented key the first release lacked: the fixture is not the first release's")
	}

	kept := 0
	for path, b := range before {
		if b.value.Kind == yaml.MappingNode && !slices.Contains(opaque, path) {
			continue
		}
		a, ok := after[path]
		if !ok {
			if _, still := want[path]; still {
				t.Errorf("key %s was dropped", path)
			}
			continue
		}
		if render(t, b.value) == "generate" {
			// A placeholder the upgrade replaces with a generated secret.
			if v := render(t, a.value); v == "generate" || v == "" {
				t.Errorf("%s = %q, want a generated secret", path, v)
			}
			continue
		}
		if render(t, a.value) != render(t, b.value) {
			t.Errorf("%s changed from %s to %s", path, render(t, b.value), render(t, a.value))
		}
		kept++
	}
	t.Logf("%d values kept", kept)

	// Idempotent: a second start rewrites the file to the same bytes.
	st1, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	startUntilInitialized(t, bin, dir, cfg)
	again, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, upgraded) {
		t.Errorf("a second start changed the upgraded config:\n%s", lineDiff(string(upgraded), string(again)))
	}
	if st2, err := os.Stat(cfg); err != nil || os.SameFile(st1, st2) {
		t.Errorf("the second start did not go through the upgrade (file not rewritten): %v", err)
	}
}

func cutLast(path string) (parent, key string, ok bool) {
	i := strings.LastIndex(path, ".")
	if i < 0 {
		return "", path, false
	}
	return path[:i], path[i+1:], true
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out.WriteString("-" + x + "\n+" + y + "\n")
		}
	}
	return out.String()
}
