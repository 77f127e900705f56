package router

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A malformed request gets a 400 that says why, and the connection is
// closed; a smuggling attempt never reaches the instance.
func TestRouter_answersMalformedRequests400AndCloses(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{}, "myapp.localhost", a.addr())
	for _, raw := range []string{
		"POST / HTTP/1.1\r\nHost: myapp.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: myapp.localhost\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: myapp.localhost\r\nX: a\r\n b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: myapp.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		out, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("%q: connection not closed: %v", raw, err)
		}
		if strings.Contains(raw, "zz") {
			// A bad chunk size is found while the body is sent on: the
			// instance never gets a whole request and the client no 200.
			if strings.HasPrefix(string(out), "HTTP/1.1 200") {
				t.Errorf("%q: answered %q", raw, out)
			}
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil || resp.StatusCode != 400 || !resp.Close {
			t.Fatalf("%q: answer %q (%v)", raw, out, err)
		}
		if n := a.hits.Load(); n != 0 {
			t.Fatalf("the instance answered a malformed request (%d)", n)
		}
	}
}

// Requests sent ahead on one connection (pipelined) are all answered, in
// order; so are HTTP/1.0 clients.
func TestRouter_pipelinedAndHTTP10Requests(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{}, "myapp.localhost", a.addr())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: myapp.localhost\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: myapp.localhost\r\nContent-Length: 3\r\n\r\nabc"+
		"GET /3 HTTP/1.1\r\nHost: nope.localhost\r\n\r\n"+
		"POST /4 HTTP/1.1\r\nHost: nope.localhost\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /5 HTTP/1.1\r\nHost: myapp.localhost\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for i, want := range []int{200, 200, 404, 404, 200} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != want {
			t.Errorf("answer %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close: %v, want EOF", err)
	}

	c10, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c10.Close()
	c10.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c10, "GET / HTTP/1.0\r\nHost: myapp.localhost\r\n\r\n")
	out, err := io.ReadAll(c10)
	if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 200") || !strings.HasSuffix(string(out), "\r\n\r\na") {
		t.Errorf("HTTP/1.0: %q, %v", out, err)
	}
}

// A shutdown that outlasts ShutdownTimeout ends exchanges still waiting
// for an instance that never answers, and Serve returns.
func TestRouter_shutdownEndsExchangesWaitingOnAnInstance(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // holds it, never answers
		}
	}()
	r := New(Config{ShutdownTimeout: 200 * time.Millisecond})
	r.SetRoutes("proc", "app", []string{"hang.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: ln.Addr().String()}})
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, front) }()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: hang.localhost\r\n\r\n")
	select {
	case bc := <-accepted:
		defer bc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the instance")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still waits on an instance that never answers")
	}
}

// An answer whose end is the instance closing the connection reaches an
// HTTP/1.1 client chunked, and the client's connection is kept.
func TestRouter_closeDelimitedAnswerIsChunkedToTheClient(t *testing.T) {
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
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello, until the close")
			}()
		}
	}()
	addr := routed(t, Config{}, "old.localhost", ln.Addr().String())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, body := rawGet(t, c, br, "old.localhost")
		if resp.StatusCode != 200 || body != "hello, until the close" || len(resp.TransferEncoding) != 1 || resp.Close {
			t.Fatalf("answer %d: %d %q te %v close %v", i+1, resp.StatusCode, body, resp.TransferEncoding, resp.Close)
		}
	}
}
