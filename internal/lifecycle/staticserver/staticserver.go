// Package staticserver is `pando static-serve`, the web process of apps staged
// by the builtin staticfile_buildpack: it serves one directory over HTTP the
// way CF's nginx-based staticfile buildpack does (index.html for directories,
// optional pushstate and directory listing, hidden files refused), without
// ever reading outside that directory.
package staticserver

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is the static-serve flags.
type Config struct {
	Root             string
	Addr             string // listen address, e.g. ":8080"
	Pushstate        bool   // serve /index.html for paths that do not exist
	DirectoryListing bool   // list directories without an index.html (else 403)
	DotFiles         bool   // serve files and directories whose name starts with "."
	Gzip             bool   // compress text responses for clients that accept gzip
}

// Handler serves cfg.Root. Paths are resolved inside an os.Root, so neither
// "..", absolute paths nor symlinks can reach files outside it. Close the
// returned closer when done.
func Handler(cfg Config) (http.Handler, io.Closer, error) {
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, nil, fmt.Errorf("static-serve root: %w", err)
	}
	return &handler{cfg: cfg, root: root}, root, nil
}

type handler struct {
	cfg  Config
	root *os.Root
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	if strings.ContainsRune(upath, 0) || strings.Contains(upath, "\\") {
		http.NotFound(w, r)
		return
	}
	// Any ".." component is refused outright rather than cleaned away, as a
	// request for it is never a legitimate link.
	for _, seg := range strings.Split(upath, "/") {
		if seg == ".." {
			http.NotFound(w, r)
			return
		}
	}
	clean := path.Clean(upath)
	if !h.cfg.DotFiles && hasDotSegment(clean) {
		http.NotFound(w, r)
		return
	}
	status := h.serve(w, r, clean, strings.HasSuffix(upath, "/"))
	if status == http.StatusNotFound && h.cfg.Pushstate {
		status = h.serve(w, r, "/index.html", false)
	}
	switch status {
	case 0:
	case http.StatusNotFound:
		http.Error(w, "404 not found", http.StatusNotFound)
	case http.StatusForbidden:
		http.Error(w, "403 forbidden", http.StatusForbidden)
	default:
		http.Error(w, http.StatusText(status), status)
	}
}

// serve writes the response for clean and returns 0, or returns the error
// status without writing anything so the caller can fall back.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, clean string, slash bool) int {
	name := strings.TrimPrefix(clean, "/")
	if name == "" {
		name = "."
	}
	f, err := h.root.Open(name)
	if err != nil {
		return errStatus(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return errStatus(err)
	}
	if fi.IsDir() {
		if !slash && clean != "/" {
			// Like nginx: a directory is addressed with a trailing slash,
			// so relative links in its index.html resolve inside it.
			target := clean + "/"
			http.Redirect(w, r, (&url.URL{Path: target}).EscapedPath()+queryPart(r), http.StatusMovedPermanently)
			return 0
		}
		idx, err := h.root.Open(path.Join(name, "index.html"))
		if err == nil {
			defer idx.Close()
			if ifi, err := idx.Stat(); err == nil && ifi.Mode().IsRegular() {
				h.sendFile(w, r, idx, ifi, "index.html")
				return 0
			}
		}
		if !h.cfg.DirectoryListing {
			if h.cfg.Pushstate {
				return http.StatusNotFound
			}
			return http.StatusForbidden
		}
		h.listDir(w, r, f, clean)
		return 0
	}
	if !fi.Mode().IsRegular() {
		return http.StatusNotFound
	}
	if slash {
		return http.StatusNotFound // "/file.txt/" names no directory
	}
	h.sendFile(w, r, f, fi, fi.Name())
	return 0
}

