package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bodyrate"
	"github.com/pandoplatform/pando/internal/connlimit"
)

// Config configures the router.
type Config struct {
	Logger *slog.Logger
	// LogSink, when set, receives an RTR access line per routed request,
	// tagged with the app and instance index.
	LogSink pando.LogSink
	// Dial connects to a backend; default a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds a backend connect (gorouter's 5 s).
	DialTimeout time.Duration
	// EndpointTimeout bounds the wait for a backend's response headers;
	// default 15 min (gorouter's endpoint_timeout).
	EndpointTimeout time.Duration
	// FailTimeout keeps a backend that refused a connection out of
	// rotation for this long, unless nothing else is left; default 10 s.
	FailTimeout time.Duration
	// MaxAttempts is the most backends one request tries; default 3.
	MaxAttempts int
	// ShutdownTimeout bounds the graceful shutdown of Serve; default 10 s.
	ShutdownTimeout time.Duration

	// MaxConns bounds the router's open client connections, and
	// MaxConnsPerClient those from one client address; a connection past
	// either is answered 503 and closed. MaxRequestsPerApp bounds one
	// app's requests in flight, websockets included (503 past it). Zero
	// picks the default (DefaultMaxConns and its fractions); negative
	// means no limit.
	MaxConns          int
	MaxConnsPerClient int
	MaxRequestsPerApp int
	// ReadHeaderTimeout bounds reading a request's headers (default 10 s);
	// IdleTimeout closes a keep-alive connection with no request
	// (default 90 s). A request body must deliver BodyMinBytes (default
	// 16 KiB) in every BodyTimeout (default 60 s), and each response write
	// must go through within WriteTimeout (default 60 s): a slow but
	// moving upload or download is fine, a stalled or trickled one is cut
	// off. TunnelIdleTimeout closes an upgraded
	// (websocket) connection quiet both ways for that long (default 1 h).
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	BodyTimeout       time.Duration
	BodyMinBytes      int64
	WriteTimeout      time.Duration
	TunnelIdleTimeout time.Duration
	// TrustedProxies are the client addresses whose X-Forwarded-For and
	// X-Forwarded-Proto are believed (a load balancer in front); from
	// anyone else the router sets them from the connection itself.
	TrustedProxies []netip.Prefix
	// System, when set, serves the platform's own hosts in-process
	// (system.go).
	System *SystemRoutes

	Now func() time.Time
}

// DefaultMaxConns is the router's default connection cap; one client may
// hold a tenth of it and one app half of it.
const DefaultMaxConns = 10000

// Router routes HTTP requests to app instances by Host.
type Router struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	table     *table
	transport *backendTransport
	retry     *retryTransport
	buffers   bufferPool
	apps      *appLimiter
	ids       *requestIDs
	// conns caps the client connections of every listener served.
	conns *connlimit.Limit
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// New returns a router with an empty table.
func New(cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.EndpointTimeout <= 0 {
		cfg.EndpointTimeout = 15 * time.Minute
	}
	if cfg.FailTimeout <= 0 {
		cfg.FailTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	// The per-client and per-app caps default to fractions of the cap in
	// all; with no cap in all (negative), to none.
	if cfg.MaxConnsPerClient == 0 {
		cfg.MaxConnsPerClient = -1
		if cfg.MaxConns > 0 {
			cfg.MaxConnsPerClient = max(cfg.MaxConns/10, 1)
		}
	}
	if cfg.MaxRequestsPerApp == 0 {
		cfg.MaxRequestsPerApp = -1
		if cfg.MaxConns > 0 {
			cfg.MaxRequestsPerApp = max(cfg.MaxConns/2, 1)
		}
	}
	cfg.ReadHeaderTimeout = orDefault(cfg.ReadHeaderTimeout, 10*time.Second)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, 90*time.Second)
	cfg.BodyTimeout = orDefault(cfg.BodyTimeout, 60*time.Second)
	if cfg.BodyMinBytes <= 0 {
		cfg.BodyMinBytes = 16 << 10
	}
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, 60*time.Second)
	cfg.TunnelIdleTimeout = orDefault(cfg.TunnelIdleTimeout, time.Hour)
	if cfg.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	r := &Router{cfg: cfg, log: cfg.Logger, now: cfg.Now, table: newTable(), apps: newAppLimiter(cfg.MaxRequestsPerApp), ids: newRequestIDs()}
	dial := cfg.Dial
	r.transport = newBackendTransport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &dialError{addr: addr, err: err}
		}
		return c, nil
	}, cfg.EndpointTimeout)
	r.retry = &retryTransport{r: r, base: r.transport}
	r.buffers = newBufferPool()
	if cfg.MaxConns > 0 || cfg.MaxConnsPerClient > 0 {
		r.conns = connlimit.NewLimit(cfg.MaxConns, cfg.MaxConnsPerClient, "the router")
	}
	if cfg.System != nil {
		r.cfg.System = cfg.System.normalized()
	}
	return r
}

