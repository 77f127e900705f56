package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

// berryVersion is the yarn 2+ release `make test-deps` fetches for the tests
// (scripts/install-deps.sh).
const berryVersion = "4.18.1"

// yarnPackages are a local package (file: spec, so no registry is needed)
// and a server.js requiring it: the apps the yarn tests push.
var yarnPackages = map[string]string{
	"hello/package.json": `{"name": "hello", "version": "1.0.0", "main": "index.js"}`,
	"hello/index.js":     "module.exports = (how) => 'hello from ' + how + ' in ' + process.env.NODE_ENV + '\\n';\n",
}

// berryApp is a yarn berry project with the release committed
// (.yarn/releases, yarnPath), yarn's default linker (pnp) and the yarn.lock
// that release writes; its server.js answers "hello from berry in ...".
func berryApp(t *testing.T) string {
	t.Helper()
	hostNode(t)
	release := os.Getenv("PANDO_TEST_YARN_BERRY")
	if release == "" {
		release = "/var/cache/pando/test-deps/yarn-" + berryVersion + ".cjs"
	}
	b, err := os.ReadFile(release)
	if err != nil {
		testenv.Missing(t, "no yarn berry release at "+release+" (make test-deps fetches it; or set PANDO_TEST_YARN_BERRY)")
	}
	rel := ".yarn/releases/yarn-" + berryVersion + ".cjs"
	files := map[string]string{
		"package.json": `{"name": "berry-app", "version": "1.0.0", "packageManager": "yarn@` + berryVersion + `", "dependencies": {"hello": "file:./hello"}}`,
		".yarnrc.yml":  "yarnPath: " + rel + "\n",
		rel:            string(b),
		"server.js":    "const hello = require('hello');\nrequire('http').createServer((req, res) => res.end(hello('berry'))).listen(Number(process.env.PORT));\n",
	}
	for k, v := range yarnPackages {
		files[k] = v
	}
	dir := writeFiles(t, t.TempDir(), files)
	// CI=true makes yarn immutable by default: this install writes the lock.
	cmd := exec.Command("node", rel, "install")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "YARN_ENABLE_NETWORK=false", "YARN_ENABLE_TELEMETRY=false", "YARN_ENABLE_GLOBAL_CACHE=false", "YARN_ENABLE_IMMUTABLE_INSTALLS=false",
		"YARN_CACHE_FOLDER="+filepath.Join(t.TempDir(), "yarn-cache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("yarn install: %v\n%s", err, out)
	}
	// As pushed from a checkout: the lock file, not what the install left.
	for _, p := range []string{".pnp.cjs", ".pnp.loader.mjs", ".yarn/install-state.gz"} {
		noErr(t, os.RemoveAll(filepath.Join(dir, p)))
	}
	return dir
}

// yarnClassicApp is a yarn 1 project (yarn.lock written by the host's
// yarn, Debian's yarnpkg) whose server.js answers "hello from yarn 1 in ...".
func yarnClassicApp(t *testing.T) string {
	t.Helper()
	hostNode(t)
	yarn, err := exec.LookPath("yarnpkg")
	if err != nil {
		if yarn, err = exec.LookPath("yarn"); err != nil {
			testenv.Missing(t, "no yarn on the host (apt-get install yarnpkg)")
		}
	}
	files := map[string]string{
		"package.json": `{"name": "yarn-app", "version": "1.0.0", "dependencies": {"hello": "file:./hello"}}`,
		"server.js":    "const hello = require('hello');\nrequire('http').createServer((req, res) => res.end(hello('yarn 1'))).listen(Number(process.env.PORT));\n",
	}
	for k, v := range yarnPackages {
		files[k] = v
	}
	dir := writeFiles(t, t.TempDir(), files)
	cmd := exec.Command(yarn, "install", "--ignore-scripts", "--non-interactive", "--cache-folder", filepath.Join(t.TempDir(), "yarn-cache"))
	cmd.Dir = dir
	// Debian's yarnpkg on a node from elsewhere needs Debian's module dir.
	cmd.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("yarn install: %v\n%s", err, out)
	}
	noErr(t, os.RemoveAll(filepath.Join(dir, "node_modules")))
	if lock, err := os.ReadFile(filepath.Join(dir, "yarn.lock")); err != nil || strings.Contains(string(lock), "__metadata") {
		t.Fatalf("yarn.lock of yarn 1: %v\n%s", err, lock)
	}
	return dir
}

func TestPush_yarnBerryPnPAppRunsWithItsOwnYarnOnTheStacksNode(t *testing.T) {
	t.Parallel()
	dir := berryApp(t)
	s := sharedServer(t)
	const name = "node-berry"
	s.deleteAppOnCleanup(t, name)

	r := s.mustPando(t, "push", name, "-p", dir)
	requireOutput(t, r, `Detected nodejs_buildpack`, `Using the app's yarn `+berryVersion+` \(\.yarn/releases/yarn-`+berryVersion+`\.cjs, yarnPath in \.yarnrc\.yml\) on the stack's node`,
		`nodeLinker: pnp`, `web: 1 of 1 instances running`)
	if body := s.curlRoute(t, name+".localhost", "/"); body != "hello from berry in production\n" {
		t.Fatalf("GET / = %q", body)
	}
}
