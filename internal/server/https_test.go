package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/certs"
)

func TestExternalURLs_followTheHostAndSchemeTheClientUsed(t *testing.T) {
	sys := func(scheme, host, port string) cc.ExternalURLs {
		return cc.ExternalURLs{API: scheme + "://api.sys.test" + port, Login: scheme + "://login.sys.test" + port,
			UAA: scheme + "://uaa.sys.test" + port, LogCache: scheme + "://log-cache.sys.test" + port,
			Router: scheme + "://" + host + port}
	}
	same := func(base string) cc.ExternalURLs {
		return cc.ExternalURLs{API: base, Login: base, UAA: base, LogCache: base, Router: base}
	}
	for _, tc := range []struct {
		proto, host string
		want        cc.ExternalURLs
	}{
		{"https", "api.sys.test", sys("https", "api.sys.test", "")},
		{"https", "api.sys.test:443", sys("https", "api.sys.test", "")},
		{"https", "login.sys.test:8443", sys("https", "login.sys.test", ":8443")},
		{"http", "uaa.sys.test:8080", sys("http", "uaa.sys.test", ":8080")},
		{"", "api.sys.test:80", sys("http", "api.sys.test", "")},
		{"https", "127.0.0.1", same("https://127.0.0.1")},
		{"https", "127.0.0.1:8443", same("https://127.0.0.1:8443")},
		{"https", "[::1]:443", same("https://[::1]")},
		{"http", "[::1]", same("http://[::1]")},
		{"https", "127.0.0.1:99999", same("https://127.0.0.1")},
		{"https", "127.0.0.1:x", same("https://127.0.0.1")},
	} {
		if got := externalURLs(tc.proto, tc.host, "sys.test"); got != tc.want {
			t.Errorf("%s %s: %+v, want %+v", tc.proto, tc.host, got, tc.want)
		}
	}
}

func TestRouterCerts_selfSignedForTheDomainsAndReusedThenTheOperatorsOwnByName(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Domain: "apps.test", SystemDomain: "sys.test"}
	log := slog.New(slog.DiscardHandler)
	listen := netip.MustParseAddr("127.0.0.2")
	cs, selfSigned, err := routerCerts(cfg, listen, log)
	if err != nil || !selfSigned || len(cs) != 1 {
		t.Fatalf("routerCerts: %v (self-signed %v, %d certificates)", err, selfSigned, len(cs))
	}
	c := cs[0]
	for _, n := range []string{"*.apps.test", "api.sys.test", "uaa.sys.test", "login.sys.test", "log-cache.sys.test", "localhost"} {
		if !slices.Contains(c.Leaf().DNSNames, n) {
			t.Errorf("certificate lacks %s: %v", n, c.Leaf().DNSNames)
		}
	}
	if err := c.Leaf().VerifyHostname("127.0.0.2"); err != nil {
		t.Errorf("listen address: %v", err)
	}
	again, _, err := routerCerts(cfg, listen, log)
	if err != nil || again[0].Fingerprint() != c.Fingerprint() {
		t.Errorf("restart replaced the certificate (%v)", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, certs.SelfSignedKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	if n := certNotice("https://127.0.0.2:443", cs, true); !strings.Contains(n, "SHA-256 fingerprint "+c.Fingerprint()) || !strings.Contains(n, c.CertFile) {
		t.Errorf("notice:\n%s", n)
	}

	// The operator's pairs win, one per domain, chosen by the name the
	// client asks for; unpaired files are refused.
	other, _, err := certs.SelfSigned(t.TempDir(), certs.Names{DNS: []string{"*.other.test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSCertFiles = []string{c.CertFile, other.CertFile}
	cfg.TLSKeyFiles = []string{c.KeyFile, other.KeyFile}
	own, selfSigned, err := routerCerts(cfg, listen, log)
	if err != nil || selfSigned || len(own) != 2 {
		t.Fatalf("operator's files: %v, self-signed %v, %d certificates", err, selfSigned, len(own))
	}
	tlsCfg := certs.ServerConfig(own...)
	for name, want := range map[string]string{"web.other.test": other.Fingerprint(), "api.sys.test": c.Fingerprint(), "unknown.test": c.Fingerprint()} {
		if got := servedFingerprint(t, tlsCfg, name); got != want {
			t.Errorf("SNI %q got certificate %s, want %s", name, got, want)
		}
	}
	cfg.TLSKeyFiles = cfg.TLSKeyFiles[:1]
	if _, _, err := routerCerts(cfg, listen, log); err == nil || !strings.Contains(err.Error(), "pairs") {
		t.Errorf("two --tls-cert with one --tls-key: %v", err)
	}
}

// servedFingerprint shakes hands with cfg over a pipe, asking for name,
// and returns the fingerprint of the certificate served.
func servedFingerprint(t *testing.T, cfg *tls.Config, name string) string {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Server(a, cfg).Handshake()
	c := tls.Client(b, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	return certs.Fingerprint(c.ConnectionState().PeerCertificates[0])
}

func TestSystemHandler_endsLongPollsWhenTheServerStops(t *testing.T) {
	run, stop := context.WithCancel(context.Background())
	defer stop()
	started := make(chan struct{})
	h := systemHandler(run, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // a long poll
	}), "sys.test")
	req := httptest.NewRequest("GET", "/pando/v1/builds/x", nil)
	req.Host = "api.sys.test"
	done := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), req); close(done) }()
	<-started
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a long poll through the router outlived the server's run")
	}
}

func TestSystemHostURLs_onTheAPIListenerFollowASystemHostOnly(t *testing.T) {
	for _, tc := range []struct {
		host, proto string
		want        string // the API link, "" for the API's own
	}{
		{"api.sys.test:8080", "http", "http://api.sys.test:8080"},
		{"LOGIN.Sys.Test", "https", "https://api.sys.test"},
		{"log-cache.sys.test.", "", "http://api.sys.test"},
		{"127.0.0.1:9022", "", ""},
		{"myapp.sys.test", "https", ""},
		{"api.other.test", "https", ""},
		{"sys.test", "https", ""},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = tc.host
		req.Header.Set("X-Forwarded-Proto", tc.proto)
		got, ok := systemHostURLs(req, "sys.test")
		if tc.want == "" {
			if ok {
				t.Errorf("Host %s: links moved to %+v, want the API's own", tc.host, got)
			}
		} else if !ok || got.API != tc.want {
			t.Errorf("Host %s: %+v (%v), want API %s", tc.host, got, ok, tc.want)
		}
	}
}