// dialError marks a failure to connect: the backend never saw the request.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return "dial " + e.addr + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// CF gorouter's answers when it cannot route.
const (
	headerRouterError = "X-Cf-Routererror"
)

func writePlain(w http.ResponseWriter, status int, routerError, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(headerRouterError, routerError)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// canonicalHost strips the port and a trailing dot and lower-cases.
func canonicalHost(h string) string {
	// Only a host with a port is split: SplitHostPort's error for one
	// without would cost an allocation per request.
	if strings.LastIndexByte(h, ':') > strings.LastIndexByte(h, ']') {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// request is one request's routing state, shared by the proxy, the retrying
// transport and the access log.
type request struct {
	route     *pathRoute
	endpoints []*endpoint
	requestID string
	tried     []*endpoint
	served    *endpoint // the endpoint that answered, or the last one tried
	routerErr string
	// xff and proto are the X-Forwarded-For and -Proto the router sends.
	xff, proto string
}

// ServeHTTP routes one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := r.now()
	host := canonicalHost(req.Host)
	if r.cfg.System.match(host) {
		r.serveSystem(w, req)
		return
	}
	route, eps, found := r.table.lookup(host, req.URL.Path)
	if !found {
		writePlain(w, http.StatusNotFound, "unknown_route",
			fmt.Sprintf("404 Not Found: Requested route ('%s') does not exist.\n", host))
		return
	}
	if len(eps) == 0 {
		writePlain(w, http.StatusServiceUnavailable, "no_endpoints",
			fmt.Sprintf("503 Service Unavailable: Requested route ('%s') has no available endpoints.\n", host))
		return
	}
	app := eps[0].appGUID
	if !r.apps.acquire(app) {
		writePlain(w, http.StatusServiceUnavailable, "too_many_requests",
			fmt.Sprintf("503 Service Unavailable: Requested route ('%s') has reached its limit of %d concurrent requests.\n", host, r.cfg.MaxRequestsPerApp))
		return
	}
	defer r.apps.release(app)
	st := &request{route: route, endpoints: eps, requestID: r.ids.next()}
	st.xff, st.proto = r.forwarded(req) // before the headers are rewritten
	ctl := http.NewResponseController(w)
	rec := &recorder{ResponseWriter: w, ctl: ctl, writeTimeout: r.cfg.WriteTimeout, now: r.now}
	// Deferred: an answer aborted half-way (panic(http.ErrAbortHandler))
	// is logged too.
	defer r.accessLog(req, rec, st, start)
	if isUpgrade(req) {
		r.serveUpgrade(rec, req, st)
	} else {
		bodyrate.Guard(w, req, r.cfg.BodyTimeout, r.cfg.BodyMinBytes)
		r.serveProxy(rec, req, st)
	}
}

// setForwarded sets the forwarding headers the router sends on h.
func setForwarded(h http.Header, st *request, host string) {
	h["X-Forwarded-For"] = []string{st.xff}
	h["X-Forwarded-Proto"] = []string{st.proto}
	h["X-Forwarded-Host"] = []string{host}
	delete(h, "Forwarded")
}

// forwarded returns the X-Forwarded-For and -Proto the router sends for a
// request: a trusted proxy's chain and protocol are kept (with the proxy's
// own address appended); anyone else's are replaced by the connection's.
func (r *Router) forwarded(in *http.Request) (xff, proto string) {
	client := in.RemoteAddr
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	proto = "http"
	if in.TLS != nil {
		proto = "https"
	}
	if r.trusted(client) {
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			client = strings.Join(prior, ", ") + ", " + client
		}
		if p := in.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			proto = p
		}
	}
	return client, proto
}

