package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// backend is a loopback app instance that answers with its name and
// records the requests it saw.
type backend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
	body string
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.hits.Add(1)
		b.mu.Lock()
		b.last, b.body = r, string(body)
		b.mu.Unlock()
		io.WriteString(w, name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// remoteListener makes its connections report remote as their client's
// address, so tests can stand for any client on loopback.
type remoteListener struct {
	net.Listener
	remote net.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{Conn: c, remote: l.remote}, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }
func (c remoteConn) CloseWrite() error    { return c.Conn.(*net.TCPConn).CloseWrite() }

// serveFrom runs r on loopback until the test ends, its clients seen as
// remote ("10.1.2.3:5555"); stop ends it and waits for its connections.
func serveFrom(t testing.TB, r *Router, remote string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ra, err := net.ResolveTCPAddr("tcp", remote)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx, remoteListener{Listener: ln, remote: ra}); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// doServers holds the one server per router that do sends through.
var doServers sync.Map // *Router -> address

// do sends a request with the given Host through the router, from client
// 10.1.2.3, and records the answer.
func do(t *testing.T, r *Router, method, host, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	addr, ok := doServers.Load(r)
	if !ok {
		addr, _ = serveFrom(t, r, "10.1.2.3:5555")
		doServers.Store(r, addr)
		t.Cleanup(func() { doServers.Delete(r) })
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr.(string)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return send(t, req)
}

// send sends req on a connection of its own and records the answer.
func send(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	rec := httptest.NewRecorder()
	for k, v := range resp.Header {
		rec.Header()[k] = v
	}
	rec.WriteHeader(resp.StatusCode)
	io.Copy(rec, resp.Body)
	return rec
}

// doAs sends req (made with httptest.NewRequest) through a server of its
// own from client remote, and stops that server before it returns, so
// the request's access line has been emitted.
func doAs(t *testing.T, r *Router, remote string, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	addr, stop := serveFrom(t, r, remote)
	defer stop()
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "http", addr
	return send(t, req)
}

type sink struct {
	mu  sync.Mutex
	got []pando.LogEnvelope
}

func (s *sink) Emit(e pando.LogEnvelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, e)
}

func TestRouter_roundRobinsAcrossBackendsOfAHost(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i0", Index: 0, Addr: a.addr()}, {InstanceGUID: "i1", Index: 1, Addr: b.addr()}})
	seen := map[string]int{}
	var prev string
	for i := range 6 {
		rec := do(t, r, "GET", "MyApp.LocalHost:8080", "/", "")
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		got := rec.Body.String()
		if i > 0 && got == prev {
			t.Errorf("request %d went to %s again", i, got)
		}
		prev = got
		seen[got]++
	}
	if seen["a"] != 3 || seen["b"] != 3 {
		t.Errorf("distribution %v", seen)
	}
}

func TestRouter_unknownHostIs404WithGorouterBody(t *testing.T) {
	r := New(Config{})
	rec := do(t, r, "GET", "nope.localhost:8080", "/", "")
	if rec.Code != 404 {
		t.Fatalf("status %d", rec.Code)
	}
	if got, want := rec.Body.String(), "404 Not Found: Requested route ('nope.localhost') does not exist.\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if rec.Header().Get("X-Cf-Routererror") != "unknown_route" {
		t.Errorf("headers %v", rec.Header())
	}
}

func TestRouter_routeWithoutBackendsIs503(t *testing.T) {
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	rec := do(t, r, "GET", "myapp.localhost", "/", "")
	if rec.Code != 503 || rec.Header().Get("X-Cf-Routererror") != "no_endpoints" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	if got, want := rec.Body.String(), "503 Service Unavailable: Requested route ('myapp.localhost') has no available endpoints.\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestRouter_allBackendsDeadIs502(t *testing.T) {
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i0", Addr: deadAddr(t)}, {InstanceGUID: "i1", Index: 1, Addr: deadAddr(t)}})
	rec := do(t, r, "GET", "myapp.localhost", "/", "")
	if rec.Code != 502 || rec.Header().Get("X-Cf-Routererror") != "endpoint_failure" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	if !strings.HasPrefix(rec.Body.String(), "502 Bad Gateway") {
		t.Errorf("body %q", rec.Body.String())
	}
}

