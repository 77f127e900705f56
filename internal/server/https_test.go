package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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

func TestRouterCert_selfSignedForTheDomainsAndReusedThenTheOperatorsOwn(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Domain: "apps.test", SystemDomain: "sys.test"}
	log := slog.New(slog.DiscardHandler)
	listen := netip.MustParseAddr("127.0.0.2")
	c, selfSigned, err := routerCert(cfg, listen, log)
	if err != nil || !selfSigned {
		t.Fatalf("routerCert: %v (self-signed %v)", err, selfSigned)
	}
	for _, n := range []string{"*.apps.test", "api.sys.test", "uaa.sys.test", "login.sys.test", "log-cache.sys.test", "localhost"} {
		if !slices.Contains(c.Leaf().DNSNames, n) {
			t.Errorf("certificate lacks %s: %v", n, c.Leaf().DNSNames)
		}
	}
	if err := c.Leaf().VerifyHostname("127.0.0.2"); err != nil {
		t.Errorf("listen address: %v", err)
	}
	again, _, err := routerCert(cfg, listen, log)
	if err != nil || again.Fingerprint() != c.Fingerprint() {
		t.Errorf("restart replaced the certificate (%v)", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, certs.SelfSignedKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}

	// The operator's pair wins; half a pair is refused.
	cfg.TLSCertFile, cfg.TLSKeyFile = filepath.Join(dir, certs.SelfSignedCertFile), filepath.Join(dir, certs.SelfSignedKeyFile)
	if own, selfSigned, err := routerCert(cfg, listen, log); err != nil || selfSigned || own.CertFile != cfg.TLSCertFile {
		t.Errorf("operator's files: %v, self-signed %v", err, selfSigned)
	}
	cfg.TLSKeyFile = ""
	if _, _, err := routerCert(cfg, listen, log); err == nil {
		t.Error("--tls-cert without --tls-key accepted")
	}
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