func (r *Router) trusted(client string) bool {
	if len(r.cfg.TrustedProxies) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(client)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range r.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// pick returns the next endpoint to try: round robin, skipping endpoints
// already tried for this request and, while others remain, ones that
// recently refused connections.
func (r *Router) pick(st *request) *endpoint {
	n := len(st.endpoints)
	start := int((st.route.next.Add(1) - 1) % uint64(n))
	now := r.now().UnixNano()
	var fallback *endpoint
	for i := range n {
		ep := st.endpoints[(start+i)%n]
		if containsEndpoint(st.tried, ep) {
			continue
		}
		if ep.failedUntil.Load() > now {
			if fallback == nil {
				fallback = ep
			}
			continue
		}
		return ep
	}
	return fallback
}

func containsEndpoint(eps []*endpoint, ep *endpoint) bool {
	for _, x := range eps {
		if x == ep {
			return true
		}
	}
	return false
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// retryTransport sends a request to one backend after another: again on a
// connect failure (the backend never saw it, so any method is safe), and
// once more for an idempotent request that failed after it was sent,
// provided no body has been consumed.
type retryTransport struct {
	r    *Router
	base http.RoundTripper
}

func (t *retryTransport) roundTrip(req *http.Request, st *request) (*http.Response, error) {
	var body *trackedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &trackedBody{rc: req.Body}
	}
	var (
		lastErr      error
		resentAfterw bool
	)
	for attempt := 0; attempt < t.r.cfg.MaxAttempts; attempt++ {
		ep := t.r.pick(st)
		if ep == nil {
			break
		}
		st.tried = append(st.tried, ep)
		st.served = ep
		out := *req
		u := *req.URL
		u.Host = ep.Addr
		out.URL = &u
		// The X-Cf-* headers are set anew for each attempt, so the
		// request's own header map can be reused.
		ep.setHeaders(out.Header)
		if body != nil {
			out.Body = body
		}
		resp, err := t.base.RoundTrip(&out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if req.Context().Err() != nil {
			break // the client went away
		}
		var de *dialError
		dialFailed := errors.As(err, &de)
		if dialFailed {
			ep.failedUntil.Store(t.r.now().Add(t.r.cfg.FailTimeout).UnixNano())
		}
		t.r.log.Debug("backend attempt failed", "app_guid", ep.appGUID, "instance_index", ep.Index,
			"addr", ep.Addr, "attempt", attempt+1, "err", err)
		untouched := body == nil || body.n == 0
		switch {
		case dialFailed && untouched:
		case idempotent(req.Method) && untouched && !resentAfterw:
			resentAfterw = true
		default:
			return nil, err
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no backend left to try")
	}
	return nil, lastErr
}

// trackedBody lets a request body be offered to a second backend: the
// transport's Close does not close it (the server does), and reads are
// counted so a partly sent body is never resent.
type trackedBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *trackedBody) Close() error { return nil }

// proxyError answers when every attempt failed.
func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, st *request, err error) {
	if req.Context().Err() != nil {
		st.routerErr = "client_closed"
		w.WriteHeader(499) // nginx's and gorouter's "client closed request"; nobody reads it
		return
	}
	st.routerErr = "endpoint_failure"
	r.log.Warn("routing failed: no backend answered", "host", canonicalHost(req.Host),
		"tried", len(st.tried), "err", err)
	writePlain(w, http.StatusBadGateway, "endpoint_failure",
		"502 Bad Gateway: Registered endpoint failed to handle the request.\n")
}

// recorder notes the status and size of a response. Unwrap lets the
// reverse proxy reach the real writer to flush and to hijack for upgrades.
// Each write must finish within writeTimeout: a client that stops
// reading is cut off instead of holding the backend forever.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64

	ctl          *http.ResponseController
	writeTimeout time.Duration
	now          func() time.Time
	armed        time.Time // when the write deadline was last set
}

