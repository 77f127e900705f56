// Package certs gives the router its HTTPS side: the server certificate
// (the operator's PEM files, or a self-signed one generated once and kept
// in the data dir), a TLS configuration for clients on the open internet,
// and a listener that completes each handshake off the accept loop within
// a time bound.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/atomicfile"
)

// Cert is a server certificate with its key.
type Cert struct {
	TLS tls.Certificate // Leaf is set
	// CertFile and KeyFile are where it was read from or stored.
	CertFile, KeyFile string
}

// Leaf is the certificate itself.
func (c *Cert) Leaf() *x509.Certificate { return c.TLS.Leaf }

// Fingerprint is the SHA-256 of the certificate's DER form, as
// `openssl x509 -fingerprint -sha256` prints it (AA:BB:...).
func (c *Cert) Fingerprint() string { return Fingerprint(c.TLS.Leaf) }

// Fingerprint is the SHA-256 of cert's DER form as colon-separated hex.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// Load reads an operator's certificate (PEM, the chain after the leaf)
// and its private key (PEM).
func Load(certFile, keyFile string) (*Cert, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("give both --tls-cert and --tls-key, or neither for a self-signed certificate")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse TLS certificate %s: %w", certFile, err)
		}
	}
	return &Cert{TLS: pair, CertFile: certFile, KeyFile: keyFile}, nil
}

// File names of the generated certificate in its directory.
const (
	SelfSignedCertFile = "router-cert.pem"
	SelfSignedKeyFile  = "router-key.pem"
)

// selfSignedLifetime is how long a generated certificate is valid;
// renewBefore is how close to its end it is replaced.
const (
	selfSignedLifetime = 365 * 24 * time.Hour
	renewBefore        = 30 * 24 * time.Hour
)

// Names are what a certificate covers: DNS names (wildcards allowed) and
// IP addresses. MoreIPs go into a new certificate too, but one that lacks
// them is still reused: the machine's addresses change (a laptop on
// another network) and a certificate someone already trusts should not.
type Names struct {
	DNS     []string
	IPs     []netip.Addr
	MoreIPs []netip.Addr
}

// SelfSigned returns the self-signed certificate kept in dir, or
// generates and stores a new one (ECDSA P-256, key 0600) when there is
// none, it cannot be read, it ends within 30 days or it does not cover
// want. created says a new one was made.
func SelfSigned(dir string, want Names, now time.Time) (c *Cert, created bool, err error) {
	certFile := filepath.Join(dir, SelfSignedCertFile)
	keyFile := filepath.Join(dir, SelfSignedKeyFile)
	// Missing, damaged, expiring or too narrow: replaced below.
	if c, err := Load(certFile, keyFile); err == nil && reusable(c.Leaf(), want, now) {
		return c, false, nil
	}
	certPEM, keyPEM, err := generate(want, now)
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteFile(keyFile, keyPEM, 0o600, atomicfile.Durable()); err != nil {
		return nil, false, fmt.Errorf("store TLS key: %w", err)
	}
	if err := atomicfile.WriteFile(certFile, certPEM, 0o644, atomicfile.Durable()); err != nil {
		return nil, false, fmt.Errorf("store TLS certificate: %w", err)
	}
	c, err = Load(certFile, keyFile)
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// reusable says a stored certificate is still good for want.
func reusable(leaf *x509.Certificate, want Names, now time.Time) bool {
	if now.Before(leaf.NotBefore) || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, n := range want.DNS {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range want.IPs {
		if !slices.ContainsFunc(leaf.IPAddresses, func(have net.IP) bool {
			a, ok := netip.AddrFromSlice(have)
			return ok && a.Unmap() == ip.Unmap()
		}) {
			return false
		}
	}
	return true
}

// generate makes a self-signed server certificate for want.
func generate(want Names, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	cn := "Pando router"
	if len(want.DNS) > 0 {
		cn = want.DNS[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Pando (self-signed)"}},
		NotBefore:             now.Add(-time.Hour), // clocks differ a little
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              slices.Clone(want.DNS),
	}
	for _, ip := range append(slices.Clone(want.IPs), want.MoreIPs...) {
		if a := ip.Unmap().AsSlice(); !slices.ContainsFunc(tmpl.IPAddresses, func(have net.IP) bool { return have.Equal(a) }) {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode TLS key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
