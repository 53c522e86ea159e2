package packaging

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// containerfile is the recipe as a list of instructions (continuation lines
// joined, comments dropped), each as its keyword and the rest.
type instruction struct{ cmd, args string }

func readContainerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cur += line
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur = ""
	}
	if err = sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The libraries a cgo build may need from the runtime image (glibc, which
// distroless/base has); anything else would be missing at run time.
var glibc = []string{"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "libresolv.so.2", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}

// TestImageRootfs runs the image's build steps the way CI does without a
// container builder (packaging/image-rootfs.sh), then checks that the
// runtime stage of the Containerfile gets everything it needs from them:
// multi-stage, every file it copies exists, a non-root user, the /data
// volume, the entrypoint and healthcheck run the binary that was laid out,
// and the binary needs nothing but glibc. Where a container daemon answers
// (`docker info`), it also builds the image and runs --version in it.
func TestImageRootfs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway")
	}
	needTool(t, "git")
	root := repoRoot(t)
	dest := filepath.Join(t.TempDir(), "rootfs")
	runIn(t, root, nil, "bash", "packaging/image-rootfs.sh", dest)

	bin := filepath.Join(dest, "usr/local/bin/passerelle")
	st, err := os.Stat(bin)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("binary %s: %v %v", bin, st, err)
	}
	binSize := st.Size()
	if st, err = os.Stat(filepath.Join(dest, "data")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("/data: %v %v, want a 0700 directory", st, err)
	}
	if out := runIn(t, dest, nil, bin, "--version"); !strings.Contains(out, "maunium.net/go/mautrix") {
		t.Errorf("--version of the image's binary: %q", out)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := ef.ImportedLibraries()
	_ = ef.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		if !slices.Contains(glibc, lib) {
			t.Errorf("the binary needs %s, which the distroless base image lacks", lib)
		}
	}
	t.Logf("binary %d bytes, dynamic libraries %v", binSize, libs)

	ins := readContainerfile(t)
	var froms []string
	var runtime []instruction // the last stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
			runtime = nil
			continue
		}
		runtime = append(runtime, in)
	}
	if len(froms) != 2 || !strings.HasSuffix(froms[0], " AS build") || !strings.Contains(froms[0], "golang:") {
		t.Fatalf("stages %q, want a golang build stage then the runtime", froms)
	}
	if !strings.Contains(froms[1], "distroless/base") && !strings.Contains(froms[1], "debian") {
		t.Errorf("runtime image %q has no glibc for the cgo binary", froms[1])
	}
	buildRuns := false
	for _, in := range ins {
		if in.cmd == "RUN" && in.args == "packaging/image-rootfs.sh /rootfs" {
			buildRuns = true
		}
	}
	if !buildRuns {
		t.Error("the build stage does not run packaging/image-rootfs.sh /rootfs (the steps this test checks)")
	}
	get := func(cmd string) []string {
		var v []string
		for _, in := range runtime {
			if in.cmd == cmd {
				v = append(v, in.args)
			}
		}
		return v
	}
	copied := 0
	for _, args := range get("COPY") {
		m := regexp.MustCompile(`^--from=build (?:--chown=(\d+):(\d+) )?/rootfs(/\S+) (\S+)$`).FindStringSubmatch(args)
		if m == nil {
			t.Errorf("COPY %s: not a copy of the laid-out files", args)
			continue
		}
		if _, err := os.Stat(filepath.Join(dest, m[3])); err != nil {
			t.Errorf("COPY %s: %v", args, err)
		}
		if m[3] != m[4] {
			t.Errorf("COPY %s puts the file elsewhere than the layout", args)
		}
		copied++
	}
	if copied != 2 {
		t.Errorf("the runtime stage copies %d paths, want the binary and /data", copied)
	}
	if u := get("USER"); len(u) != 1 || strings.HasPrefix(u[0], "0") || strings.HasPrefix(u[0], "root") {
		t.Errorf("USER %q, want a non-root user", u)
	}
	if v := get("VOLUME"); !slices.Equal(v, []string{"/data"}) {
		t.Errorf("VOLUME %q, want /data", v)
	}
	hc := strings.Join(get("HEALTHCHECK"), " ")
	if !strings.Contains(hc, `CMD ["/usr/local/bin/passerelle", "--healthcheck", "-c", "/data/config.yaml"]`) {
		t.Errorf("HEALTHCHECK %q, want the binary's --healthcheck on /data/config.yaml", hc)
	}
	if ep := get("ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0], `"/usr/local/bin/passerelle", "-c", "/data/config.yaml"`) {
		t.Errorf("ENTRYPOINT %q, want the binary with /data/config.yaml", ep)
	}
	// The healthcheck the image runs is the binary's: with no config yet,
	// it reports unhealthy (exit 1).
	cmd := exec.Command(bin, "--healthcheck", "-c", filepath.Join(dest, "data/config.yaml"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "unhealthy") {
		t.Errorf("--healthcheck without a config: %v %q, want exit 1, unhealthy", err, out)
	}

	t.Run("docker build", func(t *testing.T) {
		docker, err := exec.LookPath("docker")
		if err != nil || exec.Command(docker, "info").Run() != nil {
			t.Skip("no container daemon (docker info fails): the build steps above are what CI checks")
		}
		tag := "passerelle-test:image-rootfs"
		runIn(t, root, nil, docker, "build", "-f", "packaging/Containerfile", "-t", tag, ".")
		defer exec.Command(docker, "rmi", tag).Run()
		if out := runIn(t, root, nil, docker, "run", "--rm", tag, "--version"); !strings.Contains(out, "github.com/gotd/td") {
			t.Errorf("--version in the image: %q", out)
		}
	})
}
