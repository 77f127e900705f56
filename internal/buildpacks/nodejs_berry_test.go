package buildpacks_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/testenv"
)

// berryVersion is the yarn 2+ release `make test-deps` (scripts/install-deps.sh)
// fetches for these tests.
const berryVersion = "4.18.1"

// hostBerry returns the yarn berry release the tests commit into their
// apps: one file, as `yarn set version` leaves it in .yarn/releases.
func hostBerry(t *testing.T) string {
	t.Helper()
	nodeVersion(t)
	p := os.Getenv("PANDO_TEST_YARN_BERRY")
	if p == "" {
		p = "/var/cache/pando/test-deps/yarn-" + berryVersion + ".cjs"
	}
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "no yarn berry release at "+p+" (make test-deps fetches it; or set PANDO_TEST_YARN_BERRY)")
	}
	return p
}

// berryPackages are local packages a berry app depends on (file: specs,
// so yarn needs no registry): hello (a dependency with a bin and a main)
// and devtool (a devDependency).
var berryPackages = map[string]string{
	"hello/package.json": `{"name": "hello", "version": "1.0.0", "main": "index.js", "bin": {"hello-serve": "serve.js"}}`,
	"hello/index.js":     "module.exports = () => 'hello ' + process.env.NODE_ENV;\n",
	"hello/serve.js": `#!/usr/bin/env node
const hello = require('./index.js');
require('http').createServer((req, res) => res.end(hello())).listen(Number(process.env.PORT), '127.0.0.1');
`,
	"devtool/package.json": `{"name": "devtool", "version": "1.0.0"}`,
}

// berryApp is a yarn berry project as its developer pushes it: package.json,
// .yarnrc.yml (yarnPath, and nodeLinker unless linker is ""), the release in
// .yarn/releases and the yarn.lock that release writes, with a server.js
// that requires hello.
func berryApp(t *testing.T, linker string) map[string]string {
	t.Helper()
	release, err := os.ReadFile(hostBerry(t))
	must(t, err)
	rel := ".yarn/releases/yarn-" + berryVersion + ".cjs"
	rc := "yarnPath: " + rel + "\n"
	if linker != "" {
		rc += "nodeLinker: " + linker + " # as the developer set it\n"
	}
	app := map[string]string{
		"package.json": `{"name": "app", "version": "1.0.0", "packageManager": "yarn@` + berryVersion + `",
  "dependencies": {"hello": "file:./hello"}, "devDependencies": {"devtool": "file:./devtool"}}`,
		".yarnrc.yml": rc,
		rel:           string(release),
		"server.js": `const hello = require('hello');
require('http').createServer((req, res) => res.end(hello())).listen(Number(process.env.PORT), '127.0.0.1');
`,
	}
	maps.Copy(app, berryPackages)
	lock := fixtures.get(t, "yarn "+berryVersion+" lock of berryApp, nodeLinker "+strconv.Quote(linker), func() ([]byte, error) { return berryLock(app, rel) })
	app["yarn.lock"] = string(lock)
	return app
}

// berryLock is the yarn.lock the app's own yarn (rel) writes for it: once
// per test binary and linker (fixtures), as the developer ran it once.
func berryLock(app map[string]string, rel string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "berryapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := writeTree(filepath.Join(dir, "app"), app); err != nil {
		return nil, err
	}
	// CI=true makes yarn immutable by default: this install writes the lock.
	cmd := exec.Command("node", filepath.Join(dir, "app", rel), "install")
	cmd.Dir = filepath.Join(dir, "app")
	cmd.Env = append(os.Environ(), "YARN_ENABLE_NETWORK=false", "YARN_ENABLE_TELEMETRY=false", "YARN_ENABLE_GLOBAL_CACHE=false", "YARN_ENABLE_IMMUTABLE_INSTALLS=false",
		"YARN_CACHE_FOLDER="+filepath.Join(dir, "yarn-cache"), "YARN_ENABLE_PROGRESS_BARS=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("yarn install: %w\n%s", err, out)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "app", "yarn.lock"))
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(lock), "__metadata:") {
		return nil, fmt.Errorf("yarn %s wrote a yarn.lock without __metadata:\n%s", berryVersion, lock)
	}
	return lock, nil
}

