// Package cellauth is how cells on other machines join a Pando server and
// how both sides then know each other: the server's certificate authority
// (ECDSA, in its data dir), the join token (a secret plus the SHA-256 of
// the CA certificate, as kubeadm's discovery hash), certificates issued to
// cells from their CSRs, and the mutual-TLS identities (the server, or cell
// ID) every request between them carries.
package cellauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
)

// Names in certificates. A certificate's identity is its DNS name: the
// CA puts ServerName only in the server's and CellName(id) only in cell
// id's, whatever a CSR asks for.
const (
	ServerName     = "server.pando.internal"
	cellNameSuffix = ".cells.pando.internal"
	// CellValidity is how long a cell certificate is valid; a cell joins
	// again (with the token) to renew it.
	CellValidity = 365 * 24 * time.Hour
	caValidity   = 10 * 365 * 24 * time.Hour
)

// File names in the server's data dir.
const (
	caCertFile = "cell-ca.pem"
	caKeyFile  = "cell-ca-key.pem"
	// TokenFile holds the join token (0600).
	TokenFile = "cell-token"
	// RouterTokenFile holds the router token (0600).
	RouterTokenFile = "router-token"
)

// CellName is the DNS name in cell id's certificate.
func CellName(id string) string { return id + cellNameSuffix }

var cellIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// CheckCellID refuses IDs that would not fit a DNS name or a URL path.
func CheckCellID(id string) error {
	if !cellIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return pando.Errorf(pando.EInvalid, "cell id %q: use 1-63 lowercase letters, digits, dots and dashes, starting with a letter or digit", id)
	}
	return nil
}

// CA is the server's certificate authority for cells.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte
	key  *ecdsa.PrivateKey
}

// Hash is the SHA-256 of the CA certificate (DER), in hex: what a join
// token pins.
func (ca *CA) Hash() string { return CertHash(ca.Cert) }

// CertHash is the SHA-256 of a certificate's DER, in hex.
func CertHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool is a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LoadOrCreateCA reads the CA from dir, or creates it there (the key
// 0600) on first use.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cell CA in %s: %w", dir, err)
		}
		return ca, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) && cerr != nil {
		return nil, fmt.Errorf("cell CA: %w", cerr)
	}
	if !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return nil, fmt.Errorf("cell CA: %w", kerr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cell CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Pando cell CA", Organization: []string{"Pando"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cell CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cell CA key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key is never left behind.
	if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("store cell CA key: %w", err)
	}
	if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("store cell CA certificate: %w", err)
	}
	return parseCA(certPEM, keyPEM)
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the key does not match the certificate")
	}
	return &CA{Cert: cert, PEM: certPEM, key: key}, nil
}

