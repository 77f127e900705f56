package router

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRouter_streamsAnswersWithoutLengthAtOnce(t *testing.T) {
	next := make(chan struct{})
	backend := newHandlerBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-next // the second event only once the first has arrived
		io.WriteString(w, "data: two\n\n")
	}))
	addr := routed(t, Config{}, "sse.localhost", backend)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "sse.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() { l, _ := br.ReadString('\n'); got <- l }()
	select {
	case l := <-got:
		if l != "data: one\n" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		close(next)
		t.Fatal("the first event did not arrive before the stream went on")
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestRouter_dropsHopByHopHeadersBothWays(t *testing.T) {
	var seen http.Header
	backend := newHandlerBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-App", "kept")
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	}))
	addr := routed(t, Config{}, "hop.localhost", backend)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "hop.localhost"
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	req.Header.Set("X-End", "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "body" {
		t.Fatalf("body %q", body)
	}
	for _, k := range []string{"X-Hop", "Proxy-Authorization"} {
		if seen.Get(k) != "" {
			t.Errorf("backend got hop-by-hop %s", k)
		}
	}
	if seen.Get("X-End") != "2" || seen.Get("User-Agent") != "Go-http-client/1.1" {
		t.Errorf("end-to-end headers lost: %v", seen)
	}
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-App") != "kept" {
		t.Errorf("answer headers %v", resp.Header)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailer %v", resp.Trailer)
	}
}

func TestRouter_headAndEmptyAnswersKeepTheirHeaders(t *testing.T) {
	backend := newHandlerBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
		if r.Method == http.MethodHead {
			return
		}
		io.WriteString(w, strings.Repeat("x", 1234))
	}))
	addr := routed(t, Config{}, "head.localhost", backend)
	req, _ := http.NewRequest("HEAD", "http://"+addr+"/", nil)
	req.Host = "head.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 1234 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream": true, "Text/Event-Stream; charset=utf-8": true, " text/event-stream ": true,
		"text/event-streams": false, "text/html": false, "": false,
	} {
		if got := isEventStream(ct); got != want {
			t.Errorf("isEventStream(%q) = %v", ct, got)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"MyApp.LocalHost:8080": "myapp.localhost", "app.localhost.": "app.localhost", "[::1]:80": "::1", "[::1]": "[::1]", "x": "x",
	} {
		if got := canonicalHost(in); got != want {
			t.Errorf("canonicalHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRouter_forwardsBodiesOfUnknownLengthAndEmptyPosts(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{}, "body.localhost", a.addr())

	pr, pw := io.Pipe()
	go func() {
		for range 3 {
			io.WriteString(pw, "chunk;")
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+addr+"/up?x=1", pr) // no length: chunked
	req.Host = "body.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.mu.Lock()
	body, uri := a.body, a.last.URL.RequestURI()
	a.mu.Unlock()
	if resp.StatusCode != 200 || body != "chunk;chunk;chunk;" || uri != "/up?x=1" {
		t.Fatalf("chunked POST: %d, backend got %q at %q", resp.StatusCode, body, uri)
	}

	req, _ = http.NewRequest("POST", "http://"+addr+"/", http.NoBody)
	req.Host = "body.localhost"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.mu.Lock()
	cl := a.last.ContentLength
	a.mu.Unlock()
	if resp.StatusCode != 200 || cl != 0 {
		t.Fatalf("empty POST: %d, content length %d", resp.StatusCode, cl)
	}
}

func TestRouter_expectContinueUploadGoesThrough(t *testing.T) {
	a := newBackend(t, "a")
	addr := routed(t, Config{}, "exp.localhost", a.addr())
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	payload := strings.Repeat("y", 2<<20)
	req, _ := http.NewRequest("PUT", "http://"+addr+"/upload", strings.NewReader(payload))
	req.Host = "exp.localhost"
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.mu.Lock()
	got := len(a.body)
	a.mu.Unlock()
	if resp.StatusCode != 200 || got != len(payload) {
		t.Fatalf("status %d, backend got %d of %d bytes", resp.StatusCode, got, len(payload))
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the client waited %s: no 100 Continue came back", took)
	}
}
