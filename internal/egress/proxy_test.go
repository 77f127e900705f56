package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startProxy serves a proxy for cfg on a loopback port until the test ends.
func startProxy(t *testing.T, cfg Config) (*Proxy, *url.URL) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p, &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

func client(proxy *url.URL, tlsCfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: tlsCfg}}
}

func hello(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", name, r.URL.Path) })
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func port(t *testing.T, u string) int {
	pu, _ := url.Parse(u)
	n, err := strconv.Atoi(pu.Port())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProxy_forwardsPlainGETAndTunnelsCONNECT(t *testing.T) {
	plain := httptest.NewServer(hello("plain"))
	defer plain.Close()
	secure := httptest.NewTLSServer(hello("secure"))
	defer secure.Close()
	p, pu := startProxy(t, Config{})
	c := client(pu, secure.Client().Transport.(*http.Transport).TLSClientConfig)

	if code, body := get(t, c, plain.URL+"/pkg"); code != 200 || body != "plain /pkg" {
		t.Fatalf("plain GET through the proxy: %d %q", code, body)
	}
	if code, body := get(t, c, secure.URL+"/tarball"); code != 200 || body != "secure /tarball" {
		t.Fatalf("https GET (CONNECT) through the proxy: %d %q", code, body)
	}
	if p.Bytes() < int64(len("plain /pkg")) {
		t.Fatalf("Bytes() = %d after two requests", p.Bytes())
	}
}

func TestProxy_refusesThePlatformsPortsAndLinkLocal(t *testing.T) {
	platform := httptest.NewServer(hello("api"))
	defer platform.Close()
	secure := httptest.NewTLSServer(hello("router"))
	defer secure.Close()
	other := httptest.NewServer(hello("registry"))
	defer other.Close()
	var mu sync.Mutex
	var denied []string
	_, pu := startProxy(t, Config{
		DenyPorts: [][2]int{{port(t, platform.URL), port(t, platform.URL)}, {port(t, secure.URL), port(t, secure.URL)}},
		OnDenied: func(target string) {
			mu.Lock()
			defer mu.Unlock()
			denied = append(denied, target)
		},
	})
	c := client(pu, secure.Client().Transport.(*http.Transport).TLSClientConfig)

	local := strings.Replace(platform.URL, "127.0.0.1", "localhost", 1)
	for _, u := range []string{platform.URL, local, "http://169.254.169.254/latest/meta-data/", platform.URL + "/again"} {
		if code, body := get(t, c, u); code != http.StatusForbidden || !strings.Contains(body, "refused") {
			t.Fatalf("GET %s: %d %q, want 403 refused", u, code, body)
		}
	}
	if _, err := c.Get(secure.URL); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("CONNECT to a platform port: %v, want Forbidden", err)
	}
	// Loopback services that are not the platform's stay reachable.
	if code, body := get(t, c, other.URL+"/x"); code != 200 || body != "registry /x" {
		t.Fatalf("GET another loopback service: %d %q", code, body)
	}
	// Each refused target is reported once, so the staging output can
	// say why a tool got 403.
	mu.Lock()
	defer mu.Unlock()
	want := []string{platform.Listener.Addr().String(), strings.TrimPrefix(local, "http://"), "169.254.169.254:80", secure.Listener.Addr().String()}
	if fmt.Sprint(denied) != fmt.Sprint(want) {
		t.Fatalf("OnDenied got %q, want %q", denied, want)
	}
}

func TestProxy_reportsAtMostMaxDeniedReportsTargets(t *testing.T) {
	var mu sync.Mutex
	var denied []string
	_, pu := startProxy(t, Config{OnDenied: func(target string) {
		mu.Lock()
		defer mu.Unlock()
		denied = append(denied, target)
	}})
	c := client(pu, nil)
	for i := range 2 * maxDeniedReports {
		u := fmt.Sprintf("http://169.254.0.%d/", i+1)
		if code, _ := get(t, c, u); code != http.StatusForbidden {
			t.Fatalf("GET %s: %d, want 403", u, code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(denied) != maxDeniedReports || denied[0] != "169.254.0.1:80" {
		t.Fatalf("OnDenied got %q, want the first %d targets", denied, maxDeniedReports)
	}
}

// tunnel opens a CONNECT tunnel to target through the proxy and returns it.
func tunnel(t *testing.T, proxy *url.URL, target string) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return conn, resp
}

func TestProxy_capsConnections(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	_, pu := startProxy(t, Config{MaxConns: 2})
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, resp := tunnel(t, pu, echo.Addr().String())
		if resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: %s", i, resp.Status)
		}
		open = append(open, c)
	}
	if _, resp := tunnel(t, pu, echo.Addr().String()); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection at a cap of 2: %s, want 503", resp.Status)
	}
	// The tunnels work, and closing one frees its place.
	fmt.Fprint(open[0], "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(open[0], buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the tunnel: %q %v", buf, err)
	}
	open[1].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, resp := tunnel(t, pu, echo.Addr().String())
		c.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a tunnel, a new one still gets %s", resp.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordingUpstream is an operator's proxy that notes what it was asked.
type recordingUpstream struct {
	mu   sync.Mutex
	seen []string
	next http.Handler
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Method+" "+r.Host+" auth="+r.Header.Get("Proxy-Authorization"))
	u.mu.Unlock()
	u.next.ServeHTTP(w, r)
}

