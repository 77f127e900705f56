package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// spaceOf returns the app's space and org names and the space GUID.
func (s *server) spaceOf(t *testing.T, token, appGUID string) (org, space, spaceGUID string) {
	t.Helper()
	rel := func(m map[string]any, name string) string {
		return m["relationships"].(map[string]any)[name].(map[string]any)["data"].(map[string]any)["guid"].(string)
	}
	spaceGUID = rel(s.must(t, token, "GET", "/v3/apps/"+appGUID, "", 200), "space")
	sp := s.must(t, token, "GET", "/v3/spaces/"+spaceGUID, "", 200)
	o := s.must(t, token, "GET", "/v3/organizations/"+rel(sp, "organization"), "", 200)
	return o["name"].(string), sp["name"].(string), spaceGUID
}

// TestServices_syslogDrainGetsTheAppsLogLines: an app bound to a
// user-provided service with a syslog drain (cf cups -l
// syslog://HOST:PORT) has its log lines sent there at once, as RFC 5424
// messages with CF's fields, octet-counted; unbinding stops them.
func TestServices_syslogDrainGetsTheAppsLogLines(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 10000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n, err := br.ReadString(' ')
					if err != nil {
						return
					}
					size, err := strconv.Atoi(strings.TrimSpace(n))
					if err != nil || size <= 0 || size > 1<<20 {
						msgs <- "BAD FRAME " + n
						return
					}
					buf := make([]byte, size)
					if _, err := io.ReadFull(br, buf); err != nil {
						return
					}
					msgs <- string(buf)
				}
			}()
		}
	}()

	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	name := "drained-" + suffix[len(suffix)-6:]
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", staticSite(t, "drained\n"))
	host := name + ".localhost"
	s.curlRoute(t, host, "/")
	app := s.appGUID(t, name)
	org, space, spaceGUID := s.spaceOf(t, admin, app)

	si := s.must(t, admin, "POST", "/v3/service_instances", `{"type":"user-provided","name":"logs-`+suffix+`","syslog_drain_url":"syslog://`+ln.Addr().String()+`","relationships":{"space":{"data":{"guid":"`+spaceGUID+`"}}}}`, 201)["guid"].(string)
	b := s.must(t, admin, "POST", "/v3/service_credential_bindings", `{"type":"app","relationships":{"app":{"data":{"guid":"`+app+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`, 201)["guid"].(string)

	// The router's access line and the app's own output for a request
	// reach the drain, without a restart.
	head := `^<14>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ` + regexp.QuoteMeta(org+"."+space+"."+name) + ` ` + app
	wantRTR := regexp.MustCompile(head + ` \[RTR/0\] - - ` + regexp.QuoteMeta(host) + ` - \[.*"GET /\?probe=drain HTTP/1\.1" 200 .*\n$`)
	wantAPP := regexp.MustCompile(head + ` \[APP/PROC/WEB/0\] - - .*GET /\?probe=drain .*\n$`)
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for rtr, out := false, false; !rtr || !out; {
		s.get(host, "/?probe=drain")
		wait := time.After(time.Second)
	drain:
		for {
			select {
			case m := <-msgs:
				last = m
				if strings.HasPrefix(m, "BAD FRAME") {
					t.Fatalf("drain got a bad frame: %q", m)
				}
				rtr = rtr || wantRTR.MatchString(m)
				out = out || wantAPP.MatchString(m)
				if rtr && out {
					break drain
				}
			case <-wait:
				break drain
			}
		}
		if (!rtr || !out) && time.Now().After(deadline) {
			t.Fatalf("the RTR (%v) and APP (%v) lines for GET /?probe=drain did not both reach the drain within 60s; last message: %q", rtr, out, last)
		}
	}

	// Unbinding stops the drain at once.
	s.must(t, admin, "DELETE", "/v3/service_credential_bindings/"+b, "", http.StatusNoContent)
	eventually(t, "the drain gets no more lines after the unbind", 30*time.Second, func() (bool, string) {
		for len(msgs) > 0 {
			<-msgs
		}
		s.get(host, "/after-unbind")
		select {
		case m := <-msgs:
			return false, m
		case <-time.After(2 * time.Second):
			return true, ""
		}
	})
	s.must(t, admin, "DELETE", "/v3/service_instances/"+si, "", http.StatusNoContent)
}

// TestServices_routeServiceSeesEveryRequestFirst: cf bind-route-service
// (POST /v3/service_route_bindings) sends the route's requests to the
// route service with CF's headers; what the service sends back to
// X-CF-Forwarded-Url reaches the app; a request that skips the service
// with a forged signature is refused; unbind-route-service ends it.
func TestServices_routeServiceSeesEveryRequestFirst(t *testing.T) {
	t.Parallel()
	// A route service on loopback, over HTTPS with a certificate the
	// server is told to trust.
	rs := startRouteService(t)
	s := ownServerWithEnv(t, rs.trust)
	rs.sendBackThrough(s.routerAddr)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	const name = "guarded"
	s.mustPando(t, "push", name, "-p", staticSite(t, "the app\n"))
	host := name + ".localhost"
	if body := s.curlRoute(t, host, "/"); body != "the app\n" {
		t.Fatalf("before binding: %q", body)
	}
	b := s.bindRouteService(t, admin, name, rs)

	// At once, without a restart.
	if code, body, err := s.get(host, "/"); err != nil || code != 200 || body != "checked:the app\n" {
		t.Fatalf("through the route service: %d %q %v", code, body, err)
	}
	if got := rs.lastSeen(t); got.Get("X-CF-Forwarded-Url") != "http://"+host+"/" || got.Get("X-CF-Proxy-Signature") == "" || got.Get("X-CF-Proxy-Metadata") == "" {
		t.Errorf("route service got %v", got)
	}
	// Skipping the route service with a made-up signature is refused.
	forgedSignatureRefused(t, s.http, s.routerAddr, host)

	if code, out := s.call(t, admin, "DELETE", "/v3/service_route_bindings/"+b, ""); code != http.StatusNoContent {
		t.Fatalf("unbind-route-service: %d %v", code, out)
	}
	if code, body, err := s.get(host, "/"); err != nil || code != 200 || body != "the app\n" {
		t.Errorf("after unbinding: %d %q %v", code, body, err)
	}
}

// TestServices_syslogDrainsBoundedPerSpace: one space's apps may have
// --syslog-drain-max-per-space drains (default 50); the next bind is
// refused naming the flag, and an unbind makes room.
func TestServices_syslogDrainsBoundedPerSpace(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	org := s.must(t, admin, "POST", "/v3/organizations", `{"name":"drains-`+suffix+`"}`, 201)["guid"].(string)
	t.Cleanup(func() { s.call(t, admin, "DELETE", "/v3/organizations/"+org, "") })
	space := s.must(t, admin, "POST", "/v3/spaces", `{"name":"logs","relationships":{"organization":{"data":{"guid":"`+org+`"}}}}`, 201)["guid"].(string)
	si := s.must(t, admin, "POST", "/v3/service_instances", `{"type":"user-provided","name":"logs","syslog_drain_url":"syslog://`+ln.Addr().String()+`","relationships":{"space":{"data":{"guid":"`+space+`"}}}}`, 201)["guid"].(string)
	bind := func(i int) (int, map[string]any) {
		app := s.must(t, admin, "POST", "/v3/apps", fmt.Sprintf(`{"name":"a%d","relationships":{"space":{"data":{"guid":"%s"}}}}`, i, space), 201)["guid"].(string)
		return s.call(t, admin, "POST", "/v3/service_credential_bindings", `{"type":"app","relationships":{"app":{"data":{"guid":"`+app+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`)
	}
	var first string
	for i := range 50 {
		code, out := bind(i)
		if code != 201 {
			t.Fatalf("bind %d of 50: %d %v", i+1, code, out)
		}
		if i == 0 {
			first = out["guid"].(string)
		}
	}
	code, out := bind(50)
	if code != 422 || !strings.Contains(fmt.Sprint(out), "the space's limit of 50 syslog drains is reached") || !strings.Contains(fmt.Sprint(out), "--syslog-drain-max-per-space") {
		t.Fatalf("bind 51: %d %v, want 422 naming the space's limit and its flag", code, out)
	}
	s.must(t, admin, "DELETE", "/v3/service_credential_bindings/"+first, "", http.StatusNoContent)
	if code, out := bind(51); code != 201 {
		t.Errorf("bind after an unbind: %d %v", code, out)
	}
}
