package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNames = Names{
	DNS: []string{"*.apps.test", "api.sys.test", "login.sys.test", "localhost"},
	IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
}

func TestSelfSigned_generatesAnECDSACertForTheNamesWithAPrivateKey(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	names := testNames
	names.MoreIPs = []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("127.0.0.1")}
	c, created, err := SelfSigned(dir, names, now)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for an empty dir")
	}
	if n := len(c.Leaf().IPAddresses); n != 3 {
		t.Errorf("IP SANs %v, want 127.0.0.1, ::1 and 192.0.2.7 once each", c.Leaf().IPAddresses)
	}
	key, ok := c.TLS.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", c.TLS.PrivateKey)
	}
	fi, err := os.Stat(filepath.Join(dir, SelfSignedKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Leaf())
	for _, host := range []string{"myapp.apps.test", "api.sys.test", "login.sys.test", "localhost", "127.0.0.1", "::1", "192.0.2.7"} {
		if _, err := c.Leaf().Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := c.Leaf().Verify(x509.VerifyOptions{DNSName: "evil.test", Roots: roots}); err == nil {
		t.Error("the certificate verifies for a name it was not made for")
	}
	if got := c.Leaf().NotAfter.Sub(now); got < 360*24*time.Hour || got > 366*24*time.Hour {
		t.Errorf("lifetime %v, want about a year", got)
	}
	fp := c.Fingerprint()
	if len(fp) != 32*3-1 || strings.Count(fp, ":") != 31 {
		t.Errorf("fingerprint %q is not 32 colon-separated bytes", fp)
	}
}

func TestSelfSigned_reusesTheStoredCertUntilNamesChangeOrItNearsItsEnd(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, _, err := SelfSigned(dir, testNames, now)
	if err != nil {
		t.Fatal(err)
	}
	again, created, err := SelfSigned(dir, testNames, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if created || again.Fingerprint() != first.Fingerprint() {
		t.Fatalf("restart made a new certificate (created=%v)", created)
	}
	// Other machine addresses do not replace it; new required ones do.
	if c, created, _ := SelfSigned(dir, Names{DNS: testNames.DNS, IPs: testNames.IPs, MoreIPs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}, now); created || c.Fingerprint() != first.Fingerprint() {
		t.Error("a new machine address replaced the certificate")
	}
	// A subset of the names is still covered.
	if c, created, _ := SelfSigned(dir, Names{DNS: []string{"api.sys.test"}}, now); created || c.Fingerprint() != first.Fingerprint() {
		t.Error("a narrower set of names replaced the certificate")
	}

	wider := testNames
	wider.DNS = append(append([]string(nil), testNames.DNS...), "api.other.test")
	renamed, created, err := SelfSigned(dir, wider, now)
	if err != nil {
		t.Fatal(err)
	}
	if !created || renamed.Fingerprint() == first.Fingerprint() {
		t.Error("a new system domain kept the old certificate")
	}

	late := now.Add(340 * 24 * time.Hour)
	renewed, created, err := SelfSigned(dir, wider, late)
	if err != nil {
		t.Fatal(err)
	}
	if !created || !renewed.Leaf().NotAfter.After(late.Add(300*24*time.Hour)) {
		t.Errorf("a certificate 25 days from its end was kept (created=%v, ends %v)", created, renewed.Leaf().NotAfter)
	}
}

func TestSelfSigned_replacesDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SelfSignedCertFile), []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SelfSignedKeyFile), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, created, err := SelfSigned(dir, testNames, time.Now())
	if err != nil || !created || c.Leaf() == nil {
		t.Fatalf("SelfSigned over damaged files: created=%v err=%v", created, err)
	}
}

func TestLoad_readsTheOperatorsPairAndRefusesAMismatch(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := generate(Names{DNS: []string{"api.example.test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := generate(Names{DNS: []string{"x.test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile, keyFile, wrongKey := write("c.pem", certPEM), write("k.pem", keyPEM), write("o.pem", otherKey)

	c, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf().DNSNames[0] != "api.example.test" {
		t.Errorf("leaf names %v", c.Leaf().DNSNames)
	}
	if _, err := Load(certFile, wrongKey); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("mismatched key: err = %v, want one naming the files", err)
	}
	if _, err := Load(certFile, ""); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("cert without key: err = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Error("a missing certificate file loaded")
	}
}
