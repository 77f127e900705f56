package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Regression tests from the review of the router's own proxy and client.

func upgradeThenCloseBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					c.Close()
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nbye\n")
				c.Close() // the instance goes away
			}()
		}
	}()
	return ln.Addr().String()
}

// When the instance closes an upgraded connection, the client should see EOF.
func TestRouter_instanceClosingATunnelReachesTheClient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxConns int
	}{{"no connlimit", -1}, {"default connlimit", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{MaxConns: tc.maxConns, MaxConnsPerClient: tc.maxConns, TunnelIdleTimeout: 20 * time.Second})
			r.SetRoutes("proc", "app", []string{"ws.localhost"})
			r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: upgradeThenCloseBackend(t)}})
			addr := serve(t, r)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("after the instance closed: got %q then %v (no EOF within 3s)", rest, err)
			}
		})
	}
}

// A POST without a body on a reused connection the backend closed after
// reading it (without answering) is sent a second time.
func TestRouter_bodylessPostIsNeverSentTwice(t *testing.T) {
	var posts atomic.Int64
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
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == "POST" {
						if posts.Add(1) == 1 {
							return // processed it, then died / closed without answering
						}
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: ln.Addr().String()}})
	if rec := do(t, r, "GET", "myapp.localhost", "/", ""); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	rec := do(t, r, "POST", "myapp.localhost", "/charge", "")
	if n := posts.Load(); n != 1 {
		t.Errorf("a bodyless POST reached the instance %d times (router answered %d)", n, rec.Code)
	}
}

// The RTR line's x_forwarded_for for a trusted proxy.
func TestRouter_accessLineHasTheForwardedChainOfATrustedProxy(t *testing.T) {
	a := newBackend(t, "a")
	s := &sink{}
	r := New(Config{LogSink: s, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	req := httptest.NewRequest("GET", "http://myapp.localhost/", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	doAs(t, r, "10.1.2.3:5555", req)
	line := string(s.got[0].Payload)
	if !strings.Contains(line, `x_forwarded_for:"192.0.2.1, 10.1.2.3"`) {
		t.Errorf("RTR line: %s", line)
	}
}

// An instance that answers before reading a large body (413, 401).
func TestRouter_earlyAnswerToALargeUploadIsRelayed(t *testing.T) {
	addr := newHandlerBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too big", http.StatusRequestEntityTooLarge)
	}))
	raddr := routed(t, Config{}, "up.localhost", addr)
	req, _ := http.NewRequest("POST", "http://"+raddr+"/", strings.NewReader(strings.Repeat("x", 20<<20)))
	req.Host = "up.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("status %d %q, want the instance's 413", resp.StatusCode, body)
	}
}

func echoUpgradeBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRouter_idleTunnelsHoldNoCopyBuffers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxConns int
	}{{"no connlimit", -1}, {"default connlimit", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{MaxConns: tc.maxConns, MaxConnsPerClient: tc.maxConns, MaxRequestsPerApp: tc.maxConns})
			r.SetRoutes("proc", "app", []string{"ws.localhost"})
			r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: echoUpgradeBackend(t)}})
			addr := serve(t, r)
			const n = 400
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapInuse
			for range n {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				br := bufio.NewReader(c)
				io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != 101 {
					t.Fatal(err)
				}
				io.WriteString(c, "x\n")
				br.ReadString('\n')
			}
			// The echo reaches the client just before the copy that
			// wrote it gives its buffer back and parks: poll until the
			// heap says every tunnel parked. A tunnel that holds a copy
			// buffer while idle holds it for good, and fails.
			var per int64
			for deadline := time.Now().Add(10 * time.Second); ; {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				per = (int64(ms.HeapInuse) - int64(before)) / n
				if per <= 26<<10 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: an idle tunnel holds %d bytes of heap: a copy buffer is held while idle", tc.name, per)
				}
				time.Sleep(10 * time.Millisecond) // polling, with a deadline
			}
			t.Logf("%s: heap per idle tunnel %d bytes", tc.name, per)
		})
	}
}

func TestRouter_noCapInAllMeansNoCapPerClientOrApp(t *testing.T) {
	r := New(Config{MaxConns: -1})
	t.Logf("MaxConns -1 -> MaxConnsPerClient %d, MaxRequestsPerApp %d", r.cfg.MaxConnsPerClient, r.cfg.MaxRequestsPerApp)
	if r.cfg.MaxConnsPerClient > 0 || r.cfg.MaxRequestsPerApp > 0 {
		t.Errorf("no limit in all became per-client %d, per-app %d", r.cfg.MaxConnsPerClient, r.cfg.MaxRequestsPerApp)
	}
}

// A body that trickles one byte per 0.6 x BodyTimeout is never cut off.
// TestRouter_tricklingBodyIsCutOff: a body that moves, but slower than
// BodyMinBytes per BodyTimeout, is cut off (slowloris).
func TestRouter_tricklingBodyIsCutOff(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{BodyTimeout: 300 * time.Millisecond, BodyMinBytes: 8}, "myapp.localhost", a.addr())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: myapp.localhost\r\nContent-Length: 15\r\n\r\n")
	for i := 0; i < 15; i++ {
		time.Sleep(180 * time.Millisecond) // one byte per 180 ms: moving, but under 8 bytes per 300 ms
		if _, err := io.WriteString(c, "x"); err != nil {
			return // cut off
		}
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil && resp.StatusCode == 200 {
		t.Errorf("a 15-byte body over 2.7s (8 bytes per 300ms required) was served: %d", resp.StatusCode)
	}
}

func TestRouter_clientCannotStripTheForwardedHeaders(t *testing.T) {
	a := newBackend(t, "a")
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	req := httptest.NewRequest("GET", "http://myapp.localhost/", nil)
	req.Header.Set("Connection", "X-Forwarded-For, X-Forwarded-Proto")
	doAs(t, r, "192.0.2.7:5555", req)
	a.mu.Lock()
	h := a.last.Header
	a.mu.Unlock()
	if h.Get("X-Forwarded-For") != "192.0.2.7" {
		t.Errorf("X-Forwarded-For %q, X-Forwarded-Proto %q after the client named them in Connection", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"))
	}
}
