package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// operatorProxy is the operator's HTTP proxy on the host's loopback: it
// relays plain-HTTP requests and notes each target (host:port and path).
type operatorProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newOperatorProxy(t *testing.T) *operatorProxy {
	t.Helper()
	p := &operatorProxy{}
	direct := &http.Transport{Proxy: nil}
	t.Cleanup(direct.CloseIdleConnections)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.Host+r.URL.Path)
		p.mu.Unlock()
		if r.Method == http.MethodConnect || !r.URL.IsAbs() {
			http.Error(w, "this proxy relays plain http only", http.StatusMethodNotAllowed)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out.Header = r.Header.Clone()
		out.Header.Del("Proxy-Authorization")
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
	t.Cleanup(p.srv.Close)
	return p
}

// saw reports how many requests the proxy relayed to a target under
// base (a URL: its host:port and path prefix).
func (p *operatorProxy) saw(t *testing.T, base string) int {
	t.Helper()
	u, err := url.Parse(base)
	noErr(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.seen {
		if strings.HasPrefix(s, "GET "+u.Host+u.Path) {
			n++
		}
	}
	return n
}

// pipIndex serves the wheel in dir/vendor as a PEP 503 simple index and
// takes it out of the app, so pip must download it.
func pipIndex(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	wheels, err := filepath.Glob(filepath.Join(dir, "vendor", "greet-1.0.0-*.whl"))
	if err != nil || len(wheels) != 1 {
		t.Fatalf("the app's wheel: %v %v", wheels, err)
	}
	whl, err := os.ReadFile(wheels[0])
	noErr(t, err)
	noErr(t, os.RemoveAll(filepath.Join(dir, "vendor")))
	name := filepath.Base(wheels[0])
	sum := sha256.Sum256(whl)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/greet/":
			fmt.Fprintf(w, "<html><body><a href=\"/files/%s#sha256=%s\">%s</a></body></html>\n", name, hex.EncodeToString(sum[:]), name)
		case "/files/" + name:
			_, _ = w.Write(whl)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// gemSource serves h on a loopback port whose number contains neither
// "401" nor "403". Bundler (2.3) takes a failed index fetch whose error
// message contains either for an authentication failure, and that
// message ends with the source's URL: a gem source on port 34013 that
// answers 404 makes bundler say "Authentication is required for ...".
func gemSource(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	var ln net.Listener
	for tries := 0; ln == nil; tries++ {
		if tries == 50 {
			t.Fatal("no loopback port free of 401 and 403 in 50 tries")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		noErr(t, err)
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		if strings.Contains(port, "401") || strings.Contains(port, "403") {
			// Kept open until the test ends, so the next try gets
			// another port.
			t.Cleanup(func() { l.Close() })
			continue
		}
		ln = l
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestPush_operatorsProxyCarriesNpmPipAndBundlerDownloads: the operator's
// HTTP_PROXY and the tools' settings, given as --staging-env, reach npm,
// pip and bundler in staging; their downloads go through the cell's
// egress proxy to the operator's proxy, and a failed one shows the tool's
// own error. A download the egress proxy refuses (the platform's own API)
// never reaches the operator's proxy, and the staging output says why.
func TestPush_operatorsProxyCarriesNpmPipAndBundlerDownloads(t *testing.T) {
	t.Parallel()
	hostNode(t)
	hostStackPython(t)
	hostStackRuby(t)
	proxy := newOperatorProxy(t)
	reg := newNPMRegistry(t)
	nodeDir := registryApp(t, reg)
	pyDir := pythonWheelApp(t)
	index := pipIndex(t, pyDir)
	// A gem source that has nothing: bundler must ask it, and say so.
	gems := gemSource(t, http.NotFoundHandler())
	rubyDir := writeFiles(t, t.TempDir(), map[string]string{
		"Gemfile":   "source \"" + gems.URL + "\"\ngem \"greet\"\n",
		"config.ru": "run ->(env) { [200, {}, [\"hi\"]] }\n",
	})

	s := ownServer(t, "--staging-env", "HTTP_PROXY="+proxy.srv.URL, "--staging-env", "npm_config_registry="+reg.srv.URL+"/",
		"--staging-env", "PIP_INDEX_URL="+index.URL+"/simple", "--staging-env", "npm_config_fetch_retries=0",
		"--staging-env", "BUNDLE_RETRY=0")
	heavy(t)

	r := s.mustPando(t, "push", "proxy-node", "-p", nodeDir)
	requireOutput(t, r, `npm ci --omit=dev`, `web: 1 of 1 instances running`)
	if n := proxy.saw(t, reg.srv.URL+"/hello-dep"); n == 0 || reg.tarballs.Load() == 0 {
		t.Fatalf("npm's downloads bypassed the operator's proxy (%d through it, %d tarballs served):\n%s", n, reg.tarballs.Load(), r)
	}
	if body := s.curlRoute(t, "proxy-node.localhost", "/"); body != "hello egress from hello-dep\n" {
		t.Fatalf("GET / = %q", body)
	}

	r = s.mustPando(t, "push", "proxy-python", "-p", pyDir)
	requireOutput(t, r, `Successfully installed greet-1\.0\.0`, `web: 1 of 1 instances running`)
	if n := proxy.saw(t, index.URL+"/files/greet-1.0.0-"); n == 0 {
		t.Fatalf("pip's download bypassed the operator's proxy:\n%s", r)
	}
	if body := s.curlRoute(t, "proxy-python.localhost", "/"); !strings.HasPrefix(body, "hello from python ") {
		t.Fatalf("GET / = %q", body)
	}

	r = s.pandoWithin(t, pushTimeout, "push", "proxy-ruby", "-p", rubyDir)
	if r.code == 0 {
		t.Fatalf("push with a gem its source lacks succeeded:\n%s", r)
	}
	if n := proxy.saw(t, gems.URL+"/"); n == 0 {
		t.Fatalf("bundler never reached the operator's proxy:\n%s", r)
	}
	// bundler's own words, not the advice for a staging without network.
	requireOutput(t, r, `(?i)could not (find gem 'greet'|fetch specs from `+regexp.QuoteMeta(gems.URL)+`)`, `bundle install failed \(see above\)`)
	if strings.Contains(r.out(), "egress is off") {
		t.Fatalf("the egress-off advice for a staging that has egress:\n%s", r)
	}

	// A gem source on the platform's API: refused (403, which bundler
	// calls missing credentials), with the platform's reason.
	api := "http://" + s.apiAddr + "/"
	refusedDir := writeFiles(t, t.TempDir(), map[string]string{
		"Gemfile":   "source \"" + api + "\"\ngem \"greet\"\n",
		"config.ru": "run ->(env) { [200, {}, [\"hi\"]] }\n",
	})
	r = s.pandoWithin(t, pushTimeout, "push", "proxy-refused", "-p", refusedDir)
	if r.code == 0 {
		t.Fatalf("push with a gem source on the platform's API succeeded:\n%s", r)
	}
	requireOutput(t, r, `Staging egress: refused `+regexp.QuoteMeta(s.apiAddr)+`, the platform's own listener`, `bundle install failed \(see above\)`)
	if n := proxy.saw(t, api); n != 0 {
		t.Fatalf("the operator's proxy saw %d requests for the platform's API:\n%s", n, r)
	}
}
