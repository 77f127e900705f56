package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
