package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/certs"
)

// systemRouter serves h on the system hosts of sys.test and routes
// myapp.apps.test to a backend answering "app".
func systemRouter(t *testing.T, h http.HandlerFunc) *Router {
	t.Helper()
	a := newBackend(t, "app")
	r := New(Config{System: &SystemRoutes{Domain: "sys.test", Handler: h}})
	r.SetRoutes("proc", "app", []string{"myapp.apps.test"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: a.addr()}})
	return r
}

func TestRouter_systemAnswersKeepTheConnectionAndItsNextRequestIsRouted(t *testing.T) {
	r := systemRouter(t, func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/small":
			io.WriteString(w, `{"ok":true}`)
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("x", 3*sysBufSize))
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/echo":
			b, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			fmt.Fprintf(w, "%s %d %s", req.Method, req.ContentLength, b)
		}
	})
	c, err := net.Dial("tcp", serve(t, r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	send := func(req string) (*http.Response, string) {
		t.Helper()
		io.WriteString(c, req)
		method, _, _ := strings.Cut(req, " ")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("after %q: %v", req, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("body after %q: %v", req, err)
		}
		return resp, string(b)
	}
	resp, body := send("GET /small HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	if body != `{"ok":true}` || resp.ContentLength != int64(len(body)) || resp.Header.Get("Date") == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("small answer: %d len %d %v %q", resp.StatusCode, resp.ContentLength, resp.Header, body)
	}
	resp, body = send("GET /big HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	if len(body) != 3*sysBufSize || resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 {
		t.Errorf("big answer: len %d, Content-Length %d, TE %v", len(body), resp.ContentLength, resp.TransferEncoding)
	}
	resp, _ = send("HEAD /small HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(`{"ok":true}`)) {
		t.Errorf("HEAD: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	if resp, _ = send("GET /none HTTP/1.1\r\nHost: api.sys.test\r\n\r\n"); resp.StatusCode != 204 {
		t.Errorf("204: %d", resp.StatusCode)
	}
	if _, body = send("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"); body != "POST 5 hello" {
		t.Errorf("posted body: %q", body)
	}
	if _, body = send("PUT /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"); body != "PUT -1 abcde" {
		t.Errorf("chunked body: %q", body)
	}
	// An unread body is dropped and the connection goes on.
	if _, body = send("POST /small HTTP/1.1\r\nHost: api.sys.test\r\nContent-Length: 4\r\n\r\nabcd"); body != `{"ok":true}` {
		t.Errorf("answer to an unread body: %q", body)
	}
	// The same connection, now to an app.
	if resp, body = send("GET / HTTP/1.1\r\nHost: myapp.apps.test\r\n\r\n"); resp.StatusCode != 200 || body != "app" {
		t.Errorf("app request after system ones: %d %q", resp.StatusCode, body)
	}
	// And back.
	if _, body = send("GET /small HTTP/1.0\r\nHost: api.sys.test\r\n\r\n"); body != `{"ok":true}` {
		t.Errorf("HTTP/1.0 system request: %q", body)
	}
}

func TestRouter_systemHandlerFlushesDeadlinesAndTLSState(t *testing.T) {
	type seen struct {
		tls           bool
		sni, remote   string
		deadlineErr   error
		readDeadlineE error
	}
	got := make(chan seen, 1)
	release := make(chan struct{})
	r := systemRouter(t, func(w http.ResponseWriter, req *http.Request) {
		rc := http.NewResponseController(w)
		s := seen{tls: req.TLS != nil, remote: req.RemoteAddr}
		if req.TLS != nil {
			s.sni = req.TLS.ServerName
		}
		s.deadlineErr = rc.SetWriteDeadline(time.Time{})
		s.readDeadlineE = rc.SetReadDeadline(time.Now().Add(time.Minute))
		got <- s
		io.WriteString(w, "first\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		<-release
		io.WriteString(w, "second\n")
	})
	addr, roots := serveTLS(t, r)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "api.sys.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The flushed part arrives while the handler still runs.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	if err != nil || line != "first\n" {
		t.Fatalf("flushed part: %q, %v", line, err)
	}
	s := <-got
	if !s.tls || s.sni != "api.sys.test" {
		t.Errorf("request TLS state: %v, server name %q", s.tls, s.sni)
	}
	if host, _, _ := net.SplitHostPort(s.remote); host != "127.0.0.1" {
		t.Errorf("RemoteAddr %q", s.remote)
	}
	if s.deadlineErr != nil || s.readDeadlineE != nil {
		t.Errorf("ResponseController deadlines: %v, %v", s.deadlineErr, s.readDeadlineE)
	}
}

func TestRouter_systemHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	r := systemRouter(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/panic" {
			panic("boom")
		}
		io.WriteString(w, "fine")
	})
	addr := serve(t, r)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("a panicking handler's connection got %q", b)
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatalf("after a panic: %v", err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "fine" {
		t.Errorf("after a panic: %q", b)
	}
}

