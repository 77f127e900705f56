package uaa

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tokenFrom sends a token request as the cf CLI does, from remoteAddr,
// straight to the handlers.
func (f *fixture) tokenFrom(t *testing.T, remoteAddr string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, body := f.tokenFromResp(t, remoteAddr, form)
	return resp.StatusCode, body
}

func (f *fixture) tokenFromResp(t *testing.T, remoteAddr string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
	req.RemoteAddr = remoteAddr
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode token response %q: %v", rec.Body, err)
	}
	return rec.Result(), body
}

func TestTokenRequest_clientCredentialsOnlyInTheAuthorizationHeader(t *testing.T) {
	f := newFixture(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("cf:"))
	for _, tc := range []struct {
		name, body, authorization, origin string
		status                            int
		desc                              string
	}{
		{"client_id in the form (an HTML form can send it)", "grant_type=password&username=admin&password=secret&client_id=cf", "", "", 401, "Authorization header"},
		{"client_id and secret in the form", "grant_type=password&username=admin&password=secret&client_id=cf&client_secret=", "", "", 401, "Authorization header"},
		{"client_id in the form besides Basic", "grant_type=password&username=admin&password=secret&client_id=cf", basic, "", 401, "Authorization header"},
		{"client_id in the query", "grant_type=password&username=admin&password=secret", basic + "?client_id=cf", "", 401, "Authorization header"},
		{"no client", "grant_type=password&username=admin&password=secret", "", "", 401, "Full authentication is required"},
		{"a web page, even with Basic", "grant_type=password&username=admin&password=secret", basic, "http://evil.example", 403, "web pages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "/oauth/token"
			authz, query, _ := strings.Cut(tc.authorization, "?")
			if query != "" {
				target += "?" + query
			}
			req := httptest.NewRequest("POST", target, strings.NewReader(tc.body))
			req.RemoteAddr = "127.0.0.1:1234"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			rec := httptest.NewRecorder()
			f.mux.ServeHTTP(rec, req)
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			desc, _ := body["error_description"].(string)
			if rec.Code != tc.status || body["error"] == nil || !strings.Contains(desc, tc.desc) {
				t.Errorf("status %d body %s, want %d with %q", rec.Code, rec.Body, tc.status, tc.desc)
			}
		})
	}
	// The cf CLI's way works.
	f.login(t)
}

func TestPasswordGrant_locksAfterRepeatedFailuresFromOneAddress(t *testing.T) {
	f := newFixture(t)
	const stranger = "192.0.2.7:40000"
	bad := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}}
	for range 5 {
		f.tokenFrom(t, stranger, bad)
	}
	good := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"secret"}}
	code, body := f.tokenFrom(t, stranger, good)
	if code != http.StatusUnauthorized || !strings.Contains(body["error_description"].(string), "locked") {
		t.Fatalf("after 5 failures: status %d body %v", code, body)
	}
	// Only that address is locked out: the user logs in from elsewhere,
	// and from the server's own machine.
	for _, addr := range []string{"192.0.2.8:40000", "[2001:db8:1::1]:40000", "127.0.0.1:40000", "[::1]:40000"} {
		if code, body := f.tokenFrom(t, addr, good); code != http.StatusOK {
			t.Errorf("from %s while %s is locked out: status %d body %v", addr, stranger, code, body)
		}
	}
	f.clock.Add(5*time.Minute + time.Second)
	if code, body := f.tokenFrom(t, stranger, good); code != http.StatusOK {
		t.Fatalf("after lockout: status %d body %v", code, body)
	}
}

func TestPasswordGrant_loopbackIsNeverLockedOut(t *testing.T) {
	f := newFixture(t)
	bad := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}}
	for i := range 20 {
		code, body := f.token(t, bad) // over loopback, like `pando login` on the server's machine
		if code != http.StatusUnauthorized || body["error_description"] != "Bad credentials" {
			t.Fatalf("wrong password %d: status %d body %v", i+1, code, body)
		}
		if i%5 == 4 {
			f.clock.Add(time.Minute) // stay within the rate limit
		}
	}
	f.login(t)
}

func TestPasswordGrant_rateLimitedPerAddressBeforeThePasswordIsChecked(t *testing.T) {
	f := newFixture(t)
	const addr = "198.51.100.4:1234"
	bad := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}}
	lookups := f.users.lookups()
	// Ten attempts at once, at ten user names (one name would be locked
	// out after five, refused before its lookup).
	for i := range 10 {
		f.tokenFrom(t, addr, url.Values{"grant_type": {"password"}, "username": {"user" + strconv.Itoa(i)}, "password": {"x"}})
	}
	if got := f.users.lookups() - lookups; got != 10 {
		t.Fatalf("10 attempts within the burst made %d user lookups, want 10", got)
	}
	code, body := f.tokenFromResp(t, addr, bad)
	if code.StatusCode != http.StatusTooManyRequests || body["error"] != "too_many_requests" ||
		!strings.Contains(body["error_description"].(string), "try again in 6 seconds") {
		t.Fatalf("11th attempt: status %d body %v", code.StatusCode, body)
	}
	if ra := code.Header.Get("Retry-After"); ra != "6" {
		t.Errorf("Retry-After = %q, want 6", ra)
	}
	if got := f.users.lookups() - lookups; got != 10 {
		t.Errorf("the refused attempt looked the user up (%d lookups): it must be refused before any password work", got)
	}
	// Other addresses are not affected; the address gets one attempt back
	// per interval.
	good := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"secret"}}
	if code, body := f.tokenFrom(t, "198.51.100.5:1234", good); code != http.StatusOK {
		t.Errorf("another address: status %d body %v", code, body)
	}
	f.clock.Add(6 * time.Second)
	if code, body := f.tokenFrom(t, addr, good); code != http.StatusOK {
		t.Errorf("after the interval: status %d body %v", code, body)
	}
	if code, _ := f.tokenFrom(t, addr, good); code != http.StatusTooManyRequests {
		t.Errorf("a second attempt in the same interval: status %d, want 429", code)
	}
}

