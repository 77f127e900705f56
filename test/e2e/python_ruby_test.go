package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/testenv"
)

// hostStackPython returns the version of Debian's /usr/bin/python3, which
// the host stack gives apps; it needs venv, and pip with setuptools and
// wheel to build the test's wheel.
func hostStackPython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import venv, ensurepip, setuptools, wheel, platform; print(platform.python_version())").Output()
	if err != nil {
		testenv.Missing(t, "no python3 with venv at /usr/bin (apt-get install python3 python3-venv python3-pip)")
	}
	return strings.TrimSpace(string(out))
}

// pythonWheelApp is an app whose only requirement, greet 1.0.0, is a wheel
// vendored in vendor/, built here from a local package with pip (no index):
// its console script greet-serve answers with python's version and whether
// it runs in a virtualenv.
func pythonWheelApp(t *testing.T) string {
	t.Helper()
	src := writeFiles(t, t.TempDir(), map[string]string{
		"setup.py": `from setuptools import setup
setup(name="greet", version="1.0.0", packages=["greet"],
      entry_points={"console_scripts": ["greet-serve = greet:serve"]})
`,
		"greet/__init__.py": `import os, platform, sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        venv = "a venv" if sys.prefix != sys.base_prefix else "no venv"
        body = ("hello from python %s in %s at %s\n" % (platform.python_version(), venv, sys.prefix)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve():
    HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
`,
	})
	dir := writeFiles(t, t.TempDir(), map[string]string{"requirements.txt": "greet==1.0.0\n", "Procfile": "web: greet-serve\n"})
	cmd := exec.Command("/usr/bin/python3", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", filepath.Join(dir, "vendor"), src)
	cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_CACHE_DIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip wheel: %v\n%s", err, out)
	}
	return dir
}

// waitPythonSeed waits until s offers the machine's python venv seed,
// which servers make in the background at start (in the default cache dir
// /var/cache/pando) and mount from <data-dir>/python-venv-seed.
func waitPythonSeed(t *testing.T, s *server) {
	t.Helper()
	py := buildpacks.HostPython()
	if py == "" {
		t.Fatal("no python3 on the host")
	}
	waitSeed(t, s, "python-venv-seed", buildpacks.PythonSeedReady, func(ctx context.Context) (string, error) {
		return buildpacks.PythonSeedDir(ctx, "/var/cache/pando", py, buildpacks.PythonSeedVenvPath)
	})
}

// waitSeed waits until s's data dir entry name links to the seed dir
// names, ready as ready says.
func waitSeed(t *testing.T, s *server, name string, ready func(string) bool, dir func(context.Context) (string, error)) {
	t.Helper()
	// A bound that stops a wait for a seed never made, not a speed target.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	want, err := dir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(s.dataDir, name)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if got, err := os.Readlink(link); err == nil && got == want && ready(link) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not name the seed %s within 10 minutes of the server's start", link, want)
		case <-tick.C:
		}
	}
}

