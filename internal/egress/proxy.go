// Package egress is the HTTP forward proxy through which staging
// containers reach the network. A staging container has a network
// namespace of its own with loopback only; the cell listens inside it
// (see runc's Container.Listen) and serves this proxy there, dialing out
// from the host's namespace, directly or through the operator's upstream
// proxy. Targets that are the platform's own listeners or link-local
// (cloud metadata) addresses are refused.
package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando/internal/netguard"
)

// Config bounds and routes one proxy.
type Config struct {
	// Upstream is the operator's proxy settings (HTTP_PROXY, HTTPS_PROXY,
	// NO_PROXY); zero means dial every target directly.
	Upstream Upstream
	// DenyPorts are the platform's own listening ports (inclusive
	// ranges): a target on a loopback or local address with one of them
	// is refused.
	DenyPorts [][2]int
	// MaxConns bounds the proxy's client connections at once (64 if 0).
	MaxConns int
	// IdleTimeout ends a connection (or tunnel) idle that long (2 min if 0).
	IdleTimeout time.Duration
	// DialTimeout bounds each outbound dial (30 s if 0).
	DialTimeout time.Duration
	// MaxBytes bounds what the staging downloads through the proxy
	// (response bodies and what tunnels bring in); 0 means no bound. Past
	// it, transfers in flight are cut off and new requests are refused
	// with 403, and OnLimit is called once.
	MaxBytes int64
	// OnLimit, when set, is called once, when MaxBytes is reached.
	OnLimit func(max int64)
	// OnDenied, when set, is called when the proxy refuses a target
	// (ErrDenied), once per target (host:port) and for the first
	// maxDeniedReports targets: the tools show the 403 their own way
	// (bundler as "Authentication is required"), so the staging output
	// should say why.
	OnDenied func(target string)
	Log      *slog.Logger
}

// Proxy is one staging's forward proxy.
type Proxy struct {
	cfg       Config
	transport *http.Transport
	active    atomic.Int64
	bytes     atomic.Int64 // relayed both ways, through tunnels and plain requests
	down      atomic.Int64 // downloaded: counted against MaxBytes
	limitOnce sync.Once
	resolver  *net.Resolver

	mu       sync.Mutex
	reported map[string]bool // targets OnDenied was called for
}

// maxDeniedReports bounds the OnDenied calls of one proxy.
const maxDeniedReports = 8

// New returns a proxy for cfg.
func New(cfg Config) *Proxy {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{cfg: cfg, resolver: net.DefaultResolver}
	p.transport = &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			return cfg.Upstream.proxyFor("http", r.URL.Host), nil
		},
		DialContext:           p.dialTarget,
		MaxIdleConns:          8,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.IdleTimeout,
		TLSHandshakeTimeout:   cfg.DialTimeout,
	}
	return p
}

// Bytes returns how many bytes the proxy has relayed so far.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// ErrLimit is the error of a download past Config.MaxBytes.
var ErrLimit = errors.New("the staging reached its download limit")

// LimitExceeded reports whether the staging has reached MaxBytes.
func (p *Proxy) LimitExceeded() bool {
	return p.cfg.MaxBytes > 0 && p.down.Load() >= p.cfg.MaxBytes
}

func (p *Proxy) limitMessage() string {
	return fmt.Sprintf("staging egress proxy: this staging has downloaded %d bytes, its limit (the operator's --staging-egress-max-bytes): further downloads are refused", p.cfg.MaxBytes)
}

// reserve takes up to n bytes of what MaxBytes leaves; 0 means none is
// left.
func (p *Proxy) reserve(n int) int {
	if p.cfg.MaxBytes <= 0 {
		return n
	}
	for {
		cur := p.down.Load()
		room := p.cfg.MaxBytes - cur
		if room <= 0 {
			return 0
		}
		take := int64(n)
		if take > room {
			take = room
		}
		if p.down.CompareAndSwap(cur, cur+take) {
			return int(take)
		}
	}
}

// reachedLimit records that a download went past MaxBytes.
func (p *Proxy) reachedLimit() {
	p.limitOnce.Do(func() {
		p.cfg.Log.Warn("staging egress: download limit reached", "max_bytes", p.cfg.MaxBytes)
		if p.cfg.OnLimit != nil {
			p.cfg.OnLimit(p.cfg.MaxBytes)
		}
	})
}

// limitedReader counts what it reads against MaxBytes and fails with
// ErrLimit past it. A transfer of exactly the bytes left ends normally.
type limitedReader struct {
	r io.Reader
	p *Proxy
}

func (l limitedReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return l.r.Read(b)
	}
	k := l.p.reserve(len(b))
	if k == 0 {
		var one [1]byte
		if n, err := l.r.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		l.p.reachedLimit()
		return 0, ErrLimit
	}
	n, err := l.r.Read(b[:k])
	if n < k {
		l.p.down.Add(int64(n - k))
	}
	return n, err
}

// Serve serves ln until ctx ends, then closes ln and every connection.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       p.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(p.cfg.Log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err := srv.Serve(&capListener{Listener: ln, p: p})
	p.transport.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// capListener turns away connections beyond MaxConns with a 503.
type capListener struct {
	net.Listener
	p *Proxy
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.p.active.Add(1) > int64(l.p.cfg.MaxConns) {
			l.p.active.Add(-1)
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			c.Close()
			l.p.cfg.Log.Warn("staging egress: too many connections", "max", l.p.cfg.MaxConns)
			continue
		}
		return &countedConn{Conn: c, p: l.p}, nil
	}
}

type countedConn struct {
	net.Conn
	p    *Proxy
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.p.active.Add(-1) })
	return c.Conn.Close()
}

