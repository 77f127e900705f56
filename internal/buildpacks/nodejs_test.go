package buildpacks_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/testenv"
)

// nodeVersion returns the host's `node --version` (v20.1.2), the node the
// nodejs_buildpack uses in these tests; it needs npm too.
func nodeVersion(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "no node on PATH (apt-get install nodejs npm)")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		testenv.Missing(t, "no npm on PATH (apt-get install nodejs npm)")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestNodejs_versionRanges(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	cases := []struct {
		version, rng string
		exit         int // 0 met, 1 unmet, 2 invalid
	}{
		{"20.20.2", "20.20.2", 0},
		{"20.20.2", "=v20.20.2", 0},
		{"20.20.2", "20.20.1", 1},
		{"20.20.2", "^20", 0},
		{"20.20.2", "^20.21.0", 1},
		{"21.0.0", "^20.1.0", 1},
		{"0.2.5", "^0.2.3", 0},
		{"0.3.0", "^0.2.3", 1},
		{"0.0.3", "^0.0.3", 0},
		{"0.0.4", "^0.0.3", 1},
		{"0.9.0", "^0.x", 0},
		{"20.20.2", "~20.20", 0},
		{"20.20.2", "~20.20.3", 1},
		{"20.21.0", "~20.20.3", 1},
		{"20.9.0", "~20", 0},
		{"20.20.2", ">=18", 0},
		{"20.20.2", ">= 22", 1},
		{"20.20.2", ">20", 1},
		{"20.20.2", ">20.20", 1},
		{"20.20.2", ">20.19", 0},
		{"20.20.2", "<=20", 0},
		{"20.20.2", "<20.20.2", 1},
		{"20.20.2", ">=18 <21", 0},
		{"20.20.2", ">=18 <20", 1},
		{"20.20.2", "20.x", 0},
		{"20.20.2", "20.20.X", 0},
		{"20.20.2", "18.x || 22.x", 1},
		{"20.20.2", "18.x || 20.x", 0},
		{"20.20.2", "*", 0},
		{"20.20.2", "", 0},
		{"20.20.2", "18 - 20", 0},
		{"20.20.2", "18 - 20.19", 1},
		{"20.20.2", "20.20.3 - 22", 1},
		{"20.0.0-rc.1", ">=20", 1},
		{"20.20.2", "latest", 2},
		{"20.20.2", ">=abc", 2},
		{"20.20.2", "1.2.3.4", 2},
	}
	for _, c := range cases {
		err := exec.Command("node", "nodejs_buildpack/lib/pkg.js", "satisfies", c.version, c.rng).Run()
		got := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != c.exit {
			t.Errorf("satisfies %s %q: exit %d, want %d", c.version, c.rng, got, c.exit)
		}
	}
}

// nodeApp is a server.js answering with node's version and NODE_ENV,
// started by scripts.start.
func nodeApp(engines string) map[string]string {
	return map[string]string{
		"package.json": `{"name": "hello", "version": "1.0.0", "scripts": {"start": "node server.js"}` + engines + `}`,
		"server.js": `const http = require('http');
http.createServer((req, res) => res.end('node ' + process.version + ' ' + process.env.NODE_ENV))
  .listen(Number(process.env.PORT), '127.0.0.1');
`,
	}
}

func TestNodejs_detectsAndRunsScriptsStartOnTheStacksNode(t *testing.T) {
	t.Parallel()
	v := nodeVersion(t)
	major := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0]
	s := newStage(t, nodeApp(`, "engines": {"node": "^`+major+`.0.0 || >=99"}`))
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	// scripts.start only runs node on a file: that command, without npm.
	if res.BuildpackName != "nodejs_buildpack" || res.DetectedBuildpack != "nodejs 1.0.0" || res.StartCommand != "node server.js" {
		t.Fatalf("result = %+v\n%s", res, s.out.String())
	}
	for _, want := range []string{"Using the stack's Node.js " + v, "met by " + v, "No dependencies in package.json", "Start command: node server.js"} {
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, s.out.String())
		}
	}
	if body, want := serve(t, s, res.StartCommand), "node "+v+" production"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}

	// Anything more (here a prestart script) runs with npm start.
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "package.json"), []byte(`{"name": "hello", "scripts": {"prestart": "echo prestart", "start": "node server.js"}}`), 0o644))
	if res, err = s.build(t); err != nil || res.StartCommand != "npm start" || !strings.Contains(s.out.String(), "Start command: npm start") {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}
	if body, want := serve(t, s, res.StartCommand), "node "+v+" production"; body != want {
		t.Fatalf("GET / with npm start = %q, want %q", body, want)
	}
}