func TestRouter_retriesOnALiveBackendWhenOneIsDead(t *testing.T) {
	live := newBackend(t, "live")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "dead", Addr: deadAddr(t)}, {InstanceGUID: "live", Index: 1, Addr: live.addr()}})
	for i := range 4 {
		rec := do(t, r, "GET", "myapp.localhost", "/", "")
		if rec.Code != 200 || rec.Body.String() != "live" {
			t.Fatalf("GET %d: status %d body %q", i, rec.Code, rec.Body)
		}
	}
	// A POST that never reached the dead backend is safe to resend, body
	// and all.
	for i := range 2 {
		rec := do(t, r, "POST", "myapp.localhost", "/", "payload")
		if rec.Code != 200 {
			t.Fatalf("POST %d: status %d body %q", i, rec.Code, rec.Body)
		}
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.body != "payload" {
		t.Errorf("backend got body %q", live.body)
	}
}

func TestRouter_doesNotResendAPostTheBackendReceived(t *testing.T) {
	var crashHits atomic.Int64
	crash := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		crashHits.Add(1)
		io.ReadAll(r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // dies mid-request
		}
	}))
	defer crash.Close()
	other := newBackend(t, "other")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "c", Addr: crash.Listener.Addr().String()}})
	rec := do(t, r, "POST", "myapp.localhost", "/", "payload")
	if rec.Code != 502 {
		t.Fatalf("status %d", rec.Code)
	}
	// With a second backend, the GET is retried there, the POST is not.
	r.SetBackends("proc", []Backend{{InstanceGUID: "c", Addr: crash.Listener.Addr().String()}, {InstanceGUID: "o", Index: 1, Addr: other.addr()}})
	var posts502 int
	for range 4 {
		if rec := do(t, r, "POST", "myapp.localhost", "/", "payload"); rec.Code == 502 {
			posts502++
		}
		if rec := do(t, r, "GET", "myapp.localhost", "/", ""); rec.Code != 200 {
			t.Errorf("GET: status %d", rec.Code)
		}
	}
	if posts502 == 0 {
		t.Error("every POST that hit the crashing backend was resent elsewhere")
	}
}

func TestRouter_longestPathPrefixWins(t *testing.T) {
	root, sub := newBackend(t, "root"), newBackend(t, "sub")
	r := New(Config{})
	r.SetRoutes("p-root", "app-root", []string{"www.localhost"})
	r.SetBackends("p-root", []Backend{{InstanceGUID: "r", Addr: root.addr()}})
	r.SetRoutes("p-sub", "app-sub", []string{"www.localhost/myapp"})
	r.SetBackends("p-sub", []Backend{{InstanceGUID: "s", Addr: sub.addr()}})
	for path, want := range map[string]string{
		"/":          "root",
		"/myapp":     "sub",
		"/MyApp/x/y": "sub",
		"/myapp?q=1": "sub",
		"/myappx":    "root",
		"/other":     "root",
	} {
		if got := do(t, r, "GET", "www.localhost", path, "").Body.String(); got != want {
			t.Errorf("%s went to %q, want %q", path, got, want)
		}
	}
	// Without the root route, paths outside /myapp are unknown.
	r.RemoveProcess("p-root")
	if rec := do(t, r, "GET", "www.localhost", "/other", ""); rec.Code != 404 {
		t.Errorf("after removal: status %d", rec.Code)
	}
}

func TestRouter_routeRemoval(t *testing.T) {
	a := newBackend(t, "a")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"one.localhost", "two.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	if rec := do(t, r, "GET", "two.localhost", "/", ""); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	r.SetRoutes("proc", "app", []string{"one.localhost"})
	if rec := do(t, r, "GET", "two.localhost", "/", ""); rec.Code != 404 {
		t.Errorf("unmapped route: status %d", rec.Code)
	}
	if rec := do(t, r, "GET", "one.localhost", "/", ""); rec.Code != 200 {
		t.Errorf("kept route: status %d", rec.Code)
	}
	r.SetBackends("proc", nil)
	if rec := do(t, r, "GET", "one.localhost", "/", ""); rec.Code != 503 {
		t.Errorf("no backends: status %d", rec.Code)
	}
	r.RemoveProcess("proc")
	if rec := do(t, r, "GET", "one.localhost", "/", ""); rec.Code != 404 {
		t.Errorf("removed process: status %d", rec.Code)
	}
}

