package buildpacks_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/testenv"
)

// hostPython returns the host stack's python3 (Debian's /usr/bin/python3,
// what apps see in containers on the host stack) and its version; it needs
// venv and pip, which build the test's wheel.
func hostPython(t *testing.T) (string, string) {
	t.Helper()
	const py = "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import venv, ensurepip, setuptools, wheel, platform, importlib.util; assert importlib.util.find_spec(\"pip\"); print(platform.python_version())").Output()
	if err != nil {
		testenv.Missing(t, "no python3 with venv, pip and wheel at "+py+" (apt-get install python3 python3-venv python3-pip)")
	}
	return py, strings.TrimSpace(string(out))
}

// skipShortVenv skips, with -short, a test whose staging makes a virtualenv
// with ensurepip and installs into it with pip: each takes tens of seconds
// of CPU (minutes on a loaded machine), more than the rest of the package
// together. The full run (make test) has them all.
func skipShortVenv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("makes a virtualenv with ensurepip and pip: runs without -short")
	}
}

// pythonStage is a stage whose PATH finds the host stack's python3 first.
func pythonStage(t *testing.T, app map[string]string) *stage {
	t.Helper()
	s := newStage(t, app)
	s.cfg.Env = append(s.cfg.Env, "PATH=/usr/bin:/bin:"+os.Getenv("PATH"), "CF_STACK=teststack")
	return s
}

// greetWhl is the file name of greetWheel's wheel.
const greetWhl = "greet-1.0.0-py3-none-any.whl"

// greetWheel puts a wheel of a tiny local package, greet 1.0.0, with a
// console script greet-serve (an http.server answering with greet's
// greeting, python's version and whether it runs in a virtualenv), into
// dir; pip builds it with no package index, once per test binary
// (fixtures).
func greetWheel(t *testing.T, py, dir string) {
	t.Helper()
	whl := fixtures.get(t, "greet wheel", func() ([]byte, error) { return buildGreetWheel(py) })
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, greetWhl), whl, 0o644))
}

func buildGreetWheel(py string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "greetwheel-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	src, dist := filepath.Join(tmp, "src"), filepath.Join(tmp, "dist")
	files := map[string]string{
		"setup.py": `from setuptools import setup
setup(name="greet", version="1.0.0", packages=["greet"],
      entry_points={"console_scripts": ["greet-serve = greet:serve"]})
`,
		"greet/__init__.py": `import os, platform, sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def hello():
    venv = "venv" if sys.prefix != sys.base_prefix else "no venv"
    return "greet 1.0.0 on python %s in %s" % (platform.python_version(), venv)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = hello().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve():
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
`,
	}
	if err := writeTree(src, files); err != nil {
		return nil, err
	}
	cmd := exec.Command(py, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", dist, src)
	cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_CACHE_DIR="+filepath.Join(tmp, "pip-cache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pip wheel: %w\n%s", err, out)
	}
	return os.ReadFile(filepath.Join(dist, greetWhl))
}

func TestPython_vendoredWheelInstallsOfflineIntoARelocatableVenv(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	py, version := hostPython(t)
	s := pythonStage(t, map[string]string{
		"requirements.txt": "greet==1.0.0\n",
		"Procfile":         "web: greet-serve\n",
	})
	greetWheel(t, py, filepath.Join(s.cfg.BuildDir, "vendor"))
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	if res.BuildpackName != "python_buildpack" || res.DetectedBuildpack != "python 1.0.0" || res.StartCommand != "greet-serve" {
		t.Fatalf("result = %+v\n%s", res, out)
	}
	for _, want := range []string{"Using the stack's Python " + version, "Creating a virtualenv in the droplet",
		"pip install -r requirements.txt --no-index --find-links vendor", "Successfully installed greet-1.0.0", "Start command: from the Procfile"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}

	// A droplet may hold no symlink leading out of it (the cell refuses
	// one): the venv has its own copy of python.
	must(t, filepath.WalkDir(s.cfg.BuildDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) || !strings.HasPrefix(filepath.Join(filepath.Dir(p), target), s.cfg.BuildDir+"/") {
			t.Errorf("symlink %s -> %s leaves the droplet", p, target)
		}
		return nil
	}))

	// The droplet runs elsewhere than it was built (as /tmp/app becomes
	// /home/vcap/app): the venv and its console script must still work.
	moved := filepath.Join(filepath.Dir(s.cfg.BuildDir), "moved")
	must(t, os.Rename(s.cfg.BuildDir, moved))
	s.cfg.BuildDir = moved
	if body, want := serve(t, s, res.StartCommand), "greet 1.0.0 on python "+version+" in venv"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}

}

