package cellauth

import (
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