func TestNodejs_serverJSIsTheStartWithoutScriptsStart(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	app := nodeApp("")
	app["package.json"] = `{"name": "hello", "engines": {"npm": ">=999"}}`
	s := newStage(t, app)
	res, err := s.build(t)
	if err != nil || res.StartCommand != "node server.js" || !strings.Contains(s.out.String(), "Warning: package.json asks for npm '>=999' (engines.npm)") {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}
	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "package.json"), []byte(`{"name": "hello", "engines": {"npm": ">=1"}}`), 0o644))
	if res, err = s.build(t); err != nil || strings.Contains(s.out.String(), "engines.npm") {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}
	must(t, os.Rename(filepath.Join(s.cfg.BuildDir, "server.js"), filepath.Join(s.cfg.BuildDir, "app.js")))
	if res, err = s.build(t); err != nil || res.StartCommand != "node app.js" {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}
	must(t, os.Remove(filepath.Join(s.cfg.BuildDir, "app.js")))
	res, err = s.build(t)
	if err != nil || res.StartCommand != "" || !strings.Contains(s.out.String(), "no start command") {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}
}

func TestNodejs_unmetEnginesFailsNamingBothVersions(t *testing.T) {
	t.Parallel()
	v := nodeVersion(t)
	s := newStage(t, nodeApp(`, "engines": {"node": ">=99.1"}`))
	s.cfg.Env = append(s.cfg.Env, "CF_STACK=teststack")
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed {
		t.Fatalf("err = %v, want finalize failure\n%s", err, out)
	}
	if want := "requires node '>=99.1' (engines.node) but the stack 'teststack' has node " + v; !strings.Contains(out, want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}

	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "package.json"), []byte(`{"engines": {"node": "lts"}}`), 0o644))
	_, err = s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), `engines.node "lts" is not a version range`) {
		t.Fatalf("err = %v\n%s", err, s.out.String())
	}

	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "package.json"), []byte(`{"name": `), 0o644))
	_, err = s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "package.json cannot be read") {
		t.Fatalf("err = %v\n%s", err, s.out.String())
	}
}

func TestNodejs_noNodeOnTheStackFailsNamingIt(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	// A PATH with the tools the scripts use, but no node.
	bin := t.TempDir()
	for _, tool := range []string{"bash", "cat", "dirname", "mktemp", "ls", "grep", "tee", "rm", "mkdir"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		must(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	s := newStage(t, nodeApp(""))
	s.cfg.Env = []string{"PATH=" + bin, "CF_STACK=bare"}
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "The stack 'bare' has no Node.js") || strings.Contains(out, "command not found") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}

// greetPackages are local packages an app depends on with file: specs, so
// npm installs them with no registry: greet (a dependency with a bin) and
// devtool (a devDependency).
var greetPackages = map[string]string{
	"greet/package.json": `{"name": "greet", "version": "1.0.0", "bin": {"greet-serve": "bin.js"}}`,
	"greet/bin.js": `#!/usr/bin/env node
require('http').createServer((req, res) => res.end('greet ' + process.env.NODE_ENV))
  .listen(Number(process.env.PORT), '127.0.0.1');
`,
	"devtool/package.json": `{"name": "devtool", "version": "1.0.0"}`,
}

// greetApp is an app whose package.json has deps (its "dependencies" and
// "devDependencies" members) on greetPackages, started by greet's bin.
func greetApp(deps string) map[string]string {
	app := map[string]string{
		"package.json": `{"name": "app", "version": "1.0.0", ` + deps + `}`,
		"Procfile":     "web: greet-serve\n",
	}
	maps.Copy(app, greetPackages)
	return app
}

// requireProductionInstall fails unless the staged node_modules has dep
// (a file below node_modules) and not the devDependency devtool.
func requireProductionInstall(t *testing.T, s *stage, dep string) {
	t.Helper()
	nodeModules := filepath.Join(s.cfg.BuildDir, "node_modules")
	if _, err := os.Stat(filepath.Join(nodeModules, dep)); err != nil {
		t.Fatalf("%s not installed: %v\n%s", dep, err, s.out.String())
	}
	if _, err := os.Lstat(filepath.Join(nodeModules, "devtool")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("devDependency installed (%v)\n%s", err, s.out.String())
	}
}

// requireNodeModulesReused restages s with the app's files afresh (no
// node_modules) and an unchanged lock file (yarn.lock, package-lock.json):
// the node_modules kept in the build cache is used, nothing is installed,
// and the app answers want.
func requireNodeModulesReused(t *testing.T, s *stage, lock, want string) {
	t.Helper()
	must(t, os.RemoveAll(filepath.Join(s.cfg.BuildDir, "node_modules")))
	res, err := s.build(t)
	out := s.out.String()
	if err != nil || !strings.Contains(out, "Reusing node_modules ("+lock+" unchanged)") || strings.Contains(out, "Installing dependencies") {
		t.Fatalf("err %v\n%s", err, out)
	}
	if body := serve(t, s, res.StartCommand); body != want {
		t.Fatalf("GET / after reuse = %q", body)
	}
}

func TestNodejs_installsDependenciesOfflineWithoutDevDependencies(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	s := newStage(t, greetApp(`"dependencies": {"greet": "file:greet"}, "devDependencies": {"devtool": "file:devtool"}`))
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	if !strings.Contains(s.out.String(), "Installing dependencies: npm install --omit=dev (offline") {
		t.Fatalf("output:\n%s", s.out.String())
	}
	requireProductionInstall(t, s, "greet/package.json")
	// node_modules/.bin is on PATH and NODE_ENV is production at run time.
	if body := serve(t, s, res.StartCommand); body != "greet production" {
		t.Fatalf("GET / = %q", body)
	}

	// With the lock file npm install wrote: npm ci.
	must(t, os.RemoveAll(filepath.Join(s.cfg.BuildDir, "node_modules")))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "npm ci --omit=dev") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}
}

