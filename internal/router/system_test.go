package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/certs"
)

// serveTLS runs r's HTTPS side on a loopback listener until the test ends
// and returns its address and a pool that trusts its certificate.
func serveTLS(t *testing.T, r *Router) (string, *x509.CertPool) {
	t.Helper()
	cert, _, err := certs.SelfSigned(t.TempDir(), certs.Names{DNS: []string{"*.apps.test", "api.sys.test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.ServeTLS(ctx, ln, certs.ServerConfig(cert)); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf())
	return ln.Addr().String(), roots
}

// httpsClient sends every request to addr (whatever the URL's host), and
// verifies the certificate against roots for the URL's host.
func httpsClient(addr string, roots *x509.CertPool) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
}

func get(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestRouter_HTTPSRoutesAppsWithForwardedProtoHTTPS(t *testing.T) {
	a := newBackend(t, "a")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.apps.test"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	addr, roots := serveTLS(t, r)
	plain := serve(t, r)

	resp, body := get(t, httpsClient(addr, roots), "https://myapp.apps.test/x", nil)
	if resp.StatusCode != 200 || body != "a" {
		t.Fatalf("over HTTPS: %d %q", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}
	a.mu.Lock()
	proto := a.last.Header.Get("X-Forwarded-Proto")
	a.mu.Unlock()
	if proto != "https" {
		t.Errorf("X-Forwarded-Proto over HTTPS = %q", proto)
	}

	// Plain HTTP on the same router still says http, whatever the client claims.
	if resp, body := get(t, http.DefaultClient, "http://"+plain+"/", http.Header{"Host": {"myapp.apps.test"}, "X-Forwarded-Proto": {"https"}}); body != "a" {
		t.Fatalf("over plain HTTP: %d %q", resp.StatusCode, body)
	}
	a.mu.Lock()
	proto = a.last.Header.Get("X-Forwarded-Proto")
	a.mu.Unlock()
	if proto != "http" {
		t.Errorf("X-Forwarded-Proto over plain HTTP = %q", proto)
	}
}

func TestRouter_systemHostsAndIPsGoToTheSystemHandler(t *testing.T) {
	a := newBackend(t, "app")
	type seen struct{ host, proto, remote string }
	got := make(chan seen, 1)
	r := New(Config{System: &SystemRoutes{Domain: "Sys.Test.", Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got <- seen{req.Host, req.Header.Get("X-Forwarded-Proto"), req.RemoteAddr}
		io.WriteString(w, "system")
	})}})
	// An app route under the system domain that is not a system host, and
	// one that is (the system wins).
	r.SetRoutes("proc", "app", []string{"other.sys.test", "api.sys.test"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	addr, roots := serveTLS(t, r)
	plain := serve(t, r)
	client := httpsClient(addr, roots)
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	for _, tc := range []struct {
		client    *http.Client
		url, host string
		want      string
		proto     string
	}{
		{client, "https://api.sys.test/v3", "", "system", "https"},
		{client, "https://api.sys.test/v3", "uaa.sys.test", "system", "https"},
		{client, "https://api.sys.test/", "LOGIN.sys.test:443", "system", "https"},
		{client, "https://api.sys.test/", "log-cache.sys.test", "system", "https"},
		{insecure, "https://" + addr + "/", "", "system", "https"},
		{http.DefaultClient, "http://" + plain + "/", "[::1]:8080", "system", "http"},
		{http.DefaultClient, "http://" + plain + "/", "10.1.2.3", "system", "http"},
		{http.DefaultClient, "http://" + plain + "/", "other.sys.test", "app", ""},
		{http.DefaultClient, "http://" + plain + "/", "api.other.test", "404 Not Found: Requested route ('api.other.test') does not exist.\n", ""},
		{http.DefaultClient, "http://" + plain + "/", "sys.test", "404 Not Found: Requested route ('sys.test') does not exist.\n", ""},
	} {
		h := http.Header{"X-Forwarded-Proto": {"gopher"}}
		if tc.host != "" {
			h["Host"] = []string{tc.host}
		}
		req, _ := http.NewRequest("GET", tc.url, nil)
		req.Header = h
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s Host %s: %v", tc.url, tc.host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != tc.want {
			t.Errorf("%s Host %q: %q, want %q", tc.url, tc.host, body, tc.want)
			continue
		}
		if tc.want != "system" {
			continue
		}
		s := <-got
		if s.proto != tc.proto {
			t.Errorf("%s Host %q: X-Forwarded-Proto %q, want %q", tc.url, tc.host, s.proto, tc.proto)
		}
		if host, _, _ := net.SplitHostPort(s.remote); host != "127.0.0.1" {
			t.Errorf("the system handler saw client %q, want the client's own address", s.remote)
		}
	}
}

func TestRouter_TLSHandshakesCountInTheConnectionCap(t *testing.T) {
	a := newBackend(t, "a")
	r := New(Config{MaxConns: 2, MaxConnsPerClient: 2, ReadHeaderTimeout: 5 * time.Second})
	r.SetRoutes("proc", "app", []string{"myapp.apps.test"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	tlsAddr, _ := serveTLS(t, r)
	plain := serve(t, r)

	// One client opens a TLS connection and never shakes hands; another
	// holds a plain keep-alive connection.
	silent, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Dial returns once the kernel has the connection; it counts once
	// the router has accepted it.
	eventually(t, 10*time.Second, "the silent connection counted", func() bool { return r.conns.Open() == 1 })
	held, err := net.Dial("tcp", plain)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if resp, body := rawGet(t, held, bufio.NewReader(held), "myapp.apps.test"); resp.StatusCode != 200 {
		t.Fatalf("held connection: %d %q", resp.StatusCode, body)
	}
	// The cap of 2 is reached: a third connection is refused.
	c, err := net.Dial("tcp", plain)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, body := rawGet(t, c, bufio.NewReader(c), "myapp.apps.test"); resp.StatusCode != 503 {
		t.Errorf("third connection with a handshake pending: %d %q, want 503", resp.StatusCode, body)
	}
}

func TestRouter_websocketOverHTTPS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Proto: "+req.Header.Get("X-Forwarded-Proto")+"\r\n\r\n")
				io.Copy(c, br)
			}()
		}
	}()
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"ws.apps.test"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: ln.Addr().String()}})
	addr, roots := serveTLS(t, r)

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "ws.apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.apps.test\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if p := resp.Header.Get("X-Proto"); p != "https" {
		t.Errorf("backend saw X-Forwarded-Proto %q", p)
	}
	io.WriteString(c, "ping\n")
	if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
		t.Fatalf("echo through the TLS tunnel: %q, %v", l, err)
	}
}

func TestRouter_setSystemRoutesTakesEffectOnTheNextRequest(t *testing.T) {
	a := newBackend(t, "app")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"api.sys.test"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	plain := serve(t, r)
	host := http.Header{"Host": {"api.sys.test"}}
	if _, body := get(t, http.DefaultClient, "http://"+plain+"/", host); body != "app" {
		t.Fatalf("without system routes: %q, want the app", body)
	}
	r.SetSystemRoutes(&SystemRoutes{Domain: "sys.test", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "system")
	})})
	if _, body := get(t, http.DefaultClient, "http://"+plain+"/", host); body != "system" {
		t.Fatalf("with system routes: %q, want the system handler", body)
	}
	r.SetSystemRoutes(nil)
	if _, body := get(t, http.DefaultClient, "http://"+plain+"/", host); body != "app" {
		t.Fatalf("system routes removed: %q, want the app", body)
	}
}
