package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// npmRegistry is an npm registry on the host's loopback holding one
// package, hello-dep 1.0.0; a staging container can reach it only through
// the cell's egress proxy (its own loopback is its own).
type npmRegistry struct {
	srv       *httptest.Server
	tarballs  atomic.Int64
	tarball   []byte
	integrity string
}

func newNPMRegistry(t *testing.T) *npmRegistry {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{
		"package.json": `{"name": "hello-dep", "version": "1.0.0", "main": "index.js"}`,
		"index.js":     "module.exports = (who) => 'hello ' + who + ' from hello-dep';\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	r := &npmRegistry{tarball: buf.Bytes(), integrity: "sha512-" + base64.StdEncoding.EncodeToString(sum[:])}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/hello-dep":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"name": "hello-dep", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {"name": "hello-dep", "version": "1.0.0",
				"dist": {"tarball": "%s/hello-dep/-/hello-dep-1.0.0.tgz", "integrity": "%s"}}}}`, r.srv.URL, r.integrity)
		case "/hello-dep/-/hello-dep-1.0.0.tgz":
			r.tarballs.Add(1)
			_, _ = w.Write(r.tarball)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// registryApp is a Node.js app depending on hello-dep from reg, with the
// package-lock.json npm writes for it (on the host, straight from reg).
func registryApp(t *testing.T, reg *npmRegistry) string {
	t.Helper()
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"package.json": `{"name": "egress-app", "version": "1.0.0", "scripts": {"start": "node server.js"}, "dependencies": {"hello-dep": "^1.0.0"}}`,
		"server.js": `const hello = require('hello-dep');
require('http').createServer((req, res) => res.end(hello('egress') + '\n')).listen(Number(process.env.PORT));
`,
	})
	lock := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--registry", reg.srv.URL+"/")
	lock.Dir = dir
	lock.Env = append(lock.Environ(), "npm_config_cache="+filepath.Join(t.TempDir(), "npm-cache"), "npm_config_userconfig="+filepath.Join(t.TempDir(), "npmrc"))
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("npm install --package-lock-only: %v\n%s", err, out)
	}
	return dir
}

func TestPush_nodeAppDownloadsItsDependenciesThroughStagingEgress(t *testing.T) {
	t.Parallel()
	hostNode(t)
	reg := newNPMRegistry(t)
	dir := registryApp(t, reg)
	s := ownServer(t, "--staging-env", "npm_config_registry="+reg.srv.URL+"/")
	heavy(t)
	const name = "node-egress"

	r := s.mustPando(t, "push", name, "-p", dir)
	requireOutput(t, r, `npm ci --omit=dev`, `Staging egress: .* relayed`, `web: 1 of 1 instances running`)
	if strings.Contains(r.out(), "(offline") {
		t.Fatalf("npm ran offline with egress on:\n%s", r)
	}
	if reg.tarballs.Load() == 0 {
		t.Fatalf("the registry served no tarball:\n%s", r)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != "hello egress from hello-dep\n" {
		t.Fatalf("GET / = %q", body)
	}

	// Through the same proxy, the platform's own listeners and link-local
	// (cloud metadata) addresses are refused; the registry is not.
	zip := buildpackZip(t, map[string]string{
		"bin/detect": "#!/bin/sh\nexit 1\n",
		"bin/finalize": `#!/bin/bash
while read -r what url; do
  exec 3<> /dev/tcp/127.0.0.1/3128 || { echo "$what no proxy"; continue; }
  printf 'GET %s HTTP/1.0\r\n\r\n' "$url" >&3
  read -r status <&3
  echo "$what ${status%$'\r'}"
  exec 3<&-
done < "$1/probes.txt" > "$1/seen.txt"
`,
		"bin/release": "#!/bin/sh\necho '---'\necho 'default_process_types: {web: /tmp/lifecycle/pando static-serve --root /home/vcap/app --port $PORT}'\n",
	})
	s.mustPando(t, "create-buildpack", "probebp", zip, "9")
	probes := writeFiles(t, t.TempDir(), map[string]string{"probes.txt": "api http://" + s.apiAddr + "/v3\nrouter http://" + s.routerAddr +
		"/\nmetadata http://169.254.169.254/latest/meta-data/\nregistry " + reg.srv.URL + "/hello-dep\n"})
	s.mustPando(t, "push", "egress-probe", "-p", probes, "-b", "probebp")
	want := "api HTTP/1.0 403 Forbidden\nrouter HTTP/1.0 403 Forbidden\nmetadata HTTP/1.0 403 Forbidden\nregistry HTTP/1.0 200 OK\n"
	if body := s.curlRoute(t, "egress-probe.localhost", "/seen.txt"); body != want {
		t.Fatalf("through the egress proxy, staging saw\n%s\nwant\n%s", body, want)
	}
}

func TestPush_nodeAppWithoutStagingEgressFailsWithVendoringAdvice(t *testing.T) {
	t.Parallel()
	hostNode(t)
	reg := newNPMRegistry(t)
	dir := registryApp(t, reg)
	s := ownServer(t, "--staging-egress=false", "--staging-env", "npm_config_registry="+reg.srv.URL+"/")
	const name = "node-no-egress"

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir)
	if r.code == 0 {
		t.Fatalf("push without egress of an app with undownloaded dependencies succeeded:\n%s", r)
	}
	requireOutput(t, r, `egress is off`, `run 'npm install' in the app's directory`)
	if n := reg.tarballs.Load(); n != 0 {
		t.Fatalf("the registry served %d tarballs to a staging without egress", n)
	}
}

func TestPush_stagingPastItsEgressByteLimitFailsSayingWhy(t *testing.T) {
	t.Parallel()
	hostNode(t)
	reg := newNPMRegistry(t)
	dir := registryApp(t, reg)
	// The tarball alone is larger than the limit.
	s := ownServer(t, "--staging-egress-max-bytes", "64", "--staging-env", "npm_config_registry="+reg.srv.URL+"/",
		"--staging-env", "npm_config_fetch_retries=0")

	r := s.pandoWithin(t, pushTimeout, "push", "node-egress-cap", "-p", dir)
	if r.code == 0 {
		t.Fatalf("push past the staging egress limit succeeded:\n%s", r)
	}
	requireOutput(t, r, `Staging egress: this staging has downloaded 64B, the most one staging may \(the operator's --staging-egress-max-bytes\)`,
		`npm ci failed`)
}