func (u *recordingUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

func TestProxy_chainsToTheOperatorsProxyExceptNoProxy(t *testing.T) {
	plain := httptest.NewServer(hello("plain"))
	defer plain.Close()
	secure := httptest.NewTLSServer(hello("secure"))
	defer secure.Close()
	rec := &recordingUpstream{next: New(Config{})}
	upstream := httptest.NewServer(rec)
	defer upstream.Close()
	up := strings.Replace(upstream.URL, "http://", "http://op:secret@", 1)
	ups, err := ParseUpstream([]string{"HTTP_PROXY=" + up, "https_proxy=" + up, "NO_PROXY=example.com, localhost"})
	if err != nil {
		t.Fatal(err)
	}
	_, pu := startProxy(t, Config{Upstream: ups})
	c := client(pu, secure.Client().Transport.(*http.Transport).TLSClientConfig)

	if code, body := get(t, c, plain.URL+"/a"); code != 200 || body != "plain /a" {
		t.Fatalf("plain GET via upstream: %d %q", code, body)
	}
	if code, body := get(t, c, secure.URL+"/b"); code != 200 || body != "secure /b" {
		t.Fatalf("https GET via upstream: %d %q", code, body)
	}
	auth := "auth=Basic b3A6c2VjcmV0" // op:secret
	want := []string{"GET " + plain.Listener.Addr().String() + " " + auth, "CONNECT " + secure.Listener.Addr().String() + " " + auth}
	if got := rec.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("upstream saw %q, want %q", got, want)
	}
	// NO_PROXY=localhost: dialed directly.
	local := strings.Replace(plain.URL, "127.0.0.1", "localhost", 1)
	if code, body := get(t, c, local+"/c"); code != 200 || body != "plain /c" {
		t.Fatalf("GET of a NO_PROXY host: %d %q", code, body)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("upstream saw %q for a NO_PROXY host", got)
	}
}

func TestUpstream_noProxyForms(t *testing.T) {
	u, err := ParseUpstream([]string{"HTTPS_PROXY=proxy:3128", "no_proxy=.internal,example.com,10.0.0.0/8,192.168.1.1,host:8443"})
	if err != nil {
		t.Fatal(err)
	}
	for target, direct := range map[string]bool{
		"a.internal:443": true, "example.com:443": true, "www.example.com:443": true, "notexample.com:443": false,
		"10.1.2.3:443": true, "11.0.0.1:443": false, "192.168.1.1:443": true, "host:8443": true, "host:443": false,
		"registry.npmjs.org:443": false,
	} {
		if got := u.proxyFor("https", target) == nil; got != direct {
			t.Errorf("%s: direct = %v, want %v", target, got, direct)
		}
	}
	if u.proxyFor("http", "registry.npmjs.org:80") != nil {
		t.Error("no HTTP_PROXY: http targets must be dialed directly")
	}
	if _, err := ParseUpstream([]string{"HTTPS_PROXY=https://proxy:3128"}); err == nil {
		t.Error("an https:// upstream proxy was accepted")
	}
}

// sized serves n bytes of 'x' at /N.
func sized() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = io.WriteString(w, strings.Repeat("x", n))
	})
}

func TestProxy_boundsDownloadsAndRefusesPastTheLimit(t *testing.T) {
	plain := httptest.NewServer(sized())
	defer plain.Close()
	secure := httptest.NewTLSServer(sized())
	defer secure.Close()
	var mu sync.Mutex
	var calls []int64
	p, pu := startProxy(t, Config{MaxBytes: 100 << 10, OnLimit: func(max int64) {
		mu.Lock()
		calls = append(calls, max)
		mu.Unlock()
	}})
	c := client(pu, secure.Client().Transport.(*http.Transport).TLSClientConfig)

	// Within the limit, plain and tunnelled; 40 KiB are left.
	if code, body := get(t, c, plain.URL+"/30720"); code != 200 || len(body) != 30<<10 {
		t.Fatalf("plain GET: %d, %d bytes", code, len(body))
	}
	if code, body := get(t, c, secure.URL+"/30720"); code != 200 || len(body) != 30<<10 {
		t.Fatalf("https GET: %d, %d bytes", code, len(body))
	}
	if p.LimitExceeded() {
		t.Fatal("limit reported exceeded within it")
	}

	// A tunnelled download past what is left is cut off.
	resp, err := c.Get(secure.URL + "/1048576")
	if err == nil {
		n, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("a 1 MiB download past the limit completed (%d bytes)", n)
		}
	}
	if !p.LimitExceeded() {
		t.Fatal("limit not reported exceeded")
	}

	// Every request after it is refused, saying why.
	code, body := get(t, c, plain.URL+"/10")
	if code != http.StatusForbidden || !strings.Contains(body, "--staging-egress-max-bytes") {
		t.Fatalf("plain GET past the limit: %d %q", code, body)
	}
	if _, err := c.Get(secure.URL + "/10"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("CONNECT past the limit: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0] != 100<<10 {
		t.Fatalf("OnLimit calls = %v, want one with the limit", calls)
	}
}

func TestProxy_aPlainDownloadOfExactlyTheLimitCompletes(t *testing.T) {
	plain := httptest.NewServer(sized())
	defer plain.Close()
	p, pu := startProxy(t, Config{MaxBytes: 5000})
	c := client(pu, nil)
	if code, body := get(t, c, plain.URL+"/5000"); code != 200 || len(body) != 5000 {
		t.Fatalf("GET of exactly the limit: %d, %d bytes", code, len(body))
	}
	// Nothing is left: the next byte is refused.
	resp, err := c.Get(plain.URL + "/1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode == 200 && string(b) == "x" {
		t.Fatalf("a byte past the limit was delivered")
	}
	if !p.LimitExceeded() {
		t.Fatal("limit not reported exceeded")
	}
}
