package cellauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// JoinInfoPath is where the API answers a joining cell (no authentication:
// what it says is checked against the token).
const JoinInfoPath = "/pando/v1/cells/join"

// JoinPath is the join request on the server's cell listener.
const JoinPath = "/v1/join"

// JoinInfo is the API's answer at JoinInfoPath.
type JoinInfo struct {
	// CAPEM is the cell CA certificate.
	CAPEM string `json:"ca_pem"`
	// CellAPIAddr is the server's cell listener; an unspecified host
	// (0.0.0.0, ::) means the host of the API URL the cell used.
	CellAPIAddr string `json:"cell_api_addr"`
}

// JoinRequest is a cell's request for a certificate.
type JoinRequest struct {
	CellID string `json:"cell_id"`
	Secret string `json:"secret"`
	CSRPEM string `json:"csr_pem"`
}

// JoinResponse carries the certificate issued.
type JoinResponse struct {
	CertPEM string `json:"cert_pem"`
}

// Credentials are what a joined cell holds: its certificate, the pinned
// CA and the server's cell API URL.
type Credentials struct {
	Cert    tls.Certificate
	Pool    *x509.CertPool
	CellAPI string // https://HOST:PORT
	// Kept: the certificate was the one kept in the data dir (a restart);
	// false when the server issued it just now (a first join, a renewal).
	Kept bool
}

// Files in a cell's data dir.
const (
	cellCAFile   = "ca.pem"
	cellCertFile = "cell.pem"
	cellKeyFile  = "cell-key.pem"
	// renewBefore: a certificate closer to its end than this is replaced.
	renewBefore = 30 * 24 * time.Hour
	maxJoinBody = 1 << 20
)

// Join gets a cell's credentials: it fetches the CA from the API at
// apiURL (plain HTTP is fine), refuses it unless its hash is the token's,
// then reuses the certificate kept in dir, or sends a CSR with the
// token's secret to the server's cell listener over TLS verified against
// that CA, and keeps the certificate issued (key 0600).
func Join(ctx context.Context, hc *http.Client, apiURL string, tok Token, cellID, dir string) (*Credentials, error) {
	if err := CheckCellID(cellID); err != nil {
		return nil, err
	}
	if tok.Router {
		return nil, errors.New("join: a router token cannot join a cell; use <server data dir>/cell-token")
	}
	pool, caPEM, cellAPI, err := discover(ctx, hc, apiURL, tok, "--join")
	if err != nil {
		return nil, err
	}
	creds := &Credentials{Pool: pool, CellAPI: cellAPI}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cell data dir: %w", err)
	}
	if cert, ok := loadCellCert(dir, cellID, pool); ok {
		creds.Cert, creds.Kept = cert, true
		return creds, nil
	}
	cert, err := requestCert(ctx, creds, tok, cellID)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, cellKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("store cell key: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, cellCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		return nil, fmt.Errorf("store cell certificate: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, cellCAFile), caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("store cell CA: %w", err)
	}
	creds.Cert = cert
	return creds, nil
}

// Discover finds the server's cell listener from the API at apiURL (plain
// HTTP is fine): it returns the listener's URL and a pool of the server's
// CA, refused unless its hash is the one tok pins. Routers connect with it.
func Discover(ctx context.Context, hc *http.Client, apiURL string, tok Token) (pool *x509.CertPool, cellAPI string, err error) {
	pool, _, cellAPI, err = discover(ctx, hc, apiURL, tok, "--api")
	return pool, cellAPI, err
}

func discover(ctx context.Context, hc *http.Client, apiURL string, tok Token, flag string) (*x509.CertPool, []byte, string, error) {
	base, err := url.Parse(strings.TrimRight(apiURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, nil, "", fmt.Errorf("%s %q: want http(s)://HOST[:PORT] of the Pando API", flag, apiURL)
	}
	var info JoinInfo
	if err := getJSON(ctx, hc, base.String()+JoinInfoPath, &info); err != nil {
		return nil, nil, "", fmt.Errorf("reach %s: %w", apiURL, err)
	}
	ca, err := ParseCertPEM([]byte(info.CAPEM))
	if err != nil {
		return nil, nil, "", fmt.Errorf("reach %s: CA: %w", apiURL, err)
	}
	if got := CertHash(ca); got != tok.CAHash {
		return nil, nil, "", fmt.Errorf("reach %s: the server's CA (sha256:%s) is not the one the token pins (sha256:%s): a token from another server, or something between this machine and the server", apiURL, got, tok.CAHash)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	host, port, err := net.SplitHostPort(info.CellAPIAddr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("reach %s: cell API address %q: %w", apiURL, info.CellAPIAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = base.Hostname()
	}
	return pool, []byte(info.CAPEM), "https://" + net.JoinHostPort(host, port), nil
}

// loadCellCert returns the certificate kept in dir when it is cell id's,
// signed by the pinned CA and not about to expire.
func loadCellCert(dir, id string, pool *x509.CertPool) (tls.Certificate, bool) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, cellCertFile), filepath.Join(dir, cellKeyFile))
	if err != nil {
		return tls.Certificate{}, false
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < renewBefore {
		return tls.Certificate{}, false
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: CellName(id),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return tls.Certificate{}, false
	}
	cert.Leaf = leaf
	return cert, true
}

func requestCert(ctx context.Context, creds *Credentials, tok Token, id string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id}, DNSNames: []string{CellName(id)}}, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate request: %w", err)
	}
	body, _ := json.Marshal(JoinRequest{CellID: id, Secret: tok.Secret,
		CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	// The secret goes only to a server holding the pinned CA's certificate.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: ClientTLS(nil, creds.Pool, ServerName), Proxy: nil}}
	req, err := http.NewRequestWithContext(ctx, "POST", creds.CellAPI+JoinPath, bytes.NewReader(body))
	if err != nil {
		return tls.Certificate{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("join %s: %w", creds.CellAPI, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The server's message as it is (it says what to do), not its JSON.
		return tls.Certificate{}, fmt.Errorf("join %s: %w", creds.CellAPI, wireerr.Read("refused", resp))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJoinBody))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("join %s: %w", creds.CellAPI, err)
	}
	var jr JoinResponse
	if err := json.Unmarshal(b, &jr); err != nil {
		return tls.Certificate{}, fmt.Errorf("join %s: answer: %w", creds.CellAPI, err)
	}
	leaf, err := ParseCertPEM([]byte(jr.CertPEM))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("join %s: %w", creds.CellAPI, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: creds.Pool, DNSName: CellName(id),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return tls.Certificate{}, fmt.Errorf("join %s: certificate issued: %w", creds.CellAPI, err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return tls.Certificate{}, errors.New("join: the certificate issued is not for this cell's key")
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJoinBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

// HandleJoin answers a JoinRequest (the server's side): the secret must
// be the token's. It returns the certificate issued, or an error to
// answer with.
func (ca *CA) HandleJoin(tok Token, jr JoinRequest) (JoinResponse, error) {
	if !tok.MatchSecret(jr.Secret) {
		return JoinResponse{}, errWrongSecret
	}
	pemCert, err := ca.SignCell(jr.CellID, []byte(jr.CSRPEM))
	if err != nil {
		return JoinResponse{}, err
	}
	return JoinResponse{CertPEM: string(pemCert)}, nil
}
