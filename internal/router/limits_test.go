package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs r on a loopback listener until the test ends.
func serve(t testing.TB, r *Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// routed serves a router with cfg on loopback, host routed to the one
// backend at addr, and returns the router's address.
func routed(t testing.TB, cfg Config, host, addr string) string {
	t.Helper()
	r := New(cfg)
	r.SetRoutes("proc", "app", []string{host})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: addr}})
	return serve(t, r)
}

// rawGet sends a GET on c and reads the answer.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader, host string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestRouter_connectionsPastThePerClientCapGet503(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{MaxConns: 100, MaxConnsPerClient: 3}, "myapp.localhost", a.addr())

	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp, _ := rawGet(t, c, bufio.NewReader(c), "myapp.localhost"); resp.StatusCode != 200 {
			t.Fatalf("within the cap: status %d", resp.StatusCode)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	resp, body := rawGet(t, extra, bufio.NewReader(extra), "myapp.localhost")
	if resp.StatusCode != 503 || !strings.Contains(body, "too many connections from 127.0.0.1") {
		t.Fatalf("past the cap: %d %q", resp.StatusCode, body)
	}
	// Another loopback address is another client.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if resp, _ := rawGet(t, other, bufio.NewReader(other), "myapp.localhost"); resp.StatusCode != 200 {
		t.Fatalf("other client: status %d", resp.StatusCode)
	}
	// A closed connection gives its slot back.
	held[0].Close()
	eventually(t, 5*time.Second, "slot given back", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		resp, _ := rawGet(t, c, bufio.NewReader(c), "myapp.localhost")
		return resp.StatusCode == 200
	})
}

func TestRouter_requestsPastThePerAppCapGet503(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := newHandlerBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	}))
	addr := routed(t, Config{MaxRequestsPerApp: 2}, "slow.localhost", slow)

	results := make(chan int, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = "slow.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	<-entered
	<-entered
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "slow.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Cf-Routererror") != "too_many_requests" {
		t.Fatalf("third request: %d %q", resp.StatusCode, body)
	}
	close(release)
	for range 2 {
		if code := <-results; code != 200 {
			t.Errorf("held request: status %d", code)
		}
	}
}

// newHandlerBackend serves h on loopback and returns its address.
func newHandlerBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestRouter_stalledRequestBodyIsCutOff(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{BodyTimeout: 200 * time.Millisecond}, "myapp.localhost", a.addr())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	// One byte of a 100-byte body, then nothing.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: myapp.localhost\r\nContent-Length: 100\r\n\r\nx")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c) // the router answers (or not) and closes
	if err != nil {
		t.Fatalf("connection not closed by the router: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stalled body held the connection %s", took)
	}
	if strings.HasPrefix(string(answer), "HTTP/1.1 200") {
		t.Errorf("a request whose body never arrived was answered %q", answer)
	}
}

func TestRouter_websocketAfterKeepAliveRequestAndIdleTimeout(t *testing.T) {
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
					if req.Header.Get("Upgrade") == "" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
						continue
					}
					io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
					io.Copy(c, br)
					return
				}
			}()
		}
	}()
	addr := routed(t, Config{WriteTimeout: 100 * time.Millisecond, TunnelIdleTimeout: 600 * time.Millisecond}, "ws.localhost", ln.Addr().String())

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if resp, body := rawGet(t, c, br, "ws.localhost"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("plain request: %d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if l, err := br.ReadString('\n'); err != nil || l != "early\n" {
		t.Fatalf("bytes sent with the upgrade: %q, %v", l, err)
	}
	// Outlive the write timeout of the earlier request: the tunnel has none.
	time.Sleep(300 * time.Millisecond) // lets a stale deadline expire; not a wait for state
	io.WriteString(c, "ping\n")
	if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
		t.Fatalf("echo after a pause: %q, %v", l, err)
	}
	// Quiet both ways past the tunnel's idle timeout: closed.
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel sent data while idle")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("idle tunnel closed after %s", took)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRouter_reusesBackendConnectionsAndSurvivesTheirClose: keep-alive
// connections to a backend are reused (HEAD and 204 included); when the
// backend closes an idle one, the next request, a POST with a body, still
// goes through.
func TestRouter_reusesBackendConnectionsAndSurvivesTheirClose(t *testing.T) {
	var conns, closed atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.URL.Path == "/empty" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			io.WriteString(w, "got:"+string(body))
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				conns.Add(1)
			case http.StateClosed:
				closed.Add(1)
			}
		},
		IdleTimeout: 300 * time.Millisecond,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := routed(t, Config{}, "ka.localhost", ln.Addr().String())
	client := &http.Client{}
	send := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Host = "ka.localhost"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for range 3 {
		send("GET", "/", "")
		send("HEAD", "/", "")
		send("GET", "/empty", "")
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("nine sequential requests used %d backend connections, want 1", n)
	}
	// The backend closes the idle connection; then POST.
	eventually(t, 10*time.Second, "the backend closed its idle connection", func() bool { return closed.Load() == 1 })
	if code, body := send("POST", "/", "payload"); code != 200 || body != "got:payload" {
		t.Fatalf("POST after the backend closed the idle connection: %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("backend connections %d after its idle close, want 2: the close was not exercised", n)
	}
	// A GET on a connection the backend closed is sent again on a new one.
	eventually(t, 10*time.Second, "the backend closed its second idle connection", func() bool { return closed.Load() == 2 })
	if code, body := send("GET", "/", ""); code != 200 || body != "got:" {
		t.Fatalf("GET after the backend closed the idle connection: %d %q", code, body)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("backend connections %d after its second idle close, want 3", n)
	}
}
