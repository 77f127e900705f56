package router

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// rsTable is a RouteServices with fixed answers, by "host" or "host/path".
type rsTable map[string]string

func (t rsTable) RouteServiceURL(host, path string) string { return t[host+path] }

// fakeRouteService is a route service on loopback: it records what the
// router sent it and, unless told otherwise, sends the request on to
// X-CF-Forwarded-Url through the router with the proxy headers, and
// answers "via-rs:" and the app's answer.
type fakeRouteService struct {
	srv        *httptest.Server
	routerAddr string // where X-CF-Forwarded-Url is sent

	mu   sync.Mutex
	seen []*http.Request
}

func newFakeRouteService(t *testing.T) *fakeRouteService {
	t.Helper()
	f := &fakeRouteService{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r)
		addr := f.routerAddr
		f.mu.Unlock()
		fwd := r.Header.Get("X-CF-Forwarded-Url")
		req, err := http.NewRequest(r.Method, fwd, r.Body)
		if err != nil {
			http.Error(w, "bad forwarded url: "+err.Error(), http.StatusBadGateway)
			return
		}
		req.Header.Set("X-CF-Proxy-Signature", r.Header.Get("X-CF-Proxy-Signature"))
		req.Header.Set("X-CF-Proxy-Metadata", r.Header.Get("X-CF-Proxy-Metadata"))
		req.Header.Set("X-CF-Forwarded-Url", fwd)
		// The forwarded URL's host is the route; the router listens here.
		req.URL.Host = addr
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		io.WriteString(w, "via-rs:"+string(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRouteService) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	return &tls.Config{RootCAs: pool}
}

func (f *fakeRouteService) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.seen...)
}

func newRouteServiceRouter(t *testing.T, rs *fakeRouteService, app *backend, path string) (*Router, string) {
	t.Helper()
	r := New(Config{
		RouteServices:   rsTable{"myapp.localhost" + path: rs.srv.URL + "/filter?k=v"},
		RouteServiceTLS: rs.tlsConfig(),
	})
	r.SetRoutes("proc", "app-guid", []string{"myapp.localhost" + path, "plain.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i0", Index: 0, Addr: app.addr()}})
	addr, _ := serveFrom(t, r, "10.1.2.3:5555")
	rs.mu.Lock()
	rs.routerAddr = addr
	rs.mu.Unlock()
	return r, addr
}

func postVia(t *testing.T, addr, host, uri string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+addr+uri, strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	return send(t, req)
}

func TestRouteService_requestGoesThroughTheServiceThenToTheApp(t *testing.T) {
	app := newBackend(t, "app")
	rs := newFakeRouteService(t)
	_, addr := newRouteServiceRouter(t, rs, app, "")

	rec := postVia(t, addr, "myapp.localhost", "/hello?x=1", nil)
	if rec.Code != 200 || rec.Body.String() != "via-rs:app" {
		t.Fatalf("got %d %q, want the app's answer through the route service", rec.Code, rec.Body)
	}
	seen := rs.requests()
	if len(seen) != 1 {
		t.Fatalf("route service saw %d requests, want 1", len(seen))
	}
	got := seen[0]
	if got.URL.Path != "/filter" || got.URL.RawQuery != "k=v" || got.Method != "POST" {
		t.Errorf("route service got %s %s, want POST to its own URL", got.Method, got.URL)
	}
	if f := got.Header.Get("X-CF-Forwarded-Url"); f != "http://myapp.localhost/hello?x=1" {
		t.Errorf("X-CF-Forwarded-Url = %q", f)
	}
	if got.Header.Get("X-CF-Proxy-Signature") == "" || got.Header.Get("X-CF-Proxy-Metadata") == "" {
		t.Errorf("route service got no signature: %v", got.Header)
	}
	if got.Header.Get("X-Forwarded-For") != "10.1.2.3" || got.Header.Get("X-Vcap-Request-Id") == "" {
		t.Errorf("route service lacks the router's forwarding headers: %v", got.Header)
	}
	if app.hits.Load() != 1 {
		t.Fatalf("app got %d requests, want 1", app.hits.Load())
	}
	app.mu.Lock()
	last, body := app.last, app.body
	app.mu.Unlock()
	if body != "payload" || last.URL.RequestURI() != "/hello?x=1" {
		t.Errorf("app got %s with body %q", last.URL.RequestURI(), body)
	}
	if last.Header.Get("X-CF-Proxy-Signature") != "" || last.Header.Get("X-CF-Proxy-Metadata") != "" {
		t.Errorf("the app got the signature headers: %v", last.Header)
	}

	// A route without a route service goes straight to the app.
	if rec := postVia(t, addr, "plain.localhost", "/", nil); rec.Body.String() != "app" || len(rs.requests()) != 1 {
		t.Errorf("plain route: %q, route service requests %d", rec.Body, len(rs.requests()))
	}
}