func TestPush_pythonAppWithAVendoredWheelRunsOnTheStacksPython(t *testing.T) {
	t.Parallel()
	v := hostStackPython(t)
	s := sharedServer(t)
	const name = "python-hello"
	s.deleteAppOnCleanup(t, name)

	dir := pythonWheelApp(t)
	waitPythonSeed(t, s)
	r := s.mustPando(t, "push", name, "-p", dir)

	// The app's first install copies the cell's fresh venv.
	requireOutput(t, r, `Detected python_buildpack`, `Using the stack's Python `+v, `pip \d[\d.]* and setuptools \d[\d.]* copied from the cell's fresh virtualenv \(ensurepip not run\)`,
		`pip install -r requirements.txt --no-index --find-links vendor`,
		`Successfully installed greet-1.0.0`, `Kept the virtualenv in the build cache`, `web: 1 of 1 instances running`, `start command:\s+greet-serve`)
	// Built at /tmp/app in the staging container, run at /home/vcap/app.
	want := "hello from python " + v + " in a venv at /home/vcap/app/.venv\n"
	if body := s.curlRoute(t, name+".localhost", "/"); body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}

	// The app changed, its pinned requirements did not: the venv kept in
	// the build cache is reused (no pip) and works as the installed one.
	writeFiles(t, dir, map[string]string{"README": "changed\n"})
	r = s.mustPando(t, "push", name, "-p", dir)
	requireOutput(t, r, `Reusing the virtualenv kept from an earlier staging \(requirements.txt and the stack's Python `+v+` unchanged`, `web: 1 of 1 instances running`)
	if strings.Contains(r.out(), "pip install") {
		t.Fatalf("pip ran on an unchanged requirements.txt:\n%s", r)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != want {
		t.Fatalf("after re-push GET / = %q, want %q", body, want)
	}

	// Changed requirements install again, into a copy of the cell's
	// fresh venv: ensurepip does not run.
	writeFiles(t, dir, map[string]string{"requirements.txt": "greet==1.0.0 # the greeter\n"})
	r = s.mustPando(t, "push", name, "-p", dir)
	requireOutput(t, r, `requirements.txt \(or the stack's Python, vendor/ or pip settings\) changed since the kept virtualenv`,
		`pip \d[\d.]* and setuptools \d[\d.]* copied from the cell's fresh virtualenv \(ensurepip not run\)`, `Successfully installed greet-1.0.0`, `web: 1 of 1 instances running`)
	if body := s.curlRoute(t, name+".localhost", "/"); body != want {
		t.Fatalf("after the push with changed requirements GET / = %q, want %q", body, want)
	}
}

func TestPush_pythonAppWithoutStartCommandFailsNamingTheFix(t *testing.T) {
	t.Parallel()
	hostStackPython(t)
	s := sharedServer(t)
	const name = "python-nostart"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{"requirements.txt": "", "app.py": "print('hello')\n"})

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir)

	if r.code == 0 {
		t.Fatalf("push without a start command: want a non-zero exit\n%s", r)
	}
	// Staging fails (before installing anything), not the start.
	requireOutput(t, r, `Detected python_buildpack`, `No start command: the app has no Procfile and was pushed without -c`,
		`Add a Procfile with a web line`, `push with -c`, `Staging failed`)
	if strings.Contains(r.out(), "Installing dependencies") || strings.Contains(r.out(), "instances running") {
		t.Fatalf("staging went on without a start command:\n%s", r)
	}

	// The fix named: push with -c.
	// An empty requirements.txt runs no pip: the venv is made without it.
	r = s.mustPando(t, "push", name, "-p", dir, "-c", "python3 -m http.server $PORT")
	requireOutput(t, r, `No packages in requirements.txt: nothing to install \(pip is not run\)`, `Creating a virtualenv in the droplet \(\.venv, without pip\)`,
		`Start command: python3 -m http.server \$PORT \(given with -c`, `web: 1 of 1 instances running`)
	if strings.Contains(r.out(), "pip install") {
		t.Fatalf("pip ran for an empty requirements.txt:\n%s", r)
	}
	if body := s.curlRoute(t, name+".localhost", "/app.py"); body != "print('hello')\n" {
		t.Fatalf("GET /app.py = %q", body)
	}
}

// hostStackRuby returns the host's ruby version; apps take bundler, rack
// and webrick from the stack (Debian's packages).
func hostStackRuby(t *testing.T) string {
	t.Helper()
	const missing = "no ruby with bundler, rack and webrick on the host (apt-get install ruby ruby-bundler ruby-rack ruby-webrick)"
	if _, err := os.Stat("/usr/bin/bundle"); err != nil {
		testenv.Missing(t, missing)
	}
	out, err := exec.Command("/usr/bin/ruby", "-e", `gem "rack"; gem "webrick"; print RUBY_VERSION`).Output()
	if err != nil {
		testenv.Missing(t, missing)
	}
	return string(out)
}

