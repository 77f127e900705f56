package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

// hostNode returns the host's `node --version`: the host stack's node, which
// the nodejs_buildpack runs apps on.
func hostNode(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		testenv.Missing(t, "no npm on the host (apt-get install nodejs npm)")
	}
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		testenv.Missing(t, "no node on the host (apt-get install nodejs npm): "+err.Error())
	}
	return strings.TrimSpace(string(out))
}

// nodeApp is a package.json with scripts.start (plus extra fields) and a
// server.js on node's http module answering with node's version.
func nodeApp(extra string) map[string]string {
	return map[string]string{
		"package.json": `{"name": "hello-node", "version": "1.0.0", "scripts": {"start": "node server.js"}` + extra + `}`,
		"server.js": `const http = require('http');
http.createServer((req, res) => res.end('hello from node ' + process.version + ' in ' + process.env.NODE_ENV + '\n'))
  .listen(Number(process.env.PORT));
`,
	}
}

func TestPush_nodeAppRunsOnTheStacksNode(t *testing.T) {
	t.Parallel()
	v := hostNode(t)
	s := sharedServer(t)
	const name = "node-hello"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), nodeApp(`, "engines": {"node": ">=18"}`))

	r := s.mustPando(t, "push", name, "-p", dir)

	requireOutput(t, r, `Detected nodejs_buildpack`, `Using the stack's Node.js `+v, `engines.node \(package.json\): >=18, met by `+v,
		`web: 1 of 1 instances running`, `start command:\s+node server\.js`)
	if body, want := s.curlRoute(t, name+".localhost", "/"), "hello from node "+v+" in production\n"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}
}

func TestPush_nodeAppWhoseEnginesCannotBeMetFailsStaging(t *testing.T) {
	t.Parallel()
	v := hostNode(t)
	s := sharedServer(t)
	const name = "node-engines"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), nodeApp(`, "engines": {"node": "^99.0.0"}`))

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir)

	if r.code == 0 {
		t.Fatalf("push with engines.node ^99.0.0: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `requires node '\^99\.0\.0' \(engines\.node\) but the stack 'host' has node `+v)
	if got := s.instances(t, name); got != "#0  DOWN" {
		t.Fatalf("instances after the failed staging: %q, want one DOWN and nothing running", got)
	}
}