func TestNodejs_vendoredNodeModulesAreUsedAndDevDependenciesPruned(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	app := map[string]string{
		"package.json":                      `{"name": "app", "version": "1.0.0", "dependencies": {"dep": "1.0.0"}, "devDependencies": {"devtool": "1.0.0"}}`,
		"node_modules/dep/package.json":     `{"name": "dep", "version": "1.0.0"}`,
		"node_modules/dep/index.js":         "module.exports = 'dep';\n",
		"node_modules/devtool/package.json": `{"name": "devtool", "version": "1.0.0"}`,
		"server.js":                         "require('dep');\n",
	}
	s := newStage(t, app)
	if _, err := s.build(t); err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	out := s.out.String()
	if !strings.Contains(out, "Prebuild detected") || strings.Contains(out, "Installing dependencies") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.BuildDir, "node_modules", "dep", "index.js")); err != nil {
		t.Fatalf("vendored dependency gone: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.BuildDir, "node_modules", "devtool")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("devDependency not pruned (%v)\n%s", err, out)
	}
}

func TestNodejs_uncachedPackageOfflineFailsWithVendoringAdvice(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	s := newStage(t, map[string]string{
		"package.json": `{"name": "app", "version": "1.0.0", "dependencies": {"left-pad": "^1.3.0"}}`,
		"server.js":    "require('left-pad');\n",
	})
	start := time.Now()
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(out, "egress is off") || !strings.Contains(out, "run 'npm install'") {
		t.Fatalf("err = %v\n%s", err, out)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("failing took %v: npm must not wait for a network", d)
	}
}

// registry is an npm registry on loopback holding one package at 1.0.0
// (with the publish time yarn 4 asks for), counting the requests it
// answers and the tarballs it serves.
type registry struct {
	srv                *httptest.Server
	requests, tarballs atomic.Int64
}

// newRegistry serves greetPackages' greet.
func newRegistry(t *testing.T) *registry {
	t.Helper()
	return newRegistryOf(t, "greet", map[string]string{"package.json": greetPackages["greet/package.json"], "bin.js": greetPackages["greet/bin.js"]})
}

