package cellauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCA_isCreatedOnceWithAPrivateKeyAndTheTokenPinsIt(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, caKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Hash() != ca.Hash() {
		t.Fatal("the CA changed across loads")
	}
	path := filepath.Join(dir, TokenFile)
	tok, err := LoadOrCreateToken(path, ca)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	parsed, err := ParseToken(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if parsed != tok || parsed.CAHash != ca.Hash() {
		t.Fatalf("token %+v read back as %+v", tok, parsed)
	}
	if same, _ := LoadOrCreateToken(path, ca); same != tok {
		t.Fatal("the token changed across loads")
	}
}

func TestParseToken_refusesWhatIsNotAToken(t *testing.T) {
	good := Token{Secret: strings.Repeat("ab", 32), CAHash: strings.Repeat("cd", 32)}
	if _, err := ParseToken(good.String()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "pando1", good.Secret, "pando1." + good.Secret + "." + good.CAHash,
		"pando1.xyz.sha256:" + good.CAHash, "pando2." + good.Secret + ".sha256:" + good.CAHash} {
		if _, err := ParseToken(s); err == nil {
			t.Errorf("ParseToken(%q) accepted it", s)
		}
	}
}

func TestSignCell_namesComeFromTheIDNotTheCSR(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SignCell("../etc", nil); err == nil {
		t.Fatal("a bad cell id was accepted")
	}
	if _, err := ca.SignCell("cell-a", []byte("not a csr")); err == nil {
		t.Fatal("garbage was signed")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The CSR asks to be the server.
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{ServerName}}, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCell("cell-a", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != CellName("cell-a") {
		t.Fatalf("certificate names %v, want only %s", cert.DNSNames, CellName("cell-a"))
	}
}

func TestRouterToken_isASeparateSecretThatCannotJoinAsACell(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cellTok, err := LoadOrCreateToken(filepath.Join(dir, TokenFile), ca)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, RouterTokenFile)
	rtrTok, err := LoadOrCreateRouterToken(path, ca)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("router token mode %v, want 0600", fi.Mode().Perm())
	}
	if rtrTok.Secret == cellTok.Secret || !rtrTok.Router || rtrTok.CAHash != ca.Hash() {
		t.Fatalf("router token %+v, cell token %+v: want its own secret pinning the CA", rtrTok, cellTok)
	}
	again, err := LoadOrCreateRouterToken(path, ca)
	if err != nil || again != rtrTok {
		t.Fatalf("router token reloaded as %+v (%v), want %+v", again, err, rtrTok)
	}
	if p, err := ParseRouterToken(rtrTok.String()); err != nil || p != rtrTok {
		t.Fatalf("router token read back as %+v (%v)", p, err)
	}
	if _, err := ParseToken(rtrTok.String()); err == nil || !strings.Contains(err.Error(), "router token") {
		t.Errorf("a router token parsed as a join token: %v", err)
	}
	if _, err := ParseRouterToken(cellTok.String()); err == nil || !strings.Contains(err.Error(), "cell join token") {
		t.Errorf("a join token parsed as a router token: %v", err)
	}
	// Its secret earns no cell certificate.
	if _, err := ca.HandleJoin(cellTok, JoinRequest{CellID: "cell-a", Secret: rtrTok.Secret}); err == nil {
		t.Error("the router token's secret joined as a cell")
	}
}

func TestRouteServiceKey_isSharedByHoldersOfOneRouterTokenOnly(t *testing.T) {
	a := Token{Secret: strings.Repeat("a", 64), CAHash: strings.Repeat("c", 64), Router: true}
	again, err := ParseRouterToken(a.String())
	if err != nil {
		t.Fatal(err)
	}
	other := Token{Secret: strings.Repeat("b", 64), CAHash: a.CAHash, Router: true}
	k := a.RouteServiceKey()
	if len(k) != 32 {
		t.Fatalf("key of %d bytes, want an AES-256 key", len(k))
	}
	if !bytes.Equal(k, again.RouteServiceKey()) {
		t.Error("the same token parsed again gives another key")
	}
	if bytes.Equal(k, other.RouteServiceKey()) {
		t.Error("two router tokens give the same key")
	}
	if bytes.Contains([]byte(a.Secret), k) || bytes.Equal(k, []byte(a.Secret)[:32]) {
		t.Error("the key is the token's secret")
	}
}