func TestClientOf_keysIPv6ByItsSlash64AndKnowsLoopback(t *testing.T) {
	for _, tc := range []struct {
		remote, key string
		loopback    bool
	}{
		{"192.0.2.1:80", "192.0.2.1", false},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1", false},
		{"127.0.0.1:5", "127.0.0.1", true},
		{"127.3.4.5:5", "127.3.4.5", true},
		{"[::1]:5", "::1", true},
		{"[2001:db8:a:b:1:2:3:4]:80", "2001:db8:a:b::/64", false},
		{"[2001:db8:a:b:ffff::1]:80", "2001:db8:a:b::/64", false},
		{"@", "other:@", false},
	} {
		got := clientOf(tc.remote)
		if got.key != tc.key || got.loopback != tc.loopback {
			t.Errorf("clientOf(%q) = %+v, want key %q loopback %v", tc.remote, got, tc.key, tc.loopback)
		}
	}
}

func TestGate_boundsConcurrentComparisonsAndWaiting(t *testing.T) {
	g := newGate(1, 1, 50*time.Millisecond)
	ctx := context.Background()
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- g.acquire(ctx) }()
	// Once the waiter queues, a third caller finds the queue full.
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		n := g.waiting
		g.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second caller never queued")
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.acquire(ctx); !errors.Is(err, errBusy) {
		t.Fatalf("third caller with the queue full: %v, want errBusy", err)
	}
	if err := <-waited; !errors.Is(err, errBusy) {
		t.Fatalf("a waiter past maxWait: %v, want errBusy", err)
	}
	go func() { waited <- g.acquire(ctx) }()
	g.release()
	if err := <-waited; err != nil {
		t.Fatalf("a waiter when the slot frees: %v", err)
	}
	g.release()
}

// TestPasswordGrant_behindATrustedProxyCountsTheRealClient: behind a TLS
// proxy on the server's machine every peer is loopback; with the proxy
// trusted, lockout and rate limits count the client its X-Forwarded-For
// names, and nobody else can pose as loopback with the header.
func TestPasswordGrant_behindATrustedProxyCountsTheRealClient(t *testing.T) {
	f := newFixture(t)
	f.svc.trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	via := func(peer, xff string, form url.Values) (int, map[string]any) {
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
		req.RemoteAddr = peer
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("cf", "")
		rec := httptest.NewRecorder()
		f.mux.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	bad := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}}
	good := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"secret"}}
	for range 5 {
		via("127.0.0.1:5000", "192.0.2.7", bad)
	}
	if code, body := via("127.0.0.1:5000", "192.0.2.7", good); code != http.StatusUnauthorized {
		t.Fatalf("the client behind the proxy is not locked out: %d %v", code, body)
	}
	if code, _ := via("127.0.0.1:5000", "192.0.2.8", good); code != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d", code)
	}
	if code, _ := via("127.0.0.1:5000", "", good); code != http.StatusOK {
		t.Fatalf("the server's own machine: %d", code)
	}
	// A stranger cannot pose as loopback with the header.
	for range 5 {
		via("192.0.2.9:5000", "127.0.0.1", bad)
	}
	if code, _ := via("192.0.2.9:5000", "127.0.0.1", good); code != http.StatusUnauthorized {
		t.Fatalf("an untrusted peer's X-Forwarded-For was believed: %d", code)
	}
}

// TestPasswordGrant_guessingOneUserFromManyAddressesIsBounded: each address
// stays under its own limits, but failures for one user from anywhere but
// loopback are bounded together; the server's own machine still logs in,
// and the bound refills with time.
func TestPasswordGrant_guessingOneUserFromManyAddressesIsBounded(t *testing.T) {
	f := newFixture(t)
	bad := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}}
	good := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"secret"}}
	for i := range 30 {
		addr := "198.51.100." + strconv.Itoa(i+1) + ":4000" // one failure per address
		if code, body := f.tokenFrom(t, addr, bad); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d %v", i+1, code, body)
		}
	}
	resp, body := f.tokenFromResp(t, "198.51.100.200:4000", good)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("31st attempt for admin from a new address: %d %v", resp.StatusCode, body)
	}
	if code, _ := f.tokenFrom(t, "127.0.0.1:4000", good); code != http.StatusOK {
		t.Fatalf("the server's own machine was held back: %d", code)
	}
	// Other users are not affected.
	if err := f.svc.EnsureAdmin(t.Context(), "other", "pw"); err == nil {
		other := url.Values{"grant_type": {"password"}, "username": {"other"}, "password": {"pw"}}
		if code, body := f.tokenFrom(t, "198.51.100.201:4000", other); code != http.StatusOK {
			t.Fatalf("another user: %d %v", code, body)
		}
	}
	f.clock.Add(10 * time.Second)
	if code, body := f.tokenFrom(t, "198.51.100.202:4000", good); code != http.StatusOK {
		t.Fatalf("after the bound refilled: %d %v", code, body)
	}
}
