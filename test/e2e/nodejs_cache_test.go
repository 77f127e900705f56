package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPush_nodeRepushWithTheSameLockFileReusesNodeModules pushes an app
// whose dependency is a local package (file:greet, so npm needs no
// registry) with its package-lock.json twice, the second time with one
// more file (an unchanged push would reuse the droplet and not stage): the
// second staging copies node_modules from the app's build cache and runs
// no npm.
func TestPush_nodeRepushWithTheSameLockFileReusesNodeModules(t *testing.T) {
	t.Parallel()
	hostNode(t)
	s := sharedServer(t)
	const name = "node-lockcache"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"package.json":       `{"name": "app", "version": "1.0.0", "dependencies": {"greet": "file:greet"}}`,
		"Procfile":           "web: greet-serve\n",
		"greet/package.json": `{"name": "greet", "version": "1.0.0", "bin": {"greet-serve": "bin.js"}}`,
		"greet/bin.js": `#!/usr/bin/env node
require('http').createServer((req, res) => res.end('greet in ' + process.env.NODE_ENV + '\n')).listen(Number(process.env.PORT));
`,
	})
	lock := exec.Command("npm", "install", "--package-lock-only", "--offline", "--no-audit", "--no-fund")
	lock.Dir = dir
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("npm install --package-lock-only: %v\n%s", err, out)
	}

	r := s.mustPando(t, "push", name, "-p", dir)
	requireOutput(t, r, `npm ci --omit=dev`, `Kept node_modules in the build cache for the next staging \(keyed by package-lock\.json\)`)

	writeFiles(t, dir, map[string]string{"README.md": "greet, served\n"})
	r = s.mustPando(t, "push", name, "-p", dir)
	// Linking node_modules out of the cache leaves it as it was: the cell
	// keeps the stored cache rather than packing it again.
	requireOutput(t, r, `Reusing node_modules \(package-lock\.json unchanged\)`, `Build artifacts cache unchanged; keeping the stored one`, `web: 1 of 1 instances running`)
	if strings.Contains(r.out(), "Installing dependencies") {
		t.Fatalf("the re-push ran npm:\n%s", r)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != "greet in production\n" {
		t.Fatalf("GET / = %q", body)
	}
}
