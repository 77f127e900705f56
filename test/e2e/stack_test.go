package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/testenv"
)

// madeStack is a stack `make stack` builds and the runtimes it has:
// $PANDO_E2E_STACK (a stack built with `make stack`, all four runtimes)
// when set; else, in CI or when make test asks (PANDO_E2E_BUILD_STACK=1),
// the one scripts/test-stack.sh builds with make-stack.sh, the script
// behind `make stack`, with $PANDO_TEST_STACK_RUNTIMES (cached per machine;
// make test starts the build in the background, and this waits for it);
// else the Makefile's default STACK_DIR when it is there.
func madeStack(t *testing.T) (string, []string) {
	t.Helper()
	all := []string{"node", "python", "ruby", "java"}
	if dir := os.Getenv("PANDO_E2E_STACK"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "bin", "sh")); err != nil {
			testenv.Missing(t, "PANDO_E2E_STACK="+dir+" is not a stack (make stack STACK_DIR="+dir+")")
		}
		return dir, all
	}
	if os.Getenv("CI") != "true" && os.Getenv("PANDO_E2E_BUILD_STACK") != "1" {
		const dir = "/var/lib/pando-stacks/bookworm"
		if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "java")); err != nil {
			t.Skipf("no stack at %s: run `make stack`, set PANDO_E2E_STACK=DIR, or PANDO_E2E_BUILD_STACK=1 to build one for the tests", dir)
		}
		return dir, all
	}
	runtimes := all
	if v := os.Getenv("PANDO_TEST_STACK_RUNTIMES"); v != "" {
		runtimes = strings.Split(v, ",")
	}
	root, err := moduleRoot()
	noErr(t, err)
	// A cold build takes minutes; one already running (make test's) is
	// waited for.
	timeout := 15 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-time.Minute < timeout {
		timeout = time.Until(d) - time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "test-stack.sh"))
	cmd.Env = append(os.Environ(), "PANDO_TEST_STACK_RUNTIMES="+strings.Join(runtimes, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second // the build's children may outlive a killed script
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/test-stack.sh: %v\n%s", err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	t.Logf("stack %s ready after %s: %s", dir, time.Since(start).Round(time.Second), strings.TrimSpace(stderr.String()))
	return dir, runtimes
}

// stackVersion runs `BIN ARGS` in the stack (chroot) and returns the first
// match of re's group in its output: the version the stack's runtime has.
func stackVersion(t *testing.T, dir, re string, cmd ...string) string {
	t.Helper()
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		chroot = "/usr/sbin/chroot"
	}
	out, err := exec.Command(chroot, append([]string{dir}, cmd...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %s: %v\n%s", dir, strings.Join(cmd, " "), err, out)
	}
	m := regexp.MustCompile(re).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("chroot %s %s: no %s in %q", dir, strings.Join(cmd, " "), re, out)
	}
	return m[1]
}