func TestPython_pipfileLockAndPyprojectDependenciesAreInstalled(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	py, _ := hostPython(t)
	s := pythonStage(t, map[string]string{
		"Pipfile":      "[packages]\ngreet = \"==1.0.0\"\n",
		"Pipfile.lock": `{"_meta": {}, "default": {"greet": {"version": "==1.0.0", "markers": "python_version >= '3'"}}, "develop": {"pytest": {"version": "==8.0.0"}}}`,
	})
	s.cfg.Env = append(s.cfg.Env, "PANDO_START_COMMAND=greet-serve")
	greetWheel(t, py, filepath.Join(s.cfg.BuildDir, "vendor"))
	res, err := s.build(t)
	out := s.out.String()
	if err != nil || !strings.Contains(out, "Successfully installed greet-1.0.0") || !strings.Contains(out, "Installing dependencies from Pipfile.lock") {
		t.Fatalf("err %v\n%s", err, out)
	}
	// No Procfile: the start command given with push -c, which the API
	// passes to staging.
	if res.StartCommand != "" || !strings.Contains(out, "Start command: greet-serve (given with -c") {
		t.Fatalf("start command %q\n%s", res.StartCommand, out)
	}

	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "Pipfile.lock"), []byte(`{"default": {"greet": {"git": "https://example.com/greet.git", "ref": "abc"}}}`), 0o644))
	_, err = s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "greet comes from git") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}

	must(t, os.Remove(filepath.Join(s.cfg.BuildDir, "Pipfile.lock")))
	_, err = s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "Run 'pipenv lock'") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}

	// A pyproject.toml app: its [project] dependencies, not the project
	// itself (whose build backend is not vendored).
	must(t, os.Remove(filepath.Join(s.cfg.BuildDir, "Pipfile")))
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "pyproject.toml"), []byte("[project]\nname = \"app\"\nversion = \"0.1\"\ndependencies = [\"greet==1.0.0\"]\n"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "Installing dependencies from pyproject.toml ([project] dependencies)") ||
		!strings.Contains(s.out.String(), "Successfully installed greet-1.0.0") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "pyproject.toml"), []byte("[project]\nname = \"app\"\nversion = \"0.1\"\ndependencies = []\n"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "No packages in pyproject.toml ([project] dependencies): nothing to install") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "pyproject.toml"), []byte("[tool.poetry]\nname = \"app\"\n"), 0o644))
	_, err = s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "poetry export -f requirements.txt") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}
}

func TestPython_runtimeTxtAndUnreachableIndexFailNamingTheFix(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	_, version := hostPython(t)
	s := pythonStage(t, map[string]string{"requirements.txt": "greet==1.0.0\n", "runtime.txt": "python-2.7.18\n", "Procfile": "web: greet-serve\n"})
	_, err := s.build(t)
	if want := "runtime.txt asks for 'python-2.7.18' but the stack 'teststack' has Python " + version; builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), want) {
		t.Fatalf("err = %v, want output with %q\n%s", err, want, s.out.String())
	}

	// runtime.txt met; the index is a loopback port nothing listens on.
	major := strings.Join(strings.SplitN(version, ".", 3)[:2], ".")
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "runtime.txt"), []byte("python-"+major+".x\n"), 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	index := "http://" + ln.Addr().String() + "/simple"
	ln.Close()
	s.cfg.Env = append(s.cfg.Env, "PIP_INDEX_URL="+index, "PIP_RETRIES=0")
	_, err = s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "met by "+version) ||
		!strings.Contains(out, "egress is off") || !strings.Contains(out, "pip download -r requirements.txt --dest vendor") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}

