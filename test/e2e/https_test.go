package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pinnedClient sends every request to addr whatever the URL's host (the
// test's names resolve nowhere: no traffic leaves loopback), verifying
// the server's certificate against roots for the URL's host.
func pinnedClient(addr string, roots *x509.CertPool) *http.Client {
	d := net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
}

func fetchJSON(t *testing.T, c *http.Client, req *http.Request, v any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", req.Method, req.URL, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s %s: %v: %s", req.Method, req.URL, err, body)
	}
}

func TestHTTPS_theAPIOnItsSystemHostsAndIPAndAnAppOverTheRouterTLS(t *testing.T) {
	t.Parallel()
	// HTTPS on :443 of a loopback address of its own, as `cf api
	// https://IP` expects: no port in any URL.
	ip, err := freeLoopback443()
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := net.JoinHostPort(ip, "443")
	s := ownServer(t, "--router-tls-addr", tlsAddr, "--system-domain", "sys.pando.test")

	// The self-signed certificate is in the data dir, its fingerprint in
	// the server's output.
	certFile := filepath.Join(s.dataDir, "router-cert.pem")
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("%s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	fp := strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", sum[:]), " ", ":"))
	if log := s.logTail(0, 1<<20); !strings.Contains(log, "SHA-256 fingerprint "+fp) || !strings.Contains(log, "Router HTTPS: https://"+tlsAddr) {
		t.Errorf("the server did not print its HTTPS address and certificate fingerprint %s:\n%s", fp, log)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	c := pinnedClient(tlsAddr, roots)

	// cf api https://api.<system domain>: the root document sends login,
	// UAA and log-cache to their own system hosts.
	apiURL := "https://api.sys.pando.test"
	var root struct {
		Links map[string]struct {
			Href string `json:"href"`
		} `json:"links"`
	}
	req, _ := http.NewRequest("GET", apiURL+"/", nil)
	fetchJSON(t, c, req, &root)
	for k, want := range map[string]string{
		"self": apiURL, "cloud_controller_v3": apiURL + "/v3", "login": "https://login.sys.pando.test",
		"uaa": "https://uaa.sys.pando.test", "log_cache": "https://log-cache.sys.pando.test",
	} {
		if got := root.Links[k].Href; got != want {
			t.Errorf("links.%s = %q, want %q", k, got, want)
		}
	}

	// cf login posts to links.login; the API answers on its host.
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {s.password}}
	req, _ = http.NewRequest("POST", root.Links["login"].Href+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	fetchJSON(t, c, req, &tok)
	var page struct {
		Pagination struct {
			Next struct {
				Href string `json:"href"`
			} `json:"next"`
		} `json:"pagination"`
	}
	req, _ = http.NewRequest("GET", apiURL+"/v3/buildpacks?per_page=1", nil)
	req.Header.Set("Authorization", "bearer "+tok.AccessToken)
	fetchJSON(t, c, req, &page)
	if !strings.HasPrefix(page.Pagination.Next.Href, apiURL+"/v3/buildpacks?") {
		t.Errorf("pagination.next.href = %q, want it under %s", page.Pagination.Next.Href, apiURL)
	}

	// The pando CLI on the IP address, trusting the certificate: log in,
	// push (its streams go through the router too), list.
	s.cliEnv = []string{"SSL_CERT_FILE=" + certFile}
	s.mustPando(t, "login", "-a", "https://"+ip, "-u", "admin", "-p", s.password)
	page1 := "<h1>over https</h1>\n"
	if r := s.mustPando(t, "push", "tls-site", "-p", staticSite(t, page1)); !regexp.MustCompile(`https://tls-site\.localhost\b[^:]`).MatchString(r.out()) {
		t.Errorf("push over HTTPS does not show the app's HTTPS URL:\n%s", r)
	}
	if r := s.mustPando(t, "apps"); !strings.Contains(r.stdout, "tls-site") {
		t.Errorf("pando apps over HTTPS:\n%s", r)
	}
	// The app over HTTPS, its name covered by the certificate's wildcard.
	resp, err := c.Get("https://tls-site.localhost/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != page1 {
		t.Errorf("app over HTTPS: %d %q", resp.StatusCode, body)
	}

	// Without the certificate trusted, the CLI refuses the server.
	s.cliEnv = []string{"SSL_CERT_FILE=/dev/null"}
	if r := s.pando(t, "apps"); r.code == 0 || !strings.Contains(r.out(), "certificate") {
		t.Errorf("an untrusted certificate was accepted or not named:\n%s", r)
	}

	// The real cf CLI, where installed: cf api https://IP:PORT.
	cf, err := exec.LookPath("cf")
	if err != nil {
		t.Log("no cf CLI on PATH: its part is not run")
		return
	}
	cfHome := t.TempDir()
	runCF := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, cf, args...)
		cmd.Env = append(baseEnv(), "CF_HOME="+cfHome, "CF_COLOR=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	runCF("api", "https://"+ip, "--skip-ssl-validation")
	runCF("auth", "admin", s.password)
	runCF("target", "-o", "pando", "-s", "dev")
	if out := runCF("apps"); !strings.Contains(out, "tls-site") {
		t.Errorf("cf apps over HTTPS does not list tls-site:\n%s", out)
	}
}

// freeLoopback443 finds a loopback address (127.x.y.z, chosen at random so
// concurrent runs do not meet) whose port 443 is free.
func freeLoopback443() (string, error) {
	var lastErr error
	for range 20 {
		n := rand.Uint32()
		ip := fmt.Sprintf("127.%d.%d.%d", 1+n%250, (n>>8)%256, 1+(n>>16)%250)
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "443"))
		if err != nil {
			lastErr = err
			continue
		}
		ln.Close()
		return ip, nil
	}
	return "", fmt.Errorf("no loopback address with port 443 free: %w", lastErr)
}
