package router

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando/internal/certs"
)

// SystemRoutes are the platform's own hosts, served in-process instead
// of routed to apps, as CF's gorouter routes them to its system
// components: api., uaa., login. and log-cache. under Domain, and any
// Host that is an IP address (so `cf api https://IP` finds the API).
// Handler gets the request as the client sent it (its own address,
// X-Forwarded-For untouched) except X-Forwarded-Proto, which the router
// sets: "https" for its TLS listener, else "http" unless a trusted proxy
// said otherwise.
type SystemRoutes struct {
	Domain  string
	Handler http.Handler
}

// SystemHostLabels are the system hosts' first labels.
var SystemHostLabels = []string{"api", "uaa", "login", "log-cache"}

// SetSystemRoutes replaces the system hosts (nil: none), e.g. when a
// router in its own process learns the system domain from the server.
func (r *Router) SetSystemRoutes(s *SystemRoutes) {
	if s != nil {
		s = s.normalized()
	}
	r.system.Store(s)
}

func (s *SystemRoutes) normalized() *SystemRoutes {
	n := *s
	n.Domain = strings.TrimSuffix(strings.ToLower(s.Domain), ".")
	return &n
}

// match says host (canonical: lower case, no port) is a system host.
func (s *SystemRoutes) match(host string) bool {
	if s == nil {
		return false
	}
	if isIP(host) {
		return true
	}
	label, rest, ok := strings.Cut(host, ".")
	return ok && rest == s.Domain && slices.Contains(SystemHostLabels, label)
}

// ServeTLS serves HTTPS with cfg on ln until ctx ends, as Serve does
// plain HTTP. Its connections count in the same caps as Serve's from
// their first byte, and their TLS handshake must finish within
// ReadHeaderTimeout.
func (r *Router) ServeTLS(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	if r.conns != nil {
		ln = r.conns.WrapTLS(ln, cfg)
	}
	return r.serve(ctx, certs.NewListener(ln, cfg, r.cfg.ReadHeaderTimeout, r.log))
}

// isIP says host is an IP address literal. Names are ruled out without
// parsing (a failed parse allocates, and this runs per request): IPv4
// ends in a digit, IPv6 has a colon.
func isIP(host string) bool {
	if host == "" {
		return false
	}
	if last := host[len(host)-1]; (last < '0' || last > '9') && strings.IndexByte(host, ':') < 0 {
		return false
	}
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil
}

// serveSystem serves the request just read on cc with the system
// handler instead of routing it: the handler gets an *http.Request made
// from the parsed head (the client's own address, the TLS state, the
// body under the router's body-rate rule) and a ResponseWriter
// (sysWriter) that answers on the client connection, which then goes on
// to its next request. System traffic is not the data plane's hot path;
// this is plain net/http semantics, not speed.
func (r *Router) serveSystem(cc *clientConn, sys *SystemRoutes) {
	ctx, cancel := context.WithCancel(cc.srv.base)
	defer cancel()
	req, err := cc.systemRequest(ctx)
	if err != nil {
		cc.closeAfter = true
		cc.answer(http.StatusBadRequest, "", "400 Bad Request: "+err.Error()+"\n")
		return
	}
	w := &sysWriter{cc: cc, header: http.Header{}, head: string(cc.head.method) == http.MethodHead, declared: -1}
	defer func() { cc.armed = time.Time{} }() // the handler may have moved the write deadline
	ok := false
	if req.Body == http.NoBody && cc.br.Buffered() == 0 {
		stop := cc.watchHangUp(cancel)
		ok = r.callSystem(sys.Handler, w, req)
		stop()
	} else {
		ok = r.callSystem(sys.Handler, w, req)
	}
	if ok {
		w.finish()
	} else {
		cc.closeAfter = true
		if w.committed {
			_ = cc.bw.Flush()
		}
	}
}

// watchHangUp cancels a body-less system request when its client hangs
// up while the handler runs (a long poll, a log stream), as net/http's
// background read does: a read on the idle connection that fails means
// the client is gone; one that gets bytes (the next, pipelined request)
// leaves them buffered for the serve loop. stop ends the watch before the
// loop reads again and clears the read deadline it used to interrupt it.
func (cc *clientConn) watchHangUp(cancel context.CancelFunc) (stop func()) {
	_ = cc.c.SetReadDeadline(time.Time{})
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := cc.br.Peek(1); err != nil && !stopping.Load() {
			cancel()
		}
	}()
	return func() {
		stopping.Store(true)
		_ = cc.c.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = cc.c.SetReadDeadline(time.Time{})
	}
}

// callSystem runs the handler; false when it panicked (the connection
// is then closed, as net/http does).
func (r *Router) callSystem(h http.Handler, w *sysWriter, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				r.log.Error("system handler panicked", "host", req.Host, "path", req.URL.Path, "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	h.ServeHTTP(w, req)
	return true
}

// systemRequest is the head just read as an *http.Request, as net/http's
// server would make it, with X-Forwarded-Proto set by the router.
func (cc *clientConn) systemRequest(ctx context.Context) (*http.Request, error) {
	h := &cc.head
	target := string(h.target)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("invalid request target: %w", err)
	}
	hdr := make(http.Header, len(h.fields)+1)
	for _, f := range h.fields {
		if equalFold(f.name, "host") || equalFold(f.name, "transfer-encoding") {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(string(f.name))
		hdr[k] = append(hdr[k], string(f.value))
	}
	_, proto := cc.forwarded()
	hdr["X-Forwarded-Proto"] = []string{proto}
	req := &http.Request{
		Method: string(h.method), URL: u, RequestURI: target,
		Proto: h.proto(), ProtoMajor: 1, ProtoMinor: h.minor,
		Header: hdr, Host: h.host, RemoteAddr: cc.remote, TLS: cc.tls,
		Close: cc.closeAfter, Body: http.NoBody,
	}
	switch {
	case h.chunked:
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		req.Body = &sysBody{cc: cc}
	case h.length > 0:
		req.ContentLength = h.length
		req.Body = &sysBody{cc: cc}
	}
	return req.WithContext(ctx), nil
}

// sysBody is a system request's body: the connection's body reader,
// which sends 100 Continue on the first read and holds the body-rate
// rule. Reads after Close fail.
type sysBody struct {
	cc     *clientConn
	closed bool
}

func (b *sysBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.cc.body.Read(p)
}

func (b *sysBody) Close() error {
	b.closed = true
	return nil
}
