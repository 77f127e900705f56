package router

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// waitLargeHeads polls until r holds want large-head slots.
func waitLargeHeads(t *testing.T, r *Router, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.heads.n.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("large-head slots held: %d, want %d", r.heads.n.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Heads past 16 KiB are read only maxLargeHeads at a time, router-wide:
// a stranger trickling 1 MiB heads on thousands of connections would
// otherwise make the router hold GiBs. Past the bound a large head gets an
// immediate 503 that says why, small heads are served as ever, and the
// slots come back when the heads' requests end.
func TestRouter_largeHeadsPastTheirBoundGet503AndSmallOnesPass(t *testing.T) {
	a := newBackend(t, "a")
	// Loopback addresses 127.0.1.x stand for many clients, so the
	// per-client connection cap is not what refuses them.
	r := New(Config{MaxConns: 1000, MaxConnsPerClient: 100})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	addr := serve(t, r)

	big := "X-Big: " + strings.Repeat("b", smallHeadBytes+1024) + "\r\n"
	dial := func(i int) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%200))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for i := range maxLargeHeads {
		c := dial(i)
		// The head never ends: its slot stays taken.
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: myapp.localhost\r\n%s", big); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitLargeHeads(t, r, maxLargeHeads)

	c := dial(maxLargeHeads)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: myapp.localhost\r\n%s\r\n", big)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a large head past the bound: %v", err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 503 || !strings.Contains(body, "too many large request heads") {
		t.Fatalf("a large head past the bound: %d %q", resp.StatusCode, body)
	}

	small := dial(maxLargeHeads + 1)
	if resp, body := rawGet(t, small, bufio.NewReader(small), "myapp.localhost"); resp.StatusCode != 200 || body != "a" {
		t.Fatalf("a small head while large ones are held: %d %q", resp.StatusCode, body)
	}

	for _, c := range held {
		c.Close()
	}
	waitLargeHeads(t, r, 0)

	// A large head served on a kept-alive connection gives its slot
	// back when its request ends, not when the connection does.
	c = dial(maxLargeHeads + 2)
	br := bufio.NewReader(c)
	for range 2 {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: myapp.localhost\r\n%s\r\n", big)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "a" {
			t.Fatalf("a large head within the bound: %d %q", resp.StatusCode, body)
		}
	}
	waitLargeHeads(t, r, 0)
}

// An instance's large response head is relayed, and takes its slot only
// while it is read.
func TestRouter_largeResponseHeadIsRelayedAndGivesItsSlotBack(t *testing.T) {
	value := strings.Repeat("r", smallHeadBytes+1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", value)
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"myapp.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: srv.Listener.Addr().String()}})
	addr := serve(t, r)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, body := rawGet(t, c, bufio.NewReader(c), "myapp.localhost")
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Big") != value {
		t.Fatalf("large response head: %d %q, X-Big of %d bytes", resp.StatusCode, body, len(resp.Header.Get("X-Big")))
	}
	waitLargeHeads(t, r, 0)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A websocket whose upgrade request had a large head gives its slot back
// once the tunnel is open (the head is dropped then): otherwise
// maxLargeHeads long-lived websockets to any app would have every large
// head router-wide refused for as long as they stay open.
func TestRouter_tunnelGivesItsLargeHeadSlotBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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
		fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_, _ = br.WriteTo(c)
	}()
	r := New(Config{})
	r.SetRoutes("proc", "app", []string{"ws.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: ln.Addr().String()}})
	c, err := net.Dial("tcp", serve(t, r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	big := "X-Big: " + strings.Repeat("b", smallHeadBytes+1024) + "\r\n"
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n%s\r\n", big)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(c, "ping\n")
	if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
		t.Fatalf("echo %q, %v", l, err)
	}
	// The tunnel is open and stays so: its slot is back.
	waitLargeHeads(t, r, 0)
}
