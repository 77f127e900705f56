package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

// madeStack is the rootfs `make stack` built: $PANDO_E2E_STACK, else the
// Makefile's default STACK_DIR. CI does not build it (a debootstrap plus
// some 820 MB of packages), so without one these tests skip.
func madeStack(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PANDO_E2E_STACK")
	if dir == "" {
		dir = "/var/lib/pando-stacks/bookworm"
	}
	if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "java")); err != nil {
		t.Skipf("no stack with java at %s: run `make stack` (or set PANDO_E2E_STACK=DIR) to test on it", dir)
	}
	return dir
}

func TestPush_javaJarOnTheStackMakeStackBuilds(t *testing.T) {
	dir := madeStack(t)
	jar := javaJar(t)
	s := ownServer(t, "--stack", "bookworm="+dir)

	stacks := s.mustPando(t, "stacks")
	requireOutput(t, stacks, `(?m)^bookworm\s+.*\bnode \d+.*\bnpm \d+.*\bpython3 3\.\d+.*\bpip \d+.*\bruby 3\.\d+.*\bbundler \d+.*\bjava 17\.`)

	const name = "java-bookworm"
	r := s.mustPando(t, "push", name, "-p", jar, "-m", "256M", "-s", "bookworm")
	requireOutput(t, r, `Detected java_buildpack`, `Using the stack's Java 17\.`, `stack:\s+bookworm`)
	body := s.curlRoute(t, name+".localhost", "/")
	heap, err := strconv.ParseInt(strings.TrimPrefix(body, "heap "), 10, 64)
	if err != nil || heap < 100<<20 || heap > 120<<20 {
		t.Fatalf("GET / = %q, want a heap of about 119 MiB", body)
	}
}

// tinyStack is a root filesystem with busybox's tools and the host's bash
// (the builtin buildpacks are bash scripts), and no language runtime.
func tinyStack(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox is not installed (apt-get install busybox-static)")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("no bash: %v", err)
	}
	root := t.TempDir()
	// Readable by the containers' ids, whose root is not the host's.
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	copyFile(bb, filepath.Join(root, "bin", "busybox"))
	applets, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			must(os.Symlink("busybox", filepath.Join(root, "bin", a)))
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755))
	must(os.Symlink("../../bin/busybox", filepath.Join(root, "usr", "bin", "env")))
	if err := os.Remove(filepath.Join(root, "bin", "bash")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	copyFile(bash, filepath.Join(root, "bin", "bash"))
	// bash's shared libraries, at the paths it asks for.
	out, err := exec.Command("ldd", bash).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bash, err)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "/") {
			real, err := filepath.EvalSymlinks(f)
			if err != nil {
				t.Fatal(err)
			}
			copyFile(real, filepath.Join(root, f))
		}
	}
	return root
}

func TestPush_javaOnAStackWithoutJavaFailsNamingBoth(t *testing.T) {
	jar := javaJar(t)
	s := ownServer(t, "--stack", "tiny="+tinyStack(t))

	requireOutput(t, s.mustPando(t, "stacks"), `(?m)^tiny\s+.*none found$`)
	const name = "java-nojava"
	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", jar, "-s", "tiny")
	if r.code == 0 {
		t.Fatalf("push to a stack without java: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `Detected java_buildpack`, `The stack 'tiny' has no Java \(no java on PATH\)`, `apt-get install openjdk-17-jre-headless`)
	if strings.Contains(r.out(), "command not found") {
		t.Fatalf("a shell error instead of the buildpack's:\n%s", r)
	}
	if got := s.instances(t, name); got != "#0  DOWN" {
		t.Fatalf("instances after the failed staging: %q, want one DOWN and nothing running", got)
	}
}