func TestPython_noStartCommandFailsStagingBeforeInstalling(t *testing.T) {
	t.Parallel()
	hostPython(t)
	s := pythonStage(t, map[string]string{"requirements.txt": "flask\n", "app.py": "print('hi')\n"})
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "No start command: the app has no Procfile and was pushed without -c") ||
		!strings.Contains(out, "Add a Procfile with a web line") || !strings.Contains(out, "push with -c 'COMMAND'") || strings.Contains(out, "Installing dependencies") {
		t.Fatalf("err = %v\n%s", err, out)
	}

	// A Procfile with other process types only does not start the web one.
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "Procfile"), []byte("worker: python app.py\nweb:\n"), 0o644))
	_, err = s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "the app has a Procfile without a web line") {
		t.Fatalf("err = %v\n%s", err, s.out.String())
	}

	// With a start command and requirements naming no package, pip is not
	// run: the app still gets its virtualenv, without pip.
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "Procfile"), []byte("web: python app.py\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "requirements.txt"), []byte("# none yet\n\n"), 0o644))
	_, err = s.build(t)
	out = s.out.String()
	if err != nil || !strings.Contains(out, "No packages in requirements.txt: nothing to install (pip is not run)") ||
		!strings.Contains(out, "Creating a virtualenv in the droplet (.venv, without pip)") || strings.Contains(out, "pip install") {
		t.Fatalf("err = %v\n%s", err, out)
	}
	venvPy := filepath.Join(s.cfg.BuildDir, ".venv", "bin", "python")
	got, err := exec.Command(venvPy, "-c", "import sys, importlib.util as u; print(sys.prefix != sys.base_prefix, u.find_spec('pip') is None)").Output()
	if err != nil || strings.TrimSpace(string(got)) != "True True" {
		t.Fatalf("%s: %q, %v (want a venv without pip)", venvPy, got, err)
	}
}

func TestPython_noPythonOnTheStackFailsNamingIt(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{"requirements.txt": "flask\n"})
	s.cfg.Env = []string{"PATH=" + toolsOnlyPath(t), "CF_STACK=bare"}
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "The stack 'bare' has no Python") || strings.Contains(out, "command not found") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}