// requireOut fails unless out has every string.
func requireOut(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestNodejs_yarnBerryAppRunsItsOwnYarnOnTheStacksNodeWithNodeModules(t *testing.T) {
	t.Parallel()
	app := berryApp(t, "node-modules")
	app["Procfile"] = "web: hello-serve\n"
	s := newStage(t, app)
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	// The app's release, not the stack's yarn (yarn 1 here, if any, which
	// cannot read a berry lock), offline and immutable.
	requireOut(t, out, "Using the app's yarn "+berryVersion+" (.yarn/releases/yarn-"+berryVersion+".cjs, yarnPath in .yarnrc.yml) on the stack's node",
		"nodeLinker: node-modules", "Installing dependencies: yarn workspaces focus --all --production (offline",
		"Kept node_modules in the build cache for the next staging (keyed by yarn.lock)")
	requireProductionInstall(t, s, "hello/index.js")
	if body := serve(t, s, res.StartCommand); body != "hello production" {
		t.Fatalf("GET / = %q", body)
	}
	requireNodeModulesReused(t, s, "yarn.lock", "hello production")
}

func TestNodejs_yarnBerryPnPAppLoadsItsPackagesThroughPnpAtRunTime(t *testing.T) {
	t.Parallel()
	// No nodeLinker in .yarnrc.yml: yarn's own default, pnp.
	s := newStage(t, berryApp(t, ""))
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	requireOut(t, out, "Using the app's yarn "+berryVersion, "nodeLinker: pnp (packages in the app's yarn cache, loaded through .pnp.cjs); 0 kept from earlier stagings",
		"Installing dependencies: yarn workspaces focus --all --production (offline")
	if strings.Contains(out, "Kept node_modules") || res.StartCommand != "node server.js" {
		t.Fatalf("start %q\n%s", res.StartCommand, out)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.BuildDir, "node_modules")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a pnp install left node_modules (%v)\n%s", err, out)
	}
	zips, err := filepath.Glob(filepath.Join(s.cfg.BuildDir, ".yarn", "cache", "hello-file-*.zip"))
	if err != nil || len(zips) != 1 {
		t.Fatalf("hello's zip in the app's yarn cache: %v %v\n%s", zips, err, out)
	}
	// Only profile.d's NODE_OPTIONS lets node find hello: plain node cannot.
	if body := serve(t, s, res.StartCommand); body != "hello production" {
		t.Fatalf("GET / = %q", body)
	}
	plain := exec.Command("node", "-e", "require('hello')")
	plain.Dir = s.cfg.BuildDir
	if err := plain.Run(); err == nil {
		t.Fatal("node found hello without .pnp.cjs: the test proves nothing")
	}

	// A new push (the app's files afresh): the package zips come from the
	// build cache; one kept for a package the app no longer uses goes, from
	// the droplet and the build cache.
	// (The builder gives each buildpack a cache dir of its own.)
	dirs, err := filepath.Glob(filepath.Join(s.cfg.CacheDir, "*", "yarn"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("the nodejs_buildpack's yarn dir in the build cache: %v %v", dirs, err)
	}
	kept := dirs[0]
	b, err := os.ReadFile(zips[0])
	must(t, err)
	stale := "gone-npm-1.0.0-0123456789-10c0.zip"
	must(t, os.WriteFile(filepath.Join(kept, stale), b, 0o644))
	must(t, os.RemoveAll(filepath.Join(s.cfg.BuildDir, ".yarn", "cache")))
	must(t, os.Remove(filepath.Join(s.cfg.BuildDir, ".pnp.cjs")))
	res, err = s.build(t)
	out = s.out.String()
	if err != nil || !strings.Contains(out, "nodeLinker: pnp (packages in the app's yarn cache, loaded through .pnp.cjs); 2 kept from earlier stagings") {
		t.Fatalf("err %v\n%s", err, out)
	}
	if body := serve(t, s, res.StartCommand); body != "hello production" {
		t.Fatalf("GET / after a restage = %q", body)
	}
	for _, dir := range []string{filepath.Join(s.cfg.BuildDir, ".yarn", "cache"), kept} {
		if _, err := os.Stat(filepath.Join(dir, stale)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still has the unused %s (%v)", dir, stale, err)
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(zips[0]))); err != nil {
			t.Errorf("%s lost hello's zip: %v", dir, err)
		}
	}
}