// ServeHTTP tunnels CONNECT requests and forwards absolute-URI ones.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.LimitExceeded() {
		p.reachedLimit()
		http.Error(w, p.limitMessage(), http.StatusForbidden)
		return
	}
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "this is the staging egress proxy: send absolute http:// URLs or CONNECT", http.StatusBadRequest)
		return
	}
	if p.cfg.Upstream.proxyFor("http", r.URL.Host) != nil {
		if err := p.checkName(r.Context(), hostPortOf(r.URL)); err != nil {
			p.fail(w, hostPortOf(r.URL), err)
			return
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.Host = "" },
		Transport: p.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.cfg.Log.Info("staging egress", "url", r.URL.Redacted(), "error", err)
			p.fail(w, hostPortOf(r.URL), err)
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Body = &countingBody{ReadCloser: resp.Body, r: limitedReader{resp.Body, p}, n: &p.bytes}
			return nil
		},
	}
	rp.ServeHTTP(w, r)
}

// ErrDenied is the error for a target the proxy refuses.
var ErrDenied = errors.New("refused by the staging egress proxy (the platform's own address or a link-local one)")

func statusFor(err error) int {
	if errors.Is(err, ErrDenied) {
		return http.StatusForbidden
	}
	return http.StatusBadGateway
}

// fail answers a request for target that err ended, and reports a
// refused target to OnDenied.
func (p *Proxy) fail(w http.ResponseWriter, target string, err error) {
	if errors.Is(err, ErrDenied) {
		p.reportDenied(target)
	}
	http.Error(w, "staging egress proxy: "+err.Error(), statusFor(err))
}

// reportDenied calls OnDenied for a target not reported yet, up to
// maxDeniedReports targets.
func (p *Proxy) reportDenied(target string) {
	if p.cfg.OnDenied == nil {
		return
	}
	p.mu.Lock()
	first := !p.reported[target] && len(p.reported) < maxDeniedReports
	if first {
		if p.reported == nil {
			p.reported = make(map[string]bool)
		}
		p.reported[target] = true
	}
	p.mu.Unlock()
	if first {
		p.cfg.OnDenied(target)
	}
}

func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if _, _, err := net.SplitHostPort(target); err != nil {
		http.Error(w, "CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.DialTimeout)
	out, err := p.dialTunnel(ctx, target)
	cancel()
	if err != nil {
		p.cfg.Log.Info("staging egress", "connect", target, "error", err)
		p.fail(w, target, err)
		return
	}
	defer out.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	in, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer in.Close()
	if _, err := io.WriteString(in, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	p.relay(r.Context(), in, buf.Reader, out)
}

// relay copies both ways until either side ends, the connection idles
// past IdleTimeout, or ctx (the staging) ends.
func (p *Proxy) relay(ctx context.Context, in net.Conn, inBuf io.Reader, out net.Conn) {
	stop := context.AfterFunc(ctx, func() { in.Close(); out.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.copyIdle(out, io.MultiReader(inBuf, idleReader{in, p.cfg.IdleTimeout}))
		closeWrite(out)
	}()
	p.copyIdle(in, limitedReader{idleReader{out, p.cfg.IdleTimeout}, p})
	closeWrite(in)
	wg.Wait()
}

func (p *Proxy) copyIdle(dst net.Conn, src io.Reader) {
	n, err := io.Copy(dst, src)
	p.bytes.Add(n)
	if err != nil {
		// An idle or broken side ends both directions.
		_ = dst.SetDeadline(time.Unix(1, 0))
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// idleReader ends reads that wait longer than idle.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r idleReader) Read(b []byte) (int, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(r.idle))
	return r.c.Read(b)
}

// countingBody is a response body read through r (its limitedReader),
// counted in n.
type countingBody struct {
	io.ReadCloser
	r io.Reader
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// dialTunnel connects to target for a CONNECT: through the upstream
// proxy when one applies, else directly.
func (p *Proxy) dialTunnel(ctx context.Context, target string) (net.Conn, error) {
	up := p.cfg.Upstream.proxyFor("https", target)
	if up == nil {
		return p.dialTarget(ctx, "tcp", target)
	}
	if err := p.checkName(ctx, target); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", hostPort(up))
	if err != nil {
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if up.User != nil {
		pw, _ := up.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(up.User.Username()+":"+pw)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("upstream proxy answered CONNECT %s with %s", target, resp.Status)
	}
	if br.Buffered() > 0 { // a proxy must not send before the client does
		c.Close()
		return nil, errors.New("upstream proxy sent data after its CONNECT answer")
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// dialTarget resolves addr, refuses denied addresses and dials one of the
// checked addresses (never re-resolving, so a name cannot change between
// the check and the dial).
func (p *Proxy) dialTarget(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	pn, _ := strconv.Atoi(port)
	for _, ip := range ips {
		if p.denied(ip, pn) {
			return nil, fmt.Errorf("%s (%s): %w", addr, ip, ErrDenied)
		}
	}
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	var firstErr error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// checkName refuses a target that resolves here to a denied address; a
// name that does not resolve here is left to the upstream proxy.
func (p *Proxy) checkName(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ips, err := p.resolve(ctx, host)
	if err != nil {
		return nil
	}
	pn, _ := strconv.Atoi(port)
	for _, ip := range ips {
		if p.denied(ip, pn) {
			return fmt.Errorf("%s (%s): %w", addr, ip, ErrDenied)
		}
	}
	return nil
}

func (p *Proxy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// denied reports whether ip:port is link-local (cloud metadata services
// live there) or one of the platform's own listeners: a DenyPorts port on
// a loopback, unspecified or local interface address.
func (p *Proxy) denied(ip netip.Addr, port int) bool {
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() {
		return true
	}
	return netguard.PlatformListener(ip, port, p.cfg.DenyPorts)
}

// hostPortOf is an http:// URL's host:port.
func hostPortOf(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}