func queryPart(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

func (h *handler) sendFile(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo, name string) {
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	if h.cfg.Gzip && r.Method == http.MethodGet && r.Header.Get("Range") == "" &&
		fi.Size() >= 512 && compressible(ctype) && acceptsGzip(r) {
		w.Header().Add("Vary", "Accept-Encoding")
		gw := &gzipWriter{ResponseWriter: w}
		defer gw.Close()
		w = gw
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

func (h *handler) listDir(w http.ResponseWriter, r *http.Request, f *os.File, clean string) {
	entries, err := f.ReadDir(10000)
	if err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, "500 cannot read directory", http.StatusInternalServerError)
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	title := html.EscapeString(clean)
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><title>Index of %s</title></head><body>\n<h1>Index of %s</h1>\n<pre>\n", title, title)
	if clean != "/" {
		b.WriteString("<a href=\"../\">../</a>\n")
	}
	for _, e := range entries {
		n := e.Name()
		if !h.cfg.DotFiles && strings.HasPrefix(n, ".") {
			continue
		}
		if e.IsDir() {
			n += "/"
		}
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a>\n", html.EscapeString((&url.URL{Path: n}).EscapedPath()), html.EscapeString(n))
	}
	b.WriteString("</pre>\n</body></html>\n")
	io.WriteString(w, b.String())
}

func hasDotSegment(clean string) bool {
	for _, seg := range strings.Split(clean, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." {
			return true
		}
	}
	return false
}

func errStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	default:
		// Not found, a path escaping the root, a symlink out of it, or a
		// file in place of a directory: all read as "not here".
		return http.StatusNotFound
	}
}

func compressible(ctype string) bool {
	ct, _, _ := strings.Cut(ctype, ";")
	ct = strings.TrimSpace(ct)
	switch {
	case strings.HasPrefix(ct, "text/"):
		return true
	case ct == "application/javascript", ct == "application/json", ct == "application/xml",
		ct == "image/svg+xml", ct == "application/wasm", ct == "application/manifest+json":
		return true
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") {
				q, err := strconv.ParseFloat(v, 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}

// gzipWriter compresses the body of 200 responses; other statuses (304,
// errors) pass through untouched.
type gzipWriter struct {
	http.ResponseWriter
	gz          *gzip.Writer
	wroteHeader bool
}

func (g *gzipWriter) WriteHeader(code int) {
	if g.wroteHeader {
		return
	}
	g.wroteHeader = true
	if code == http.StatusOK {
		h := g.ResponseWriter.Header()
		h.Del("Content-Length")
		h.Set("Content-Encoding", "gzip")
		g.gz = gzipPool.Get().(*gzip.Writer)
		g.gz.Reset(g.ResponseWriter)
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.gz != nil {
		return g.gz.Write(p)
	}
	return g.ResponseWriter.Write(p)
}

func (g *gzipWriter) Close() {
	if g.gz != nil {
		g.gz.Close()
		gzipPool.Put(g.gz)
		g.gz = nil
	}
}

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression); return w }}

// accessLog writes one line per request to out, in the combined log format
// plus the duration.
func accessLog(next http.Handler, out io.Writer) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			host, _, _ = strings.Cut(xff, ",")
			host = strings.TrimSpace(host)
		}
		line := fmt.Sprintf("%s - - [%s] %s %d %d %s %s %.3fs\n", host, start.Format("02/Jan/2006:15:04:05 -0700"),
			strconv.Quote(r.Method+" "+r.URL.RequestURI()+" "+r.Proto), rec.status, rec.bytes,
			strconv.Quote(r.Referer()), strconv.Quote(r.UserAgent()), time.Since(start).Seconds())
		mu.Lock()
		io.WriteString(out, line)
		mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	s.wroteHeader = true
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// Serve listens on cfg.Addr and serves until ctx is done, then shuts down
// gracefully (in-flight requests get up to 10 s). Access log lines go to
// stdout.
func Serve(ctx context.Context, cfg Config, stdout io.Writer) error {
	h, closer, err := Handler(cfg)
	if err != nil {
		return err
	}
	defer closer.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("static-serve: %w", err)
	}
	return serveListener(ctx, ln, h, stdout)
}

func serveListener(ctx context.Context, ln net.Listener, h http.Handler, stdout io.Writer) error {
	srv := &http.Server{
		Handler:           accessLog(h, stdout),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Fprintf(stdout, "static-serve: listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("static-serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("static-serve shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "static-serve: stopped")
	return nil
}
