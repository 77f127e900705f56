package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
)

// clientFor is the HTTP client for cfg's target: without certificate
// checks when the user asked for that (--skip-ssl-validation, as cf's),
// for a server with a self-signed certificate.
func (e *env) clientFor(cfg *Config) *http.Client {
	if !cfg.SkipSSLValidation {
		return e.httpClient
	}
	var t *http.Transport
	switch base := e.httpClient.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = base.Clone()
	default:
		return e.httpClient
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = true
	c := *e.httpClient
	c.Transport = t
	return &c
}

// certificateHint says what to do about a certificate the client does not
// trust, or "".
func certificateHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) {
		return " (trust the server's certificate, e.g. SSL_CERT_FILE=router-cert.pem, or use 'pando login --skip-ssl-validation' for a self-signed one)"
	}
	return ""
}