// newRegistryOf serves the package name made of files (paths in the
// package: content); its package.json is also its version's metadata.
func newRegistryOf(t *testing.T, name string, files map[string]string) *registry {
	t.Helper()
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, path := range slices.Sorted(maps.Keys(files)) {
		body := files[path]
		must(t, tw.WriteHeader(&tar.Header{Name: "package/" + path, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)}))
		_, err := tw.Write([]byte(body))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, gz.Close())
	sum := sha512.Sum512(tgz.Bytes())
	var version map[string]any
	must(t, json.Unmarshal([]byte(files["package.json"]), &version))
	tarball := "/" + name + "/-/" + name + "-1.0.0.tgz"
	r := &registry{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		switch req.URL.Path {
		case "/" + name:
			v := maps.Clone(version)
			v["dist"] = map[string]string{"tarball": r.srv.URL + tarball, "integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum[:])}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"name": name, "dist-tags": map[string]string{"latest": "1.0.0"},
				"time":     map[string]string{"created": "2020-01-01T00:00:00.000Z", "1.0.0": "2020-01-01T00:00:00.000Z"},
				"versions": map[string]any{"1.0.0": v},
			})
		case tarball:
			r.tarballs.Add(1)
			_, _ = w.Write(tgz.Bytes())
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func TestNodejs_npmCacheKeptBetweenStagingsServesAnOfflineRestage(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	reg := newRegistry(t)
	s := newStage(t, map[string]string{
		"package.json": `{"name": "app", "version": "1.0.0", "dependencies": {"greet": "^1.0.0"}}`,
		"Procfile":     "web: greet-serve\n",
	})
	base := append(s.cfg.Env, "npm_config_registry="+reg.srv.URL+"/", "npm_config_userconfig="+filepath.Join(t.TempDir(), "npmrc"))

	// Where staging may reach a registry, the operator lifts offline mode.
	s.cfg.Env = append(base, "npm_config_offline=false")
	if _, err := s.build(t); err != nil {
		t.Fatalf("Build with a registry: %v\n%s", err, s.out.String())
	}
	if reg.requests.Load() == 0 || strings.Contains(s.out.String(), "(offline") {
		t.Fatalf("registry requests %d\n%s", reg.requests.Load(), s.out.String())
	}

	// Re-push: a fresh app dir (with the lock file npm wrote), offline, and
	// the registry gone: the kept npm cache has everything.
	reg.srv.Close()
	must(t, os.RemoveAll(filepath.Join(s.cfg.BuildDir, "node_modules")))
	s.cfg.Env = base
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("offline restage: %v\n%s", err, s.out.String())
	}
	for _, want := range []string{"Using the npm cache kept from earlier stagings", "npm ci --omit=dev (offline"} {
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, s.out.String())
		}
	}
	if body := serve(t, s, res.StartCommand); body != "greet production" {
		t.Fatalf("GET / = %q", body)
	}
}

func TestNodejs_nodeModulesKeptAndReusedWhileTheLockFileIsUnchanged(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	s := newStage(t, greetApp(`"dependencies": {"greet": "file:greet"}`))
	nodeModules := filepath.Join(s.cfg.BuildDir, "node_modules")
	// npm install writes the lock file; nothing is kept without one.
	if _, err := s.build(t); err != nil || strings.Contains(s.out.String(), "Kept node_modules") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}
	must(t, os.RemoveAll(nodeModules))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "npm ci --omit=dev") ||
		!strings.Contains(s.out.String(), "Kept node_modules in the build cache for the next staging (keyed by package-lock.json)") {
		t.Fatalf("err %v\n%s", err, s.out.String())
	}

	// Same lock file: the kept node_modules is used, npm installs nothing.
	// The app's files come fresh from the package: greet's bin is not
	// executable until the bins are linked again.
	must(t, os.Chmod(filepath.Join(s.cfg.BuildDir, "greet", "bin.js"), 0o644))
	requireNodeModulesReused(t, s, "package-lock.json", "greet production")

	// A changed lock file (here only re-indented) invalidates it.
	lockPath := filepath.Join(s.cfg.BuildDir, "package-lock.json")
	lock, err := os.ReadFile(lockPath)
	must(t, err)
	must(t, os.WriteFile(lockPath, bytes.ReplaceAll(lock, []byte("\n  "), []byte("\n    ")), 0o644))
	must(t, os.RemoveAll(nodeModules))
	_, err = s.build(t)
	out := s.out.String()
	if err != nil || strings.Contains(out, "Reusing node_modules") || !strings.Contains(out, "package-lock.json (or the stack's node or npm) changed") ||
		!strings.Contains(out, "npm ci --omit=dev") {
		t.Fatalf("err %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(nodeModules, "greet", "package.json")); err != nil {
		t.Fatalf("greet not installed: %v", err)
	}
}