// toolsOnlyPath is a PATH with the tools the buildpack scripts use and no
// language runtime.
func toolsOnlyPath(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	for _, tool := range []string{"bash", "cat", "dirname", "mktemp", "ls", "grep", "tee", "rm", "mkdir", "tr", "awk"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		must(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	return bin
}

// TestPython_pipCacheKeptBetweenStagings serves greet's wheel from a
// package index on loopback (PEP 503, with PyPI's cache headers) and counts
// its downloads: a re-stage finds the wheel in the pip cache kept in the
// build cache.
func TestPython_pipCacheKeptBetweenStagings(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	py, _ := hostPython(t)
	wheels := t.TempDir()
	greetWheel(t, py, wheels)
	whl := greetWhl
	body, err := os.ReadFile(filepath.Join(wheels, whl))
	must(t, err)
	sum := sha256.Sum256(body)
	var downloads atomic.Int64
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/greet/":
			w.Header().Set("Cache-Control", "max-age=600, public")
			fmt.Fprintf(w, `<!DOCTYPE html><html><body><a href="/files/%s#sha256=%s">%s</a></body></html>`, whl, hex.EncodeToString(sum[:]), whl)
		case "/files/" + whl:
			downloads.Add(1)
			w.Header().Set("Cache-Control", "max-age=365000000, immutable, public")
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer index.Close()
	s := pythonStage(t, map[string]string{"requirements.txt": "greet==1.0.0\n", "Procfile": "web: greet-serve\n"})
	// pip caches what it downloads over HTTPS or from a trusted host.
	host := strings.TrimPrefix(index.URL, "http://")
	s.cfg.Env = append(s.cfg.Env, "PIP_INDEX_URL="+index.URL+"/simple", "PIP_TRUSTED_HOST="+host, "PIP_FIND_LINKS=")
	if _, err := s.build(t); err != nil || downloads.Load() != 1 {
		t.Fatalf("first staging: %v, %d downloads\n%s", err, downloads.Load(), s.out.String())
	}
	if !strings.Contains(s.out.String(), "Kept the virtualenv in the build cache") {
		t.Fatalf("first staging did not keep its venv:\n%s", s.out.String())
	}
	venv := filepath.Join(s.cfg.BuildDir, ".venv")
	greetServe := filepath.Join(venv, "bin", "greet-serve")

	// Unchanged requirements and python: the kept venv, pip not run. (The
	// venv of the first staging is still there, as if pushed: replaced.)
	must(t, os.WriteFile(greetServe, []byte("pushed"), 0o755))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "Replacing the pushed .venv") ||
		!strings.Contains(s.out.String(), "Reusing the virtualenv kept from an earlier staging (requirements.txt and the stack's Python") ||
		strings.Contains(s.out.String(), "pip install") {
		t.Fatalf("restage: %v\n%s", err, s.out.String())
	}
	if b, err := os.ReadFile(greetServe); err != nil || !strings.Contains(string(b), "from greet import serve") {
		t.Fatalf("restored greet-serve = %q, %v", b, err)
	}

	// Changed requirements install again, from the pip cache.
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "requirements.txt"), []byte("greet==1.0.0 # the greeter\n"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "requirements.txt (or the stack's Python, vendor/ or pip settings) changed since the kept virtualenv: installing again") ||
		!strings.Contains(s.out.String(), "Using the pip cache kept from earlier stagings") || !strings.Contains(s.out.String(), "Successfully installed greet-1.0.0") {
		t.Fatalf("restage with changed requirements: %v\n%s", err, s.out.String())
	}
	if n := downloads.Load(); n != 1 {
		t.Fatalf("the re-stage downloaded the wheel again (%d downloads)\n%s", n, s.out.String())
	}

	// An unpinned requirement could resolve to a newer release next time:
	// its venv is not kept, and the kept one is dropped (one at most).
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "requirements.txt"), []byte("greet>=1.0\n"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "Not keeping the virtualenv for reuse: greet 1.0.0 is not pinned with == in requirements.txt") {
		t.Fatalf("unpinned: %v\n%s", err, s.out.String())
	}
	if _, err := os.Stat(filepath.Join(s.cfg.CacheDir, "python_buildpack", "venv")); !os.IsNotExist(err) {
		t.Fatalf("the build cache still holds a venv: %v", err)
	}
}