// TestPush_eachLanguageOnTheStackMakeStackBuilds pushes each language's
// app to the stack and checks it runs on the stack's runtime. It waits for
// make test's build of the stack before it takes a turn, while the other
// tests run.
func TestPush_eachLanguageOnTheStackMakeStackBuilds(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	dir, runtimes := madeStack(t)
	s := ownServer(t, "--stack", "bookworm="+dir)
	heavy(t)

	stacks := s.mustPando(t, "stacks")
	shows := map[string]string{
		"node": `\bnode \d+.*\bnpm \d+.*\byarn 1\.`, "python": `\bpython3 3\.\d+.*\bpip \d+`,
		"ruby": `\bruby 3\.\d+.*\bbundler \d+`, "java": `\bjava 17\.`,
	}
	for _, rt := range runtimes {
		requireOutput(t, stacks, `(?m)^bookworm\s+.*`+shows[rt])
	}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			switch rt {
			case "node":
				v := stackVersion(t, dir, `(v\d+\.\d+\.\d+)`, "node", "--version")
				const name = "node-bookworm"
				r := s.mustPando(t, "push", name, "-p", writeFiles(t, t.TempDir(), nodeApp(`, "engines": {"node": ">=18"}`)), "-s", "bookworm")
				requireOutput(t, r, `Detected nodejs_buildpack`, `Using the stack's Node.js `+regexp.QuoteMeta(v), `Using the stack's npm \d+`,
					`start command:\s+node server\.js`, `stack:\s+bookworm`)
				if body, want := s.curlRoute(t, name+".localhost", "/"), "hello from node "+v+" in production\n"; body != want {
					t.Fatalf("GET / = %q, want %q", body, want)
				}
				// A yarn.lock installs with the stack's yarn (Debian's
				// yarnpkg beside its npm); a berry app with its own yarn.
				r = s.mustPando(t, "push", "yarn-bookworm", "-p", yarnClassicApp(t), "-s", "bookworm")
				requireOutput(t, r, `Using the stack's yarn 1\.\d+\.\d+ \(/usr/bin/yarnpkg\)`, `yarn install --frozen-lockfile`)
				if body := s.curlRoute(t, "yarn-bookworm.localhost", "/"); body != "hello from yarn 1 in production\n" {
					t.Fatalf("GET / = %q", body)
				}
				r = s.mustPando(t, "push", "berry-bookworm", "-p", berryApp(t), "-s", "bookworm")
				requireOutput(t, r, `Using the app's yarn `+berryVersion+` .* on the stack's node`, `nodeLinker: pnp`)
				if body := s.curlRoute(t, "berry-bookworm.localhost", "/"); body != "hello from berry in production\n" {
					t.Fatalf("GET / = %q", body)
				}
			case "python":
				hostStackPython(t) // builds the app's wheel
				v := stackVersion(t, dir, `Python (3\.\d+\.\d+)`, "python3", "--version")
				const name = "python-bookworm"
				r := s.mustPando(t, "push", name, "-p", pythonWheelApp(t), "-s", "bookworm")
				requireOutput(t, r, `Detected python_buildpack`, `Using the stack's Python `+regexp.QuoteMeta(v), `Successfully installed greet-1\.0\.0`,
					`stack:\s+bookworm`)
				if body, want := s.curlRoute(t, name+".localhost", "/"), "hello from python "+v+" in a venv at /home/vcap/app/.venv\n"; body != want {
					t.Fatalf("GET / = %q, want %q", body, want)
				}
			case "ruby":
				hostStackRuby(t) // builds the app's gem
				v := stackVersion(t, dir, `(\d+\.\d+\.\d+)`, "ruby", "-e", "print RUBY_VERSION")
				const name = "ruby-bookworm"
				r := s.mustPando(t, "push", name, "-p", rackApp(t), "-s", "bookworm")
				requireOutput(t, r, `Detected ruby_buildpack`, `Using the stack's Ruby `+regexp.QuoteMeta(v), `Installing greet 1\.0\.0`,
					`stack:\s+bookworm`)
				if body, want := s.curlRoute(t, name+".localhost", "/"), "hello from greet on ruby "+v+" in production\n"; body != want {
					t.Fatalf("GET / = %q, want %q", body, want)
				}
			case "java":
				const name = "java-bookworm"
				r := s.mustPando(t, "push", name, "-p", javaJar(t), "-m", "256M", "-s", "bookworm")
				requireOutput(t, r, `Detected java_buildpack`, `Using the stack's Java 17\.`, `stack:\s+bookworm`)
				body := s.curlRoute(t, name+".localhost", "/")
				heap, err := strconv.ParseInt(strings.TrimPrefix(body, "heap "), 10, 64)
				if err != nil || heap < 100<<20 || heap > 120<<20 {
					t.Fatalf("GET / = %q, want a heap of about 119 MiB", body)
				}
			default:
				t.Fatalf("unknown runtime %q in PANDO_TEST_STACK_RUNTIMES (node,python,ruby,java)", rt)
			}
		})
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
	t.Parallel()
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