func TestRouter_systemExpectContinueGetsItsGoAhead(t *testing.T) {
	r := systemRouter(t, func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.Write(b)
	})
	c, err := net.Dial("tcp", serve(t, r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: api.sys.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q, %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "abc")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "abc" {
		t.Errorf("body: %q", b)
	}
}

func TestRouter_shutdownEndsBothListenersAndSystemStreams(t *testing.T) {
	streaming := make(chan struct{})
	r := New(Config{ShutdownTimeout: 200 * time.Millisecond, System: &SystemRoutes{Domain: "sys.test",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			io.WriteString(w, "open\n")
			http.NewResponseController(w).Flush()
			close(streaming)
			<-req.Context().Done() // a log stream waits for news or its end
		})}})
	cert, _, err := certs.SelfSigned(t.TempDir(), certs.Names{DNS: []string{"log-cache.sys.test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan string, 2)
	go func() { r.Serve(ctx, plainLn); ended <- "http" }()
	go func() { r.ServeTLS(ctx, tlsLn, certs.ServerConfig(cert)); ended <- "https" }()

	c, err := tls.Dial("tcp", tlsLn.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: log-cache.sys.test\r\n\r\n")
	<-streaming
	cancel()
	for range 2 {
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("a listener's Serve did not end within 5 s of its context (shutdown timeout 200 ms)")
		}
	}
	// The stream's connection was ended, not left open.
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("the stream's connection: %v", err)
	}
	if _, err := net.DialTimeout("tcp", plainLn.Addr().String(), time.Second); err == nil {
		t.Error("the plain listener still accepts after shutdown")
	}
}

// A system request's context ends when its client hangs up mid-answer (a
// long poll stops waiting for nobody), over HTTP and HTTPS; a client that
// pipelines its next request behind a long poll is not taken for gone.
func TestRouter_systemRequestEndsWhenItsClientHangsUp(t *testing.T) {
	ended := make(chan string, 4)
	polling := make(chan struct{}, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		wait := 30 * time.Second // longer than any test run waits
		if req.URL.Path == "/shortpoll" {
			wait = 300 * time.Millisecond
		}
		switch req.URL.Path {
		case "/poll", "/shortpoll":
			polling <- struct{}{}
			select {
			case <-req.Context().Done():
				ended <- "cancelled"
			case <-time.After(wait):
				ended <- "answered"
				io.WriteString(w, "news")
			}
		default:
			io.WriteString(w, "next")
		}
	})
	r := New(Config{System: &SystemRoutes{Domain: "sys.test", Handler: h}})
	cert, _, err := certs.SelfSigned(t.TempDir(), certs.Names{DNS: []string{"api.sys.test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { r.ServeTLS(ctx, tlsLn, certs.ServerConfig(cert)); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	plainAddr := serve(t, r)

	dials := map[string]func() (net.Conn, error){
		"http": func() (net.Conn, error) { return net.Dial("tcp", plainAddr) },
		"https": func() (net.Conn, error) {
			return tls.Dial("tcp", tlsLn.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "api.sys.test"})
		},
	}
	for name, dial := range dials {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /poll HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
		<-polling
		c.Close()
		select {
		case got := <-ended:
			if got != "cancelled" {
				t.Errorf("%s: the long poll %s to a client that had hung up", name, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the long poll neither ended nor answered", name)
		}
	}

	// Pipelined: the poll is answered, then the request behind it.
	c, err := net.Dial("tcp", plainAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /shortpoll HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	<-polling
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: api.sys.test\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"news", "next"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Errorf("pipelined answer %q, want %q", b, want)
		}
	}
	if got := <-ended; got != "answered" {
		t.Errorf("the pipelined client's poll was %s", got)
	}
}