// TestPython_freshVenvIsCopiedFromTheBuildCacheNotEnsurepip: the first
// install keeps a copy of its fresh venv (pip and setuptools, no app
// package) in the build cache; a later install copies it instead of
// running ensurepip, and the app's venv still has a working pip.
func TestPython_freshVenvIsCopiedFromTheBuildCacheNotEnsurepip(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	py, version := hostPython(t)
	// Unpinned: the whole venv is not kept, so every staging installs.
	s := pythonStage(t, map[string]string{"requirements.txt": "greet>=1.0\n", "Procfile": "web: greet-serve\n"})
	greetWheel(t, py, filepath.Join(s.cfg.BuildDir, "vendor"))
	seed := filepath.Join(s.cfg.CacheDir, "python_buildpack", "venv-seed")
	seedSite := filepath.Join(seed, "lib", "python"+version[:strings.LastIndex(version, ".")], "site-packages")
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "installed by ensurepip; a copy kept in the build cache for the next staging") {
		t.Fatalf("first staging: %v\n%s", err, s.out.String())
	}
	// The copy is the venv before pip installed the app's packages.
	if m, _ := filepath.Glob(filepath.Join(seedSite, "pip-*.dist-info")); len(m) != 1 {
		t.Fatalf("the kept venv has no pip in %s: %v", seedSite, m)
	}
	if m, _ := filepath.Glob(filepath.Join(seedSite, "greet*")); len(m) != 0 {
		t.Fatalf("the kept venv holds the app's package: %v", m)
	}

	// A mark in the kept copy shows up in the next staging's venv.
	must(t, os.WriteFile(filepath.Join(seed, "seed-mark"), []byte("kept"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "copied from the build cache (ensurepip not run)") ||
		strings.Contains(s.out.String(), "installed by ensurepip") || !strings.Contains(s.out.String(), "Successfully installed greet-1.0.0") {
		t.Fatalf("restage: %v\n%s", err, s.out.String())
	}
	if _, err := os.Stat(filepath.Join(s.cfg.BuildDir, ".venv", "seed-mark")); err != nil {
		t.Fatalf("the venv was not copied from the build cache: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(seedSite, "greet*")); len(m) != 0 {
		t.Fatalf("installing changed the kept venv: %v", m)
	}

	// Moved (as /tmp/app becomes /home/vcap/app): the app, and the venv's
	// own pip and setuptools, work.
	moved := filepath.Join(filepath.Dir(s.cfg.BuildDir), "moved")
	must(t, os.Rename(s.cfg.BuildDir, moved))
	venv := filepath.Join(moved, ".venv")
	if body, want := serve(t, &stage{cfg: builder.Config{BuildDir: moved, ProfileDir: s.cfg.ProfileDir}}, "greet-serve"), "greet 1.0.0 on python "+version+" in venv"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}
	freeze := exec.Command(filepath.Join(venv, "bin", "pip"), "freeze")
	freeze.Env = []string{"PATH=/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK=1", "HOME=" + t.TempDir()}
	if out, err := freeze.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "greet==1.0.0" {
		t.Fatalf("the venv's pip freeze: %q, %v", out, err)
	}
	if out, err := exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import pip, pkg_resources; print(pip.__file__)").CombinedOutput(); err != nil ||
		!strings.HasPrefix(string(out), venv+"/") {
		t.Fatalf("the venv's pip and setuptools: %q, %v", out, err)
	}
	must(t, os.Rename(moved, s.cfg.BuildDir))

	// A copy made by another python or ensurepip (its key differs) is
	// replaced by a new one.
	must(t, os.WriteFile(seed+".key", []byte("seed1 another python"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "installed by ensurepip; a copy kept in the build cache") {
		t.Fatalf("restage with another key: %v\n%s", err, s.out.String())
	}
	if _, err := os.Stat(filepath.Join(seed, "seed-mark")); !os.IsNotExist(err) {
		t.Fatalf("the stale copy was kept: %v", err)
	}

	// Pinned: the installed venv is kept too, its files that are still
	// as in the fresh copy hard-linked to it (the cache stores them once).
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "requirements.txt"), []byte("greet==1.0.0\n"), 0o644))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "copied from the build cache (ensurepip not run)") ||
		!strings.Contains(s.out.String(), "Kept the virtualenv in the build cache") {
		t.Fatalf("pinned restage: %v\n%s", err, s.out.String())
	}
	kept := filepath.Join(s.cfg.CacheDir, "python_buildpack", "venv", strings.TrimPrefix(seedSite, seed))
	for _, f := range []string{"pip/__init__.py", "setuptools/__init__.py"} {
		a, errA := os.Stat(filepath.Join(kept, f))
		b, errB := os.Stat(filepath.Join(seedSite, f))
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Fatalf("kept venv's %s is not the fresh copy's: %v, %v", f, errA, errB)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(kept, "greet", "__init__.py")); len(m) != 1 {
		t.Fatalf("the kept venv lacks greet: %v", m)
	}
}
