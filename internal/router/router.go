package router

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando"
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
	// RouteServices, when set, names the routes bound to a route service
	// (routeservice.go). RouteServiceKey is the AES key (16, 24 or 32
	// bytes) sealing X-CF-Proxy-Signature; routers that share route
	// services share it (default: random, this router's own).
	// RouteServiceTimeout is how long a signature is good for (default
	// 60 s); RouteServiceTLS the client configuration for route services
	// (default: the system roots).
	RouteServices       RouteServices
	RouteServiceKey     []byte
	RouteServiceTimeout time.Duration
	RouteServiceTLS     *tls.Config

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
	buffers   bufferPool
	// heads bounds the large heads read at once (h1.go).
	heads *headSlots
	apps  *appLimiter
	ids   *requestIDs
	// conns caps the client connections of every listener served.
	conns *connlimit.Limit
	// system is cfg.System, or what SetSystemRoutes put.
	system atomic.Pointer[SystemRoutes]
	// rs and rsTransport serve route services (nil without them).
	rs          *routeServices
	rsTransport *backendTransport
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
	r := &Router{cfg: cfg, log: cfg.Logger, now: cfg.Now, table: newTable(), apps: newAppLimiter(cfg.MaxRequestsPerApp), ids: newRequestIDs(),
		heads: &headSlots{max: maxLargeHeads}}
	dial := cfg.Dial
	r.transport = newBackendTransport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &dialError{addr: addr, err: err}
		}
		return c, nil
	}, cfg.EndpointTimeout, r.heads)
	r.buffers = newBufferPool()
	if cfg.RouteServices != nil {
		rs, err := newRouteServices(cfg.RouteServices, cfg.RouteServiceKey, cfg.RouteServiceTimeout)
		if err != nil {
			// A key of the wrong size: every route service request is
			// refused rather than sent to the app unchecked.
			r.log.Error("route services disabled", "err", err)
			rs = &routeServices{lookup: cfg.RouteServices}
		}
		r.rs = rs
		r.rsTransport = newBackendTransport(r.dialRouteService, cfg.EndpointTimeout, r.heads)
	}
	if cfg.MaxConns > 0 || cfg.MaxConnsPerClient > 0 {
		r.conns = connlimit.NewLimit(cfg.MaxConns, cfg.MaxConnsPerClient, "the router")
	}
	r.SetSystemRoutes(cfg.System)
	return r
}

// dialError marks a failure to connect: the backend never saw the request.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return "dial " + e.addr + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

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
	// transport is the client for the endpoints (instances, or the
	// route service).
	transport *backendTransport
	// fromRouteService marks a request that came back from its route's
	// route service with a valid signature.
	fromRouteService bool
	// xff and proto are the X-Forwarded-For and -Proto the router sends.
	xff, proto string
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

// accessLog emits gorouter's RTR line to the app's log. It is built with
// appends, not fmt: it runs once per routed request.
func (r *Router) accessLog(cc *clientConn, st *request, status int, n int64, host string, start time.Time) {
	if r.cfg.LogSink == nil || st.served == nil || st.served.appGUID == "" {
		return
	}
	h := &cc.head
	ep := st.served
	now := r.now()
	routerErr := st.routerErr
	if routerErr == "" {
		routerErr = "-"
	}
	b := make([]byte, 0, 512)
	b = append(b, host...)
	b = append(b, " - ["...)
	b = start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z")
	b = append(b, `] "`...)
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, h.uri...)
	b = append(b, ' ')
	b = append(b, h.proto()...)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, max(h.length, 0), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ' ')
	b = appendQuoted(b, h.referer)
	b = append(b, ' ')
	b = appendQuoted(b, h.ua)
	b = append(b, ` "`...)
	b = append(b, cc.remote...)
	b = append(b, `" "`...)
	b = append(b, ep.Addr...)
	b = append(b, `" x_forwarded_for:`...)
	b = strconv.AppendQuote(b, st.xff)
	b = append(b, " x_forwarded_proto:"...)
	b = strconv.AppendQuote(b, st.proto)
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

// appendQuoted appends v quoted, "-" when empty.
func appendQuoted(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, `"-"`...)
	}
	return strconv.AppendQuote(b, string(v))
}