// rackApp is a Rack app (config.ru) using greet, a gem built here with
// `gem build` and vendored in vendor/cache, and rack and webrick from the
// stack.
func rackApp(t *testing.T) string {
	t.Helper()
	src := writeFiles(t, t.TempDir(), map[string]string{
		"lib/greet.rb": "module Greet\n  def self.hello\n    \"hello from greet\"\n  end\nend\n",
		"greet.gemspec": `Gem::Specification.new do |s|
  s.name = "greet"
  s.version = "1.0.0"
  s.summary = "A test gem"
  s.authors = ["pando"]
  s.files = ["lib/greet.rb"]
end
`,
	})
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"Gemfile": "source \"https://rubygems.org\"\ngem \"rack\"\ngem \"webrick\"\ngem \"greet\"\n",
		"config.ru": `require "greet"
run ->(env) { [200, {"content-type" => "text/plain"}, [Greet.hello + " on ruby " + RUBY_VERSION + " in " + ENV["RACK_ENV"].to_s + "\n"]] }
`,
	})
	noErr(t, os.MkdirAll(filepath.Join(dir, "vendor", "cache"), 0o755))
	cmd := exec.Command("gem", "build", "greet.gemspec", "--output", filepath.Join(dir, "vendor", "cache", "greet-1.0.0.gem"))
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gem build: %v\n%s", err, out)
	}
	return dir
}

func TestPush_rackAppWithAVendoredGemRunsOnTheStacksRuby(t *testing.T) {
	t.Parallel()
	v := hostStackRuby(t)
	s := sharedServer(t)
	const name = "ruby-rack"
	s.deleteAppOnCleanup(t, name)

	r := s.mustPando(t, "push", name, "-p", rackApp(t))

	requireOutput(t, r, `Detected ruby_buildpack`, `Using the stack's Ruby `+v, `bundle install --jobs=4 --local`, `Installing greet 1\.0\.0`,
		`web: 1 of 1 instances running`, `start command:\s+bundle exec rackup config\.ru -p \$PORT -o 0\.0\.0\.0`)
	if body, want := s.curlRoute(t, name+".localhost", "/"), "hello from greet on ruby "+v+" in production\n"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}
}

// bashOnlyStack is a root filesystem stack with bash and busybox's tools
// and no language runtime: the host's bash with the libraries it links.
func bashOnlyStack(t *testing.T) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Missing(t, "no /bin/busybox (apt-get install busybox-static)")
	}
	root := t.TempDir()
	copyFile := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		noErr(t, err)
		noErr(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		noErr(t, os.WriteFile(dst, b, 0o755))
	}
	copyFile(bash, filepath.Join(root, "bin", "bash"))
	copyFile("/bin/busybox", filepath.Join(root, "bin", "busybox"))
	out, err := exec.Command("ldd", bash).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bash, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				real, err := filepath.EvalSymlinks(f)
				noErr(t, err)
				copyFile(real, filepath.Join(root, f))
			}
		}
	}
	for _, tool := range []string{"sh", "env", "cat", "dirname", "mktemp", "ls", "grep", "tee", "rm", "mkdir", "tr", "awk", "cp", "mv", "tar", "gzip"} {
		noErr(t, os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755))
		noErr(t, os.Symlink("/bin/busybox", filepath.Join(root, "usr", "bin", tool)))
	}
	noErr(t, os.Symlink("busybox", filepath.Join(root, "bin", "sh")))
	for _, d := range []string{"tmp", "etc", "home/vcap"} {
		noErr(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	return root
}

func TestPush_gemfileOnAStackWithoutRubyFailsNamingIt(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--stack", "noruby="+bashOnlyStack(t))
	const name = "ruby-noruby"
	dir := writeFiles(t, t.TempDir(), map[string]string{"Gemfile": "gem \"rack\"\n", "config.ru": "run ->(env) { [200, {}, []] }\n"})

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir, "-s", "noruby")

	if r.code == 0 {
		t.Fatalf("push of a Gemfile app to a stack without ruby: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `Detected ruby_buildpack`, `The stack 'noruby' has no Ruby \(no ruby on PATH\)`)
	if strings.Contains(r.out(), "command not found") {
		t.Fatalf("a shell error instead of the buildpack's message:\n%s", r)
	}
	if got := s.instances(t, name); got != "#0  DOWN" {
		t.Fatalf("instances after the failed staging: %q, want one DOWN and nothing running", got)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
