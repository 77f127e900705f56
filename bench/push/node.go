package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Node.js sample app is express-like: its server uses tiny-web (an
// app object with routes and listen), which depends on tiny-router. Both
// come from an npm registry the bench serves on loopback, so the bench
// needs no internet: staging reaches it through the cell's egress proxy
// (the server gets --staging-env npm_config_registry=...).
var nodePackages = map[string]struct {
	deps  map[string]string
	files map[string]string
}{
	"tiny-router": {files: map[string]string{
		"index.js": `module.exports = () => {
  const routes = new Map();
  return {
    add: (method, path, handler) => routes.set(method + ' ' + path, handler),
    find: (method, path) => routes.get(method + ' ' + path.split('?')[0]),
  };
};
`}},
	"tiny-web": {deps: map[string]string{"tiny-router": "^1.0.0"}, files: map[string]string{
		"index.js": `const http = require('http');
const router = require('tiny-router');
module.exports = () => {
  const r = router();
  return {
    get: (path, handler) => r.add('GET', path, handler),
    listen: (port) => http.createServer((req, res) => {
      res.send = (body) => res.end(body);
      const h = r.find(req.method, req.url);
      if (!h) { res.statusCode = 404; return res.end('not found\n'); }
      h(req, res);
    }).listen(Number(port)),
  };
};
`}},
}

const nodeServerJS = `const web = require('tiny-web');
const app = web();
app.get('/', (req, res) => res.send('hello from node ' + process.version + '\n'));
app.listen(process.env.PORT);
`

// npmRegistry serves nodePackages as an npm registry on loopback.
type npmRegistry struct {
	srv      *http.Server
	url      string
	tarballs map[string][]byte // by name
	meta     map[string][]byte // by name
}

func startNPMRegistry() (*npmRegistry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &npmRegistry{url: "http://" + ln.Addr().String(), tarballs: map[string][]byte{}, meta: map[string][]byte{}}
	for name, p := range nodePackages {
		pj := map[string]any{"name": name, "version": "1.0.0", "main": "index.js"}
		if len(p.deps) > 0 {
			pj["dependencies"] = p.deps
		}
		pjBytes, _ := json.Marshal(pj)
		files := map[string]string{"package.json": string(pjBytes)}
		for k, v := range p.files {
			files[k] = v
		}
		tgz, err := packageTarball(files)
		if err != nil {
			ln.Close()
			return nil, err
		}
		sum := sha512.Sum512(tgz)
		v := map[string]any{"name": name, "version": "1.0.0", "dependencies": p.deps, "dist": map[string]string{
			"tarball":   fmt.Sprintf("%s/%s/-/%s-1.0.0.tgz", r.url, name, name),
			"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum[:]),
		}}
		meta, _ := json.Marshal(map[string]any{"name": name, "dist-tags": map[string]string{"latest": "1.0.0"}, "versions": map[string]any{"1.0.0": v}})
		r.tarballs[name], r.meta[name] = tgz, meta
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *npmRegistry) serve(w http.ResponseWriter, req *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
	switch {
	case rest == "" && r.meta[name] != nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(r.meta[name])
	case rest == "-/"+name+"-1.0.0.tgz" && r.tarballs[name] != nil:
		_, _ = w.Write(r.tarballs[name])
	default:
		http.NotFound(w, req)
	}
}

func (r *npmRegistry) close(ctx context.Context) error { return r.srv.Shutdown(ctx) }

func packageTarball(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// prepareNodeApp writes the Node.js app into dir with the package-lock.json
// npm writes for it against reg.
func prepareNodeApp(ctx context.Context, dir string, reg *npmRegistry) error {
	if reg == nil {
		return fmt.Errorf("the node app needs the bench's npm registry")
	}
	pj := `{"name": "bench-node", "version": "1.0.0", "scripts": {"start": "node server.js"}, "dependencies": {"tiny-web": "^1.0.0"}}`
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pj), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "server.js"), []byte(nodeServerJS), 0o644); err != nil {
		return err
	}
	return npm(ctx, dir, reg, "install", "--package-lock-only")
}

// npm runs npm in dir against reg, with an empty cache of its own.
func npm(ctx context.Context, dir string, reg *npmRegistry, args ...string) error {
	cache, err := os.MkdirTemp("", "pando-bench-npm-cache-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	cmd := exec.CommandContext(ctx, "npm", append(args, "--no-audit", "--no-fund", "--registry", reg.url+"/")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_cache="+cache, "npm_config_userconfig="+filepath.Join(cache, "npmrc"),
		"npm_config_update_notifier=false", "NODE_ENV=production")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// floorInstall times what a Node.js staging cannot avoid on a first push:
// `npm ci --omit=dev` of the app's lock file into an empty dir with an
// empty npm cache, from the same registry.
func (b *bench) floorInstall(ctx context.Context, a *appSpec) (time.Duration, error) {
	dir, err := os.MkdirTemp(b.tmp, "floor-npm-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	for _, f := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(a.Dir, f))
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := npm(ctx, dir, b.registry, "ci", "--omit=dev"); err != nil {
		return 0, fmt.Errorf("floor npm install: %w", err)
	}
	return time.Since(start), nil
}
