package cli

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRouteReachNote_onlyWhenLocalhostNamesMissTheRouter(t *testing.T) {
	api := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	for _, c := range []struct {
		name, router, api string
		hosts             []string
		want              string // substring of the note; "" for no note
	}{
		{"loopback router", "http://127.0.0.1:9180", "http://127.0.0.1:9022", []string{"web.localhost"}, ""},
		{"ipv6 loopback router", "http://[::1]:9180", "http://[::1]:9022", []string{"web.localhost"}, ""},
		{"router on 127.0.0.2", "http://127.0.0.2:9180", "http://127.0.0.2:9022", []string{"web.localhost"},
			"curl -H 'Host: web.localhost' http://127.0.0.2:9180/"},
		{"router on every address, API remote", "http://0.0.0.0:8080", "http://10.0.0.1:9022", []string{"web.localhost"},
			"curl -H 'Host: web.localhost' http://10.0.0.1:8080/"},
		{"router on every address, API local", "http://0.0.0.0:8080", "http://127.0.0.1:9022", []string{"web.localhost"}, ""},
		{"router by name", "http://api.example.com:8080", "http://api.example.com", []string{"web.localhost"}, ""},
		{"names in DNS", "http://10.0.0.1:8080", "http://10.0.0.1:9022", []string{"web.apps.example.com"}, ""},
		{"https", "https://127.0.0.3:9443", "https://127.0.0.3:9022", []string{"Web.LOCALHOST"},
			"curl --connect-to ::127.0.0.3:9443 https://web.localhost:9443/"},
		{"no routes", "http://127.0.0.2:9180", "http://127.0.0.2:9022", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := routeReachNote(api(c.router), api(c.api), c.hosts)
			if c.want == "" && got != "" {
				t.Errorf("note %q, want none", got)
			}
			if c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("note %q, want one with %q", got, c.want)
			}
		})
	}
}

// `pando app` against a router on 127.0.0.2 says how to reach the app,
// since http://myapp.localhost:9180 would go to 127.0.0.1.
func TestApp_saysHowToReachARouterOffLoopback(t *testing.T) {
	f := newFakeCF(t)
	f.appExists, f.appState, f.instances = true, "STARTED", 1
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	f.routerURL = "http://127.0.0.2:9180"
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("app", "myapp"); err != nil {
		t.Fatalf("app: %v\nstderr: %s", err, h.err)
	}
	out := h.out.String()
	if !strings.Contains(out, "http://myapp.localhost:9180") {
		t.Errorf("route not shown with the router's port:\n%s", out)
	}
	if !strings.Contains(out, "curl -H 'Host: myapp.localhost' http://127.0.0.2:9180/") {
		t.Errorf("no word on how to reach the app at the router's address:\n%s", out)
	}

	h = newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("apps"); err != nil {
		t.Fatalf("apps: %v\nstderr: %s", err, h.err)
	}
	if !strings.Contains(h.out.String(), "curl -H 'Host: myapp.localhost' http://127.0.0.2:9180/") {
		t.Errorf("apps: no word on how to reach the app at the router's address:\n%s", h.out.String())
	}

	f.routerURL = "http://127.0.0.1:9180"
	h = newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("apps"); err != nil {
		t.Fatalf("apps: %v\nstderr: %s", err, h.err)
	}
	if strings.Contains(h.out.String(), "note:") {
		t.Errorf("a note for a router on 127.0.0.1:\n%s", h.out.String())
	}
}
