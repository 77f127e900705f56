package router

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Route services (CF's, as gorouter runs them): a route bound to a route
// service has its requests sent to the service's URL first, with
// X-CF-Forwarded-Url (where the request was going), X-CF-Proxy-Signature
// (that URL and the time, sealed with a key only the router holds) and
// X-CF-Proxy-Metadata (the seal's nonce). When the route service sends
// the request on to X-CF-Forwarded-Url with the two proxy headers, the
// router opens the signature, checks that it is recent and names this
// request's URL, and sends the request to the app. A request for such a
// route with a bad or stale signature is refused: it cannot skip the
// route service.

// Header names.
const (
	HeaderForwardedURL   = "X-Cf-Forwarded-Url"
	HeaderProxySignature = "X-Cf-Proxy-Signature"
	HeaderProxyMetadata  = "X-Cf-Proxy-Metadata"
)

// DefaultRouteServiceTimeout is how long a signature is accepted
// (gorouter's route_services_timeout).
const DefaultRouteServiceTimeout = 60 * time.Second

// RouteServices says which routes are bound to a route service.
type RouteServices interface {
	// RouteServiceURL returns the https URL of the route service bound
	// to the route host (lower-case) and path prefix ("" for none), or
	// "" when there is none. It is called once per request to such
	// hosts: it must be quick.
	RouteServiceURL(host, path string) string
}

// routeServiceHeaders are the request headers the router sets itself for
// a route service.
var routeServiceHeaders = newNameSet("x-cf-forwarded-url", "x-cf-proxy-signature", "x-cf-proxy-metadata")

// signatureContents is what X-CF-Proxy-Signature seals.
type signatureContents struct {
	ForwardedURL  string    `json:"forwarded_url"`
	RequestedTime time.Time `json:"requested_time"`
}

type signatureMetadata struct {
	Nonce []byte `json:"nonce"`
}

// routeServices is the router's side of route services: the sealing key
// and the parsed service URLs.
type routeServices struct {
	lookup  RouteServices
	aead    cipher.AEAD
	timeout time.Duration

	mu   sync.Mutex
	urls map[string]*routeService // by URL, bounded
}

// routeService is one route service URL, parsed.
type routeService struct {
	addr string // host:port
	host string // Host header
	uri  string // request target
}

const maxRouteServiceURLs = 4096

func newRouteServices(lookup RouteServices, key []byte, timeout time.Duration) (*routeServices, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("route service key: %w", err)
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("route service key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("route service key: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultRouteServiceTimeout
	}
	return &routeServices{lookup: lookup, aead: aead, timeout: timeout, urls: map[string]*routeService{}}, nil
}

// service returns the parsed route service for raw, or an error for a
// URL the router cannot send to.
func (rs *routeServices) service(raw string) (*routeService, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if s, ok := rs.urls[raw]; ok {
		return s, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("route service url %q: not an https url", raw)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	s := &routeService{
		addr: net.JoinHostPort(u.Hostname(), port),
		host: u.Host,
		uri:  u.RequestURI(),
	}
	if len(rs.urls) >= maxRouteServiceURLs {
		clear(rs.urls)
	}
	rs.urls[raw] = s
	return s, nil
}

// sign seals forwardedURL and now into the signature and metadata
// headers' values.
func (rs *routeServices) sign(forwardedURL string, now time.Time) (sig, meta string, err error) {
	plain, err := json.Marshal(signatureContents{ForwardedURL: forwardedURL, RequestedTime: now})
	if err != nil {
		return "", "", err
	}
	nonce := make([]byte, rs.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", "", err
	}
	m, err := json.Marshal(signatureMetadata{Nonce: nonce})
	if err != nil {
		return "", "", err
	}
	sealed := rs.aead.Seal(nil, nonce, plain, nil)
	return base64.URLEncoding.EncodeToString(sealed), base64.URLEncoding.EncodeToString(m), nil
}

// errSignature is the cause of every refused signature; the details go
// to the router's log, not to the client.
var errSignature = errors.New("invalid route service signature")

// verify opens a signature and checks it against the request's URL
// (host and request target) and the time.
func (rs *routeServices) verify(sig, meta, host, uri string, now time.Time) error {
	sealed, err := base64.URLEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature not base64", errSignature)
	}
	rawMeta, err := base64.URLEncoding.DecodeString(meta)
	if err != nil {
		return fmt.Errorf("%w: metadata not base64", errSignature)
	}
	var m signatureMetadata
	if err := json.Unmarshal(rawMeta, &m); err != nil || len(m.Nonce) != rs.aead.NonceSize() {
		return fmt.Errorf("%w: bad metadata", errSignature)
	}
	plain, err := rs.aead.Open(nil, m.Nonce, sealed, nil)
	if err != nil {
		return fmt.Errorf("%w: not sealed by this router", errSignature)
	}
	var c signatureContents
	if err := json.Unmarshal(plain, &c); err != nil {
		return fmt.Errorf("%w: bad contents", errSignature)
	}
	if age := now.Sub(c.RequestedTime); age > rs.timeout || age < -rs.timeout {
		return fmt.Errorf("%w: expired (signed %s ago, accepted for %s)", errSignature, age.Round(time.Second), rs.timeout)
	}
	fu, err := url.Parse(c.ForwardedURL)
	if err != nil {
		return fmt.Errorf("%w: bad forwarded url", errSignature)
	}
	if canonicalHost(fu.Host) != canonicalHost(host) || unescaped(fu.RequestURI()) != unescaped(uri) {
		return fmt.Errorf("%w: signed for %s, used for %s%s", errSignature, c.ForwardedURL, host, uri)
	}
	return nil
}

func unescaped(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// dialRouteService connects to a route service over TLS.
func (r *Router) dialRouteService(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	c, err := r.cfg.Dial(ctx, network, addr)
	if err != nil {
		return nil, &dialError{addr: addr, err: err}
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.cfg.RouteServiceTLS != nil {
		cfg = r.cfg.RouteServiceTLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		// The route service never saw the request: like a refused dial.
		return nil, &dialError{addr: addr, err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return tc, nil
}

// header returns the value of the request header name (lower-case).
func (h *reqHead) header(name string) []byte {
	for _, f := range h.fields {
		if len(f.name) == len(name) && equalFold(f.name, name) {
			return f.value
		}
	}
	return nil
}

// routeService decides where a request for a route with a route service
// goes. A request that came back from the route service with a valid
// signature goes on to the app (handled false). Otherwise it is handled
// here: answered (a bad signature, a websocket, an unusable URL) or sent
// to the route service, whose answer is relayed.
func (r *Router) routeService(cc *clientConn, st *request, rawURL, host string) (handled bool, status int, n int64) {
	h := &cc.head
	if r.rs.aead == nil { // no usable key (logged at New)
		st.routerErr = "route_service_unsupported"
		const body = "502 Bad Gateway: Route services are not available on this router.\n"
		cc.answer(http.StatusBadGateway, st.routerErr, body)
		return true, http.StatusBadGateway, int64(len(body))
	}
	sig, meta := h.header("x-cf-proxy-signature"), h.header("x-cf-proxy-metadata")
	if len(sig) > 0 {
		if err := r.rs.verify(string(sig), string(meta), h.host, h.uri, r.now()); err != nil {
			r.log.Info("refused a request with a bad route service signature", "host", host, "err", err)
			st.routerErr = "route_service_signature_invalid"
			const body = "400 Bad Request: Failed to validate Route Service Signature\n"
			cc.answer(http.StatusBadRequest, st.routerErr, body)
			return true, http.StatusBadRequest, int64(len(body))
		}
		st.fromRouteService = true
		return false, 0, 0
	}
	if h.isUpgrade() {
		// gorouter does not send websockets through route services;
		// sending them to the app would skip the service.
		st.routerErr = "route_service_unsupported"
		const body = "503 Service Unavailable: Websocket requests are not supported for routes bound to Route Services.\n"
		cc.answer(http.StatusServiceUnavailable, st.routerErr, body)
		return true, http.StatusServiceUnavailable, int64(len(body))
	}
	svc, err := r.rs.service(rawURL)
	var sigv, metav string
	forwarded := st.proto + "://" + h.host + h.uri
	if err == nil {
		sigv, metav, err = r.rs.sign(forwarded, r.now())
	}
	if err != nil {
		r.log.Warn("route service unusable", "host", host, "err", err)
		st.routerErr = "route_service_unsupported"
		const body = "502 Bad Gateway: Registered route service is not usable.\n"
		cc.answer(http.StatusBadGateway, st.routerErr, body)
		return true, http.StatusBadGateway, int64(len(body))
	}
	// The app's GUID goes with it, for the request's access line.
	st.endpoints = []*endpoint{newEndpoint(Backend{Addr: svc.addr}, "", st.endpoints[0].appGUID)}
	st.transport = r.rsTransport
	x := &toRouteService{proxied: proxied{cc: cc, st: st, start: r.now().UnixMilli()}, svc: svc, forwarded: forwarded, sig: sigv, meta: metav}
	bc, err := r.tryBackends(cc, st, x)
	if err != nil {
		cc.backend.Store(nil)
		status, n = r.proxyError(cc, st, err)
		return true, status, n
	}
	status, n, reuse := cc.relay(bc)
	r.finishExchange(cc, st, bc, reuse)
	cc.backend.Store(nil)
	return true, status, n
}

// toRouteService is a request on its way to a route service.
type toRouteService struct {
	proxied
	svc                  *routeService
	forwarded, sig, meta string
}

// writeHead writes the request head for the route service: its URL as
// the target and Host, the client's end-to-end headers, the router's
// X-Forwarded-* and the three route service headers.
func (x *toRouteService) writeHead(w *bufio.Writer, _ *endpoint) {
	h := &x.cc.head
	st := x.st
	b := w.AvailableBuffer()
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, x.svc.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, x.svc.host...)
	b = append(b, "\r\n"...)
	b = x.appendClientFields(b, routeServiceHeaders)
	b = appendForwardedFields(b, st, h.host, x.start)
	b = append(b, "\r\n"+HeaderForwardedURL+": "...)
	b = append(b, x.forwarded...)
	b = append(b, "\r\n"+HeaderProxySignature+": "...)
	b = append(b, x.sig...)
	b = append(b, "\r\n"+HeaderProxyMetadata+": "...)
	b = append(b, x.meta...)
	b = append(b, "\r\n"...)
	b = x.appendFraming(b)
	_, _ = w.Write(b)
}
