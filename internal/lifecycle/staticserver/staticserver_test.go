package staticserver

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// site builds <tmp>/secret.txt (outside the root) and <tmp>/site (the root).
func site(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "site")
	files := map[string]string{
		"index.html":       "<h1>home</h1>",
		"app.js":           strings.Repeat("console.log('hello');\n", 100),
		"docs/index.html":  "<h1>docs</h1>",
		"assets/logo.txt":  "logo",
		".env":             "SECRET=1",
		"../secret.txt":    "top secret",
		"inner/target.txt": "inner target",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../secret.txt", filepath.Join(root, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(root, "abs-escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("inner/target.txt", filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	return root
}

func get(t *testing.T, cfg Config, target string, hdr ...string) *http.Response {
	t.Helper()
	h, c, err := Handler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil)
	r.URL.Path = target // set after parsing so ".." reaches the handler untouched
	r.URL.RawPath = ""
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandler_paths(t *testing.T) {
	root := site(t)
	tests := []struct {
		name   string
		cfg    Config
		path   string
		status int
		body   string // substring
	}{
		{"root index", Config{}, "/", 200, "<h1>home</h1>"},
		{"file", Config{}, "/assets/logo.txt", 200, "logo"},
		{"directory index", Config{}, "/docs/", 200, "<h1>docs</h1>"},
		{"unknown path", Config{}, "/nope.html", 404, "404"},
		{"dot dot escape", Config{}, "/../secret.txt", 404, ""},
		{"nested dot dot escape", Config{}, "/docs/../../secret.txt", 404, ""},
		{"dot dot inside root", Config{}, "/docs/../assets/logo.txt", 404, ""},
		{"symlink out of root", Config{}, "/escape.txt", 404, ""},
		{"absolute symlink out of root", Config{}, "/abs-escape.txt", 404, ""},
		{"symlink within root", Config{}, "/link.txt", 200, "inner target"},
		{"hidden file", Config{}, "/.env", 404, ""},
		{"hidden file allowed", Config{DotFiles: true}, "/.env", 200, "SECRET=1"},
		{"dir without index", Config{}, "/assets/", 403, ""},
		{"dir listing", Config{DirectoryListing: true}, "/assets/", 200, `<a href="logo.txt">logo.txt</a>`},
		{"pushstate unknown route", Config{Pushstate: true}, "/users/42", 200, "<h1>home</h1>"},
		{"pushstate keeps files", Config{Pushstate: true}, "/assets/logo.txt", 200, "logo"},
		{"pushstate dir without index", Config{Pushstate: true}, "/assets/", 200, "<h1>home</h1>"},
		{"file with trailing slash", Config{}, "/assets/logo.txt/", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Root = root
			res := get(t, tt.cfg, tt.path)
			b := body(t, res)
			if res.StatusCode != tt.status || !strings.Contains(b, tt.body) {
				t.Fatalf("GET %s = %d %q, want %d containing %q", tt.path, res.StatusCode, b, tt.status, tt.body)
			}
			if strings.Contains(b, "top secret") {
				t.Fatal("served a file outside the root")
			}
		})
	}
}

func TestHandler_headers(t *testing.T) {
	root := site(t)
	res := get(t, Config{Root: root}, "/index.html")
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Last-Modified") == "" {
		t.Fatalf("headers = %v", res.Header)
	}
	res = get(t, Config{Root: root}, "/docs")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/docs/" {
		t.Fatalf("GET /docs = %d Location %q, want 301 /docs/", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestHandler_gzip(t *testing.T) {
	root := site(t)
	res := get(t, Config{Root: root, Gzip: true}, "/app.js", "Accept-Encoding", "gzip, deflate")
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Content-Length") != "" {
		t.Fatalf("headers = %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || string(b) != strings.Repeat("console.log('hello');\n", 100) {
		t.Fatalf("decompressed body wrong: %v", err)
	}
	res = get(t, Config{Root: root, Gzip: true}, "/app.js", "Accept-Encoding", "gzip;q=0")
	if res.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip sent to a client that refused it")
	}
}

func TestServe_logsAndShutsDownGracefully(t *testing.T) {
	root := site(t)
	h, c, err := Handler(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- serveListener(ctx, ln, h, pw); pw.Close() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no output line")
			return ""
		}
	}
	if l := next(); !strings.Contains(l, "listening on") {
		t.Fatalf("first line = %q", l)
	}
	res, err := http.Get("http://" + ln.Addr().String() + "/docs/?x=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if l := next(); !strings.Contains(l, `"GET /docs/?x=1 HTTP/1.1" 200 13`) {
		t.Fatalf("access log = %q", l)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still listening after shutdown")
	}
}

func TestCommand_rejectsBadPort(t *testing.T) {
	cmd := NewCommand()
	cmd.SetArgs([]string{"--root", t.TempDir(), "--port", "http"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "invalid port") {
		t.Fatalf("err = %v", err)
	}
}