func TestRouteService_onlyTheBoundPathGoesThroughTheService(t *testing.T) {
	app := newBackend(t, "app")
	rs := newFakeRouteService(t)
	r, addr := newRouteServiceRouter(t, rs, app, "/admin")
	r.SetRoutes("proc", "app-guid", []string{"myapp.localhost/admin", "myapp.localhost"})
	if rec := postVia(t, addr, "myapp.localhost", "/admin/x", nil); rec.Body.String() != "via-rs:app" {
		t.Errorf("/admin/x: %q, want through the route service", rec.Body)
	}
	if rec := postVia(t, addr, "myapp.localhost", "/public", nil); rec.Body.String() != "app" {
		t.Errorf("/public: %q, want straight to the app", rec.Body)
	}
}

// A request for the route cannot reach the app without a signature this
// router made, for this URL, recently.
func TestRouteService_badSignaturesAreRefused(t *testing.T) {
	app := newBackend(t, "app")
	rs := newFakeRouteService(t)
	r, addr := newRouteServiceRouter(t, rs, app, "")
	other, err := newRouteServices(rsTable{}, nil, 0) // another router's key
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(s *routeServices, url string, at time.Time) http.Header {
		sig, meta, err := s.sign(url, at)
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"X-Cf-Proxy-Signature": {sig}, "X-Cf-Proxy-Metadata": {meta}}
	}
	cases := map[string]http.Header{
		"garbage":         {"X-Cf-Proxy-Signature": {"bm90IGEgc2lnbmF0dXJl"}, "X-Cf-Proxy-Metadata": {"e30="}},
		"no metadata":     {"X-Cf-Proxy-Signature": sign(r.rs, "http://myapp.localhost/", now)["X-Cf-Proxy-Signature"]},
		"other key":       sign(other, "http://myapp.localhost/", now),
		"expired":         sign(r.rs, "http://myapp.localhost/", now.Add(-2*DefaultRouteServiceTimeout)),
		"other url":       sign(r.rs, "http://myapp.localhost/other", now),
		"other host":      sign(r.rs, "http://plain.localhost/", now),
		"from the future": sign(r.rs, "http://myapp.localhost/", now.Add(2*DefaultRouteServiceTimeout)),
	}
	for name, hdr := range cases {
		rec := postVia(t, addr, "myapp.localhost", "/", hdr)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Failed to validate Route Service Signature") {
			t.Errorf("%s: got %d %q, want 400", name, rec.Code, rec.Body)
		}
	}
	if n := app.hits.Load(); n != 0 {
		t.Errorf("app got %d requests with bad signatures", n)
	}
	// A good one passes.
	if rec := postVia(t, addr, "myapp.localhost", "/", sign(r.rs, "http://myapp.localhost/", now)); rec.Code != 200 || rec.Body.String() != "app" {
		t.Errorf("valid signature: %d %q", rec.Code, rec.Body)
	}
}

func TestRouteService_unreachableServiceIs502AndTheAppIsNotCalled(t *testing.T) {
	app := newBackend(t, "app")
	dead := deadAddr(t)
	r := New(Config{RouteServices: rsTable{"myapp.localhost": "https://" + dead + "/"}})
	r.SetRoutes("proc", "app-guid", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i0", Index: 0, Addr: app.addr()}})
	rec := do(t, r, "GET", "myapp.localhost", "/", "")
	if rec.Code != http.StatusBadGateway {
		t.Errorf("got %d %q, want 502", rec.Code, rec.Body)
	}
	if app.hits.Load() != 0 {
		t.Error("the app was called although its route service is down")
	}
}

func TestRouteService_websocketsAreRefused(t *testing.T) {
	app := newBackend(t, "app")
	rs := newFakeRouteService(t)
	_, addr := newRouteServiceRouter(t, rs, app, "")
	req, _ := http.NewRequest("GET", "http://"+addr+"/ws", nil)
	req.Host = "myapp.localhost"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	rec := send(t, req)
	if rec.Code != http.StatusServiceUnavailable || app.hits.Load() != 0 || len(rs.requests()) != 0 {
		t.Errorf("websocket: %d %q, app hits %d, route service requests %d", rec.Code, rec.Body, app.hits.Load(), len(rs.requests()))
	}
}

// A route service that closed its idle keep-alive connections still gets
// the next POST: the router sees the pooled TLS connection closed and
// dials again instead of answering 502.
func TestRouteService_postAfterTheServiceClosedIdleConnections(t *testing.T) {
	app := newBackend(t, "app")
	rs := newFakeRouteService(t)
	_, addr := newRouteServiceRouter(t, rs, app, "")
	for i := range 3 {
		if rec := postVia(t, addr, "myapp.localhost", "/", nil); rec.Code != 200 || rec.Body.String() != "via-rs:app" {
			t.Fatalf("request %d: %d %q", i, rec.Code, rec.Body)
		}
		rs.srv.CloseClientConnections()
	}
}