// deadline gives the next write writeTimeout. Re-arming the timer costs
// more than the writes of a small answer, so it is moved only once a
// quarter of the timeout has passed since it was last set.
func (w *recorder) deadline() {
	if w.ctl == nil {
		return
	}
	now := w.now()
	if !w.armed.IsZero() && now.Sub(w.armed) < w.writeTimeout/4 {
		return
	}
	w.armed = now
	_ = w.ctl.SetWriteDeadline(now.Add(w.writeTimeout))
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	w.deadline()
	w.ResponseWriter.WriteHeader(code)
}

// Flush is what the reverse proxy calls to stream; it writes too.
func (w *recorder) Flush() {
	w.deadline()
	if w.ctl != nil {
		_ = w.ctl.Flush()
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.deadline()
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog emits gorouter's RTR line to the app's log. It is built with
// appends, not fmt: it runs once per routed request.
func (r *Router) accessLog(req *http.Request, rec *recorder, st *request, start time.Time) {
	if r.cfg.LogSink == nil || st.served == nil || st.served.appGUID == "" {
		return
	}
	ep := st.served
	now := r.now()
	routerErr := st.routerErr
	if routerErr == "" {
		routerErr = "-"
	}
	xff, proto := st.xff, st.proto
	b := make([]byte, 0, 512)
	b = append(b, canonicalHost(req.Host)...)
	b = append(b, " - ["...)
	b = start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z")
	b = append(b, `] "`...)
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.URL.RequestURI()...)
	b = append(b, ' ')
	b = append(b, req.Proto...)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, max(req.ContentLength, 0), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, dash(req.Referer()))
	b = append(b, ' ')
	b = strconv.AppendQuote(b, dash(req.UserAgent()))
	b = append(b, ` "`...)
	b = append(b, req.RemoteAddr...)
	b = append(b, `" "`...)
	b = append(b, ep.Addr...)
	b = append(b, `" x_forwarded_for:`...)
	b = strconv.AppendQuote(b, xff)
	b = append(b, " x_forwarded_proto:"...)
	b = strconv.AppendQuote(b, proto)
	b = append(b, ` vcap_request_id:"`...)
	b = append(b, st.requestID...)
	b = append(b, `" response_time:`...)
	b = strconv.AppendFloat(b, now.Sub(start).Seconds(), 'f', 6, 64)
	b = append(b, ` app_id:"`...)
	b = append(b, ep.appGUID...)
	b = append(b, `" app_index:"`...)
	b = strconv.AppendInt(b, int64(ep.Index), 10)
	b = append(b, `" instance_id:"`...)
	b = append(b, ep.InstanceGUID...)
	b = append(b, `" x_cf_routererror:"`...)
	b = append(b, routerErr...)
	b = append(b, '"')
	r.cfg.LogSink.Emit(pando.LogEnvelope{
		Timestamp:  now,
		SourceID:   ep.appGUID,
		InstanceID: strconv.Itoa(ep.Index),
		SourceType: pando.LogSourceRouter,
		Type:       "OUT",
		Payload:    b,
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Serve serves plain HTTP on ln until ctx ends, then stops accepting,
// lets requests in flight finish for up to ShutdownTimeout and closes
// upgraded (websocket) connections.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	if r.conns != nil {
		ln = r.conns.Wrap(ln)
	}
	return r.serve(ctx, ln)
}

// serve serves HTTP on ln, whose connections are already counted in the
// caps (and, for HTTPS, done with their handshake).
func (r *Router) serve(ctx context.Context, ln net.Listener) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: r.cfg.ReadHeaderTimeout,
		IdleTimeout:       r.cfg.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sweeps := make(chan struct{})
	go func() {
		defer close(sweeps)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.transport.sweep()
			case <-base.Done():
				return
			}
		}
	}()
	defer func() { cancelBase(); <-sweeps }()
	select {
	case err := <-errc:
		return fmt.Errorf("router serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		r.log.Warn("router shutdown timed out; closing connections", "err", err)
		srv.Close()
	}
	cancelBase() // ends hijacked (websocket) connections, which Shutdown does not track
	r.transport.closeIdle(true)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("router serve %s: %w", ln.Addr(), err)
	}
	return nil
}
