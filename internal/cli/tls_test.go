package cli

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLogin_selfSignedServerNeedsSkipSSLValidationWhichIsRemembered(t *testing.T) {
	f := newFakeCF(t)
	f.srv.Close()
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS() // a certificate nobody trusts
	t.Cleanup(f.srv.Close)
	h := newHarness(t)

	err := h.run("login", "-a", f.url(), "-u", "admin", "-p", "secret")
	if err == nil {
		t.Fatal("login to an untrusted certificate succeeded")
	}
	var report bytes.Buffer
	ReportError(&report, err)
	if !strings.Contains(report.String(), "--skip-ssl-validation") || !strings.Contains(report.String(), "SSL_CERT_FILE") {
		t.Errorf("the error does not say what to do: %s", report.String())
	}

	if err := h.run("login", "-a", f.url(), "-u", "admin", "-p", "secret", "--skip-ssl-validation"); err != nil {
		t.Fatalf("login --skip-ssl-validation: %v\nstderr: %s", err, h.err)
	}
	if cfg := h.config(); !cfg.SkipSSLValidation || cfg.AccessToken == "" {
		t.Fatalf("config = %+v", cfg)
	}
	// Later commands keep talking to it.
	if err := h.run("apps"); err != nil {
		t.Fatalf("apps after login --skip-ssl-validation: %v\nstderr: %s", err, h.err)
	}
	// Setting the endpoint again without the flag checks certificates.
	if err := h.run("endpoint", f.url()); err == nil {
		t.Error("endpoint without --skip-ssl-validation accepted the certificate")
	}
	if err := h.run("endpoint", f.url(), "--skip-ssl-validation"); err != nil || !h.config().SkipSSLValidation {
		t.Errorf("endpoint --skip-ssl-validation: err %v, skip %v", err, h.config().SkipSSLValidation)
	}
}