func TestNodejs_yarnPathNotInTheAppFailsNamingIt(t *testing.T) {
	t.Parallel()
	app := berryApp(t, "node-modules")
	delete(app, ".yarn/releases/yarn-"+berryVersion+".cjs")
	s := newStage(t, app)
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed {
		t.Fatalf("err = %v, want a finalize failure\n%s", err, out)
	}
	requireOut(t, out, ".yarnrc.yml runs yarn from '.yarn/releases/yarn-"+berryVersion+".cjs' (yarnPath), which is not a file in the app")
}

// forwardProxy is an HTTP forward proxy on loopback (staging's egress
// proxy, as the cell serves it: CONNECT tunnels and absolute-URI requests)
// counting what it relays.
func forwardProxy(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var relayed atomic.Int64
	direct := &http.Transport{Proxy: nil}
	t.Cleanup(direct.CloseIdleConnections)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			relayed.Add(1)
			tunnel(w, r)
			return
		}
		if !r.URL.IsAbs() {
			http.Error(w, "send absolute http:// URLs or CONNECT", http.StatusBadRequest)
			return
		}
		relayed.Add(1)
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
		must(t, err)
		out.Header = r.Header.Clone()
		resp, err := direct.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, &relayed
}

func TestNodejs_yarnBerryDownloadsThroughTheStagingProxyFromTheOperatorsRegistry(t *testing.T) {
	t.Parallel()
	reg := newRegistryOf(t, "hello", map[string]string{"package.json": `{"name": "hello", "version": "1.0.0", "main": "index.js"}`, "index.js": berryPackages["hello/index.js"]})
	proxy, relayed := forwardProxy(t)
	release, err := os.ReadFile(hostBerry(t))
	must(t, err)
	rel := ".yarn/releases/yarn-" + berryVersion + ".cjs"
	app := map[string]string{
		"package.json": `{"name": "app", "version": "1.0.0", "dependencies": {"hello": "^1.0.0"}}`,
		".yarnrc.yml":  "yarnPath: " + rel + "\nnodeLinker: node-modules\n",
		rel:            string(release),
		"server.js":    "const hello = require('hello');\nrequire('http').createServer((req, res) => res.end(hello())).listen(Number(process.env.PORT), '127.0.0.1');\n",
	}
	// The developer's yarn.lock, resolved against the registry directly.
	dir := t.TempDir()
	writeFiles(t, dir, app)
	lock := exec.Command("node", rel, "install", "--mode=update-lockfile")
	lock.Dir = dir
	lock.Env = append(os.Environ(), "YARN_NPM_REGISTRY_SERVER="+reg.srv.URL, "YARN_UNSAFE_HTTP_WHITELIST=127.0.0.1", "YARN_ENABLE_IMMUTABLE_INSTALLS=false",
		"YARN_ENABLE_GLOBAL_CACHE=false", "YARN_ENABLE_MIRROR=false", "YARN_CACHE_FOLDER="+filepath.Join(t.TempDir(), "cache"), "YARN_ENABLE_TELEMETRY=false")
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("yarn install --mode=update-lockfile: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "yarn.lock"))
	must(t, err)
	app["yarn.lock"] = string(b)
	reg.tarballs.Store(0)

	// Staging with egress: the proxy in HTTP_PROXY, the operator's registry
	// as npm_config_registry; yarn 2+ reads neither by those names.
	s := newStage(t, app)
	s.cfg.Env = append(s.cfg.Env, "PANDO_STAGING_EGRESS=on", "HTTP_PROXY="+proxy.URL, "npm_config_registry="+reg.srv.URL+"/")
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	if strings.Contains(out, "(offline") || reg.tarballs.Load() != 1 || relayed.Load() == 0 {
		t.Fatalf("tarballs served %d, requests through the proxy %d\n%s", reg.tarballs.Load(), relayed.Load(), out)
	}
	if body := serve(t, s, res.StartCommand); body != "hello production" {
		t.Fatalf("GET / = %q", body)
	}
}

// tunnel serves a CONNECT: a connection to r.Host, bytes copied both ways
// until either side closes.
func tunnel(w http.ResponseWriter, r *http.Request) {
	up, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer down.Close()
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, buf)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(down, up)
	down.Close() // the client's side ends too
	<-done
}