// ParseCertPEM reads the first certificate of a PEM text.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ServerCertificate issues the server's own certificate (a new key each
// start): it serves the cell listener and is the client certificate the
// server calls cells' reps with.
func (ca *CA) ServerCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := ca.issue(&key.PublicKey, "pando server", ServerName, caValidity)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// SignCell issues cell id's certificate for the key of a CSR (PEM). Only
// the CSR's key is used: names come from id.
func (ca *CA) SignCell(id string, csrPEM []byte) ([]byte, error) {
	if err := CheckCellID(id); err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, pando.Errorf(pando.EBadRequest, "csr: no PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, pando.Errorf(pando.EBadRequest, "csr: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, pando.Errorf(pando.EBadRequest, "csr: %v", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, pando.Errorf(pando.EBadRequest, "csr: want an ECDSA key")
	}
	der, err := ca.issue(pub, id, CellName(id), CellValidity)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func (ca *CA) issue(pub *ecdsa.PublicKey, cn, dnsName string, validity time.Duration) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Pando"}},
		DNSNames:     []string{dnsName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Both ends serve and call: the server's listener and its calls
		// into reps, a rep's listener and its reports.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", cn, err)
	}
	return der, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// Token is a join token (the secret that earns a cell certificate) or a
// router token (the secret that reads the routing table), and the hash of
// the CA the cell or router pins. The two are separate secrets: a router
// cannot join as a cell, and a cell's token reads no routing table.
type Token struct {
	Secret string
	CAHash string
	// Router marks a router token.
	Router bool
}

const (
	tokenPrefix       = "pando1"
	routerTokenPrefix = "pando1router"
)

// String is the token as operators pass it: pando1.SECRET.sha256:HASH,
// or pando1router.SECRET.sha256:HASH.
func (t Token) String() string {
	p := tokenPrefix
	if t.Router {
		p = routerTokenPrefix
	}
	return p + "." + t.Secret + ".sha256:" + t.CAHash
}

// ParseToken reads a cell join token.
func ParseToken(s string) (Token, error) {
	t, err := parseToken(s)
	if err == nil && t.Router {
		return Token{}, errors.New("join token: this is a router token; cells join with the token in <server data dir>/cell-token")
	}
	return t, err
}

// ParseRouterToken reads a router token.
func ParseRouterToken(s string) (Token, error) {
	t, err := parseToken(s)
	if err == nil && !t.Router {
		return Token{}, errors.New("router token: this is a cell join token; routers use the token in <server data dir>/router-token")
	}
	return t, err
}

func parseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || (parts[0] != tokenPrefix && parts[0] != routerTokenPrefix) || !strings.HasPrefix(parts[2], "sha256:") {
		return Token{}, errors.New("token: want pando1.SECRET.sha256:HASH (<server data dir>/cell-token) or pando1router.SECRET.sha256:HASH (router-token)")
	}
	t := Token{Secret: parts[1], CAHash: strings.TrimPrefix(parts[2], "sha256:"), Router: parts[0] == routerTokenPrefix}
	if len(t.Secret) != 64 || !isHex(t.Secret) || len(t.CAHash) != 64 || !isHex(t.CAHash) {
		return Token{}, errors.New("token: the secret and the CA hash are 64 hex digits each")
	}
	return t, nil
}

// MatchSecret compares a presented secret in constant time.
func (t Token) MatchSecret(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1
}

// RouteServiceKey is the AES-256 key that seals route service signatures
// (X-CF-Proxy-Signature), derived from a router token's secret: the
// server's own router and every `pando router` given the token share it,
// so a request a route service sends back through any of them is
// accepted. A new router token (its file removed) is a new key.
func (t Token) RouteServiceKey() []byte {
	k, err := hkdf.Key(sha256.New, []byte(t.Secret), nil, "pando route service signature key", 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot give; 32 is fine
	}
	return k
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// LoadOrCreateToken reads the join token from path, or writes a new one
// (0600) for ca. A token pinning another CA is replaced.
func LoadOrCreateToken(path string, ca *CA) (Token, error) {
	return loadOrCreateToken(path, ca, false)
}

// LoadOrCreateRouterToken is LoadOrCreateToken for the router token
// (RouterTokenFile).
func LoadOrCreateRouterToken(path string, ca *CA) (Token, error) {
	return loadOrCreateToken(path, ca, true)
}

func loadOrCreateToken(path string, ca *CA, router bool) (Token, error) {
	what := "join token"
	if router {
		what = "router token"
	}
	if b, err := os.ReadFile(path); err == nil {
		if t, err := parseToken(string(b)); err == nil && t.CAHash == ca.Hash() && t.Router == router {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Token{}, fmt.Errorf("%s: %w", what, err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, err
	}
	t := Token{Secret: hex.EncodeToString(b[:]), CAHash: ca.Hash(), Router: router}
	if err := atomicfile.WriteFile(path, []byte(t.String()+"\n"), 0o600); err != nil {
		return Token{}, fmt.Errorf("store %s: %w", what, err)
	}
	return t, nil
}

// Peer is who made a request over mutual TLS.
type Peer struct {
	Server bool
	CellID string
}

// PeerOf returns the verified identity of a request's client certificate:
// the server, or a cell. A request without a certificate the CA signed
// is EUnauthenticated. The TLS config must verify client certificates
// against the CA (ServerTLS does).
func PeerOf(r *http.Request) (Peer, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return Peer{}, pando.Errorf(pando.EUnauthenticated, "no client certificate signed by the cell CA")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	for _, n := range leaf.DNSNames {
		if n == ServerName {
			return Peer{Server: true}, nil
		}
		if id, ok := strings.CutSuffix(n, cellNameSuffix); ok && CheckCellID(id) == nil {
			return Peer{CellID: id}, nil
		}
	}
	return Peer{}, pando.Errorf(pando.EUnauthenticated, "client certificate names neither the server nor a cell")
}

// ServerTLS is the TLS config of a listener of the server or of a rep:
// cert is its own; client certificates are verified against pool when
// given (requests check PeerOf; the join request has none).
func ServerTLS(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
}

// ClientTLS is the TLS config of a client calling peer name (ServerName
// or CellName(id)) with cert, trusting only pool.
func ClientTLS(cert *tls.Certificate, pool *x509.CertPool, name string) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: name}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

var errWrongSecret = pando.Errorf(pando.EUnauthenticated, "join refused: wrong token secret (use the token in the server's <data-dir>/cell-token)")