func TestRouter_sharedRouteBalancesAcrossProcesses(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	r := New(Config{})
	r.SetRoutes("pa", "app-a", []string{"shared.localhost"})
	r.SetRoutes("pb", "app-b", []string{"shared.localhost"})
	r.SetBackends("pa", []Backend{{InstanceGUID: "a", Addr: a.addr()}})
	r.SetBackends("pb", []Backend{{InstanceGUID: "b", Addr: b.addr()}})
	seen := map[string]bool{}
	for range 4 {
		seen[do(t, r, "GET", "shared.localhost", "/", "").Body.String()] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("seen %v", seen)
	}
}

func TestRouter_setsForwardingHeadersAndLogsRTR(t *testing.T) {
	a := newBackend(t, "a")
	logs := &sink{}
	r := New(Config{LogSink: logs})
	r.SetRoutes("proc", "app-guid", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "inst", Index: 2, Addr: a.addr()}})
	req := httptest.NewRequest("GET", "http://myapp.localhost:8080/path?q=1", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.1") // a stranger's claim: replaced
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("User-Agent", "curl/8")
	rec := doAs(t, r, "10.1.2.3:5555", req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	a.mu.Lock()
	got := a.last
	a.mu.Unlock()
	h := got.Header
	checks := map[string]string{
		"X-Forwarded-For":    "10.1.2.3",
		"X-Forwarded-Proto":  "http",
		"X-Forwarded-Host":   "myapp.localhost:8080",
		"X-Cf-Applicationid": "app-guid",
		"X-Cf-Instanceid":    "inst",
		"X-Cf-Instanceindex": "2",
	}
	for k, want := range checks {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if got.Host != "myapp.localhost:8080" || got.URL.RequestURI() != "/path?q=1" {
		t.Errorf("host %q uri %q", got.Host, got.URL.RequestURI())
	}
	reqID := h.Get("X-Vcap-Request-Id")
	if len(reqID) != 36 {
		t.Errorf("X-Vcap-Request-Id %q", reqID)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.got) != 1 {
		t.Fatalf("RTR lines: %v", logs.got)
	}
	e := logs.got[0]
	line := string(e.Payload)
	if e.SourceID != "app-guid" || e.SourceType != "RTR" || e.InstanceID != "2" || e.Type != "OUT" {
		t.Errorf("envelope %+v", e)
	}
	for _, want := range []string{`myapp.localhost - [`, `"GET /path?q=1 HTTP/1.1" 200 0 1`, `"curl/8"`, `vcap_request_id:"` + reqID + `"`, `app_index:"2"`} {
		if !strings.Contains(line, want) {
			t.Errorf("RTR line %q lacks %q", line, want)
		}
	}
}

func TestRouter_passesUpgradesThrough(t *testing.T) {
	// A minimal upgrade-speaking backend: switches protocols, then echoes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	}()
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"ws.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: ln.Addr().String()}})
	c, err := net.Dial("tcp", serve(t, r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	io.WriteString(c, "ping\n")
	l, err := br.ReadString('\n')
	if err != nil || l != "ping\n" {
		t.Errorf("echo %q, %v", l, err)
	}
}

func TestRouter_serveShutsDownGracefully(t *testing.T) {
	a := newBackend(t, "a")
	r := New(Config{ShutdownTimeout: 2 * time.Second})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Host = "myapp.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "a" {
		t.Errorf("body %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepting after shutdown")
	}
}

func TestRouter_trustsForwardedHeadersOnlyFromConfiguredProxies(t *testing.T) {
	a := newBackend(t, "a")
	r := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	for _, tc := range []struct{ remote, wantFor, wantProto string }{
		{"10.1.2.3:5555", "192.0.2.1, 10.1.2.3", "https"}, // the load balancer
		{"192.0.2.77:5555", "192.0.2.77", "http"},         // anyone else
	} {
		req := httptest.NewRequest("GET", "http://myapp.localhost/", nil)
		req.Header.Set("X-Forwarded-For", "192.0.2.1")
		req.Header.Set("X-Forwarded-Proto", "https")
		doAs(t, r, tc.remote, req)
		a.mu.Lock()
		h := a.last.Header
		a.mu.Unlock()
		if h.Get("X-Forwarded-For") != tc.wantFor || h.Get("X-Forwarded-Proto") != tc.wantProto {
			t.Errorf("from %s: X-Forwarded-For %q Proto %q, want %q %q", tc.remote,
				h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), tc.wantFor, tc.wantProto)
		}
	}
}
