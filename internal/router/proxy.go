package router

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// nameSet is a set of lower-case header names, looked up by length.
type nameSet [24][]string

func newNameSet(names ...string) *nameSet {
	var s nameSet
	for _, n := range names {
		s[len(n)] = append(s[len(n)], n)
	}
	return &s
}

func (s *nameSet) has(name []byte) bool {
	if len(name) >= len(s) {
		return false
	}
	for _, n := range s[len(name)] {
		if equalFold(name, n) {
			return true
		}
	}
	return false
}

func listed(tokens [][]byte, name []byte) bool {
	for _, t := range tokens {
		if len(t) == len(name) && strings.EqualFold(string(t), string(name)) {
			return true
		}
	}
	return false
}

// notForwarded are the request headers the router does not pass on: the
// hop-by-hop ones (RFC 9110 7.6.1), the framing it chooses itself, and
// those it sets (the X-Forwarded-* chain, the request id and start, the
// X-Cf-* instance headers), which a client cannot forge or strip.
var notForwarded = newNameSet(
	"connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
	"te", "trailer", "transfer-encoding", "upgrade", "content-length", "host", "expect",
	"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
	"x-vcap-request-id", "x-request-start", "x-cf-applicationid", "x-cf-instanceid", "x-cf-instanceindex",
)

// routeServiceSignature are the headers that prove a request went
// through its route's route service; the app does not get them.
var routeServiceSignature = newNameSet("x-cf-proxy-signature", "x-cf-proxy-metadata")

// notRelayed are the answer's headers the router does not pass back: the
// hop-by-hop ones and the framing, which it writes itself.
var notRelayed = newNameSet(
	"connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
	"te", "transfer-encoding", "upgrade", "content-length",
)

// reqBody reads a request body from the client: Content-Length or
// chunked bytes from the connection's reader, with the body rate rule (at
// least BodyMinBytes per BodyTimeout, else the read fails) and the
// 100 Continue sent on the first read when the client asked for one.
type reqBody struct {
	cc        *clientConn
	remaining int64
	chunked   io.Reader
	n         int64 // bytes read: a partly sent body is never sent again
	since     int64 // bytes since the read deadline last moved
	started   bool
	eof       bool
	err       error
	// finished is eof for other goroutines (the answer's).
	finished atomic.Bool
}

func (b *reqBody) reset(cc *clientConn) {
	*b = reqBody{cc: cc}
	h := &cc.head
	switch {
	case h.chunked:
		b.chunked = httputil.NewChunkedReader(cc.br)
	case h.length > 0:
		b.remaining = h.length
	default:
		b.eof = true
		b.finished.Store(true)
	}
}

func (b *reqBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	cc := b.cc
	r := cc.r
	if !b.started {
		b.started = true
		cc.sendContinue()
		_ = cc.c.SetReadDeadline(r.now().Add(r.cfg.BodyTimeout))
	}
	var (
		n   int
		err error
	)
	if b.chunked != nil {
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			err = skipTrailer(cc.br, r.heads)
			b.eof = err == nil
		}
	} else {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = cc.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.eof, err = true, nil
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	b.n += int64(n)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("request body too slow: less than %d bytes in %s: %w", r.cfg.BodyMinBytes, r.cfg.BodyTimeout, err)
		}
		b.err = err
		return n, err
	}
	if b.eof {
		b.finished.Store(true)
		return n, io.EOF
	}
	if b.since += int64(n); b.since >= r.cfg.BodyMinBytes {
		b.since = 0
		_ = cc.c.SetReadDeadline(r.now().Add(r.cfg.BodyTimeout))
	}
	return n, nil
}

// skipTrailer reads a chunked body's trailer section, which is not
// passed on, up to its empty line; a large one takes a slot of slots
// while it is read.
func skipTrailer(br *bufio.Reader, slots *headSlots) error {
	cnt := headCount{slots: slots}
	defer cnt.done()
	for {
		line, err := readLine(br, &cnt)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// proxied is a request on its way to instances (the transport's
// exchange).
type proxied struct {
	cc      *clientConn
	st      *request
	upgrade bool
	start   int64 // X-Request-Start, unix ms
}

func (p *proxied) hasBody() bool { return p.cc.head.hasBody() }

func (p *proxied) using(bc *backendConn) {
	p.cc.backend.Store(bc)
	if p.cc.state.Load() == stateClosed { // closeAll has run
		bc.Close()
	}
}
func (p *proxied) idempotent() bool { return idempotent(string(p.cc.head.method)) }

// appendForwardedFields appends the router's X-Forwarded-*, X-Vcap-
// Request-Id and X-Request-Start fields (without the last CRLF): what
// every request it sends on carries, to an app or to a route service.
func appendForwardedFields(b []byte, st *request, host string, start int64) []byte {
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, st.xff...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, st.proto...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, host...)
	b = append(b, "\r\nX-Vcap-Request-Id: "...)
	b = append(b, st.requestID...)
	b = append(b, "\r\nX-Request-Start: "...)
	return strconv.AppendInt(b, start, 10)
}

// writeHead writes the request head for ep: the client's request line in
// origin form and HTTP/1.1, its end-to-end headers as they came, then the
// router's own headers and the framing it chose.
func (p *proxied) writeHead(w *bufio.Writer, ep *endpoint) {
	h := &p.cc.head
	st := p.st
	b := w.AvailableBuffer()
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, h.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\n"...)
	var skip *nameSet
	if st.fromRouteService {
		skip = routeServiceSignature
	}
	b = p.appendClientFields(b, skip)
	b = appendForwardedFields(b, st, h.host, p.start)
	b = append(b, "\r\nX-Cf-Applicationid: "...)
	b = append(b, ep.appGUID...)
	b = append(b, "\r\nX-Cf-Instanceid: "...)
	b = append(b, ep.InstanceGUID...)
	b = append(b, "\r\nX-Cf-Instanceindex: "...)
	b = append(b, ep.hdrIndex...)
	b = append(b, "\r\n"...)
	b = p.appendFraming(b)
	_, _ = w.Write(b)
}

// appendClientFields appends the client's end-to-end headers (not the
// hop-by-hop ones or those the router sets), without those in skip, and
// the upgrade the router passes on.
func (p *proxied) appendClientFields(b []byte, skip *nameSet) []byte {
	h := &p.cc.head
	for _, f := range h.fields {
		if notForwarded.has(f.name) || listed(h.connection, f.name) || (skip != nil && skip.has(f.name)) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	if p.upgrade {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, h.upgrade...)
		b = append(b, "\r\n"...)
	}
	return b
}

// appendFraming appends the body's framing and the head's end.
func (p *proxied) appendFraming(b []byte) []byte {
	h := &p.cc.head
	switch {
	case h.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case h.length > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, h.length, 10)
		b = append(b, "\r\n"...)
	default:
		switch string(h.method) {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			b = append(b, "Content-Length: 0\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// writeBody sends the client's body after the head, in the head's
// framing, and flushes.
func (p *proxied) writeBody(w *bufio.Writer) error {
	err := p.copyBody(w)
	if err != nil && p.cc.body.err != nil {
		return fmt.Errorf("%w: %v", errClientBody, err)
	}
	return err
}

// errClientBody marks a request body the client failed to deliver.
var errClientBody = errors.New("reading the client's body")

func (p *proxied) copyBody(w *bufio.Writer) error {
	h := &p.cc.head
	body := &p.cc.body
	// The head goes out at once unless the whole body is already here
	// to go with it.
	if h.chunked || int64(p.cc.br.Buffered()) < h.length {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if h.chunked {
		cw := httputil.NewChunkedWriter(w)
		if _, err := io.Copy(cw, body); err != nil {
			return fmt.Errorf("send request body: %w", err)
		}
		if err := cw.Close(); err != nil {
			return err
		}
		if _, err := w.WriteString("\r\n"); err != nil {
			return err
		}
	} else if h.length > 0 {
		if _, err := io.CopyN(w, body, h.length); err != nil {
			return fmt.Errorf("send request body: %w", err)
		}
	}
	return w.Flush()
}

// serveRequest routes the request just read on cc.
func (r *Router) serveRequest(cc *clientConn) {
	h := &cc.head
	start := r.now()
	host := canonicalHost(h.host)
	if sys := r.system.Load(); sys.match(host) {
		r.serveSystem(cc, sys)
		return
	}
	route, eps, found := r.table.lookup(host, h.path)
	if !found {
		cc.answer(http.StatusNotFound, "unknown_route",
			fmt.Sprintf("404 Not Found: Requested route ('%s') does not exist.\n", host))
		return
	}
	if len(eps) == 0 {
		cc.answer(http.StatusServiceUnavailable, "no_endpoints",
			fmt.Sprintf("503 Service Unavailable: Requested route ('%s') has no available endpoints.\n", host))
		return
	}
	app := eps[0].appGUID
	if !r.apps.acquire(app) {
		cc.answer(http.StatusServiceUnavailable, "too_many_requests",
			fmt.Sprintf("503 Service Unavailable: Requested route ('%s') has reached its limit of %d concurrent requests.\n", host, r.cfg.MaxRequestsPerApp))
		return
	}
	defer r.apps.release(app)
	st := &request{route: route, endpoints: eps, requestID: r.ids.next(), transport: r.transport}
	st.xff, st.proto = cc.forwarded()
	var (
		status int
		n      int64
	)
	if r.rs != nil {
		if u := r.rs.lookup.RouteServiceURL(route.key.host, route.key.path); u != "" {
			var handled bool
			if handled, status, n = r.routeService(cc, st, u, host); handled {
				r.accessLog(cc, st, status, n, host, start)
				return
			}
		}
	}
	if h.isUpgrade() {
		status, n = r.serveUpgrade(cc, st)
	} else {
		status, n = r.serveProxy(cc, st)
	}
	r.accessLog(cc, st, status, n, host, start)
}

// forwarded returns the X-Forwarded-For and -Proto the router sends: a
// trusted proxy's chain and protocol are kept (with the proxy's own
// address appended); anyone else's are replaced by the connection's
// (https over the router's TLS listener).
func (cc *clientConn) forwarded() (xff, proto string) {
	xff, proto = cc.client, "http"
	if cc.tls != nil {
		proto = "https"
	}
	if !cc.trusted {
		return xff, proto
	}
	h := &cc.head
	if len(h.xff) > 0 {
		var b []byte
		for _, v := range h.xff {
			b = append(b, v...)
			b = append(b, ", "...)
		}
		xff = string(append(b, cc.client...))
	}
	if p := string(h.xfp); p == "http" || p == "https" {
		proto = p
	}
	return xff, proto
}

// serveProxy forwards a plain (not upgrading) request and relays the
// answer.
func (r *Router) serveProxy(cc *clientConn, st *request) (int, int64) {
	x := &proxied{cc: cc, st: st, start: r.now().UnixMilli()}
	bc, err := r.tryBackends(cc, st, x)
	if err != nil {
		cc.backend.Store(nil)
		return r.proxyError(cc, st, err)
	}
	status, n, reuse := cc.relay(bc)
	r.finishExchange(cc, st, bc, reuse)
	cc.backend.Store(nil)
	return status, n
}

// finishExchange hands the instance connection back and settles the
// request body: a body the answer did not wait for is abandoned, and the
// client connection is closed after the answer.
func (r *Router) finishExchange(cc *clientConn, st *request, bc *backendConn, reuse bool) {
	if done, _ := bc.bodySent(false); !done {
		if cc.body.finished.Load() {
			// All of it was read: its write is ending, unless the
			// instance stopped reading.
			t := time.NewTimer(time.Second)
			select {
			case err := <-bc.sent:
				bc.sent <- err
			case <-t.C:
			}
			t.Stop()
		}
		if done, _ := bc.bodySent(false); !done {
			_ = cc.c.SetReadDeadline(time.Now()) // ends a read of the client's body
		}
	}
	st.transport.done(bc, reuse)
	if !cc.body.finished.Load() {
		cc.bodyAbandoned = true
		cc.closeAfter = true
	}
}

// tryBackends sends the request to one backend after another: again on a
// connect failure (the backend never saw it, so any method is safe), and
// once more for an idempotent request that failed after it was sent,
// provided no body has been consumed.
func (r *Router) tryBackends(cc *clientConn, st *request, x exchange) (*backendConn, error) {
	var (
		lastErr      error
		resentAfterw bool
	)
	ctx := cc.srv.base
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		ep := r.pick(st)
		if ep == nil {
			break
		}
		st.tried = append(st.tried, ep)
		st.served = ep
		bc, err := st.transport.roundTrip(ctx, ep, x)
		if err == nil {
			return bc, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break // the router is shutting down
		}
		var de *dialError
		dialFailed := errors.As(err, &de)
		if dialFailed {
			ep.failedUntil.Store(r.now().Add(r.cfg.FailTimeout).UnixNano())
		}
		r.log.Debug("backend attempt failed", "app_guid", ep.appGUID, "instance_index", ep.Index,
			"addr", ep.Addr, "attempt", attempt+1, "err", err)
		untouched := cc.body.n == 0 && cc.body.err == nil
		switch {
		case dialFailed && untouched:
		case x.idempotent() && !x.hasBody() && !resentAfterw:
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

// proxyError answers when every attempt failed.
func (r *Router) proxyError(cc *clientConn, st *request, err error) (int, int64) {
	if cc.srv.base.Err() != nil {
		st.routerErr = "client_closed"
		cc.closeAfter = true
		return 499, 0 // nginx's and gorouter's "client closed request"; nobody reads it
	}
	st.routerErr = "endpoint_failure"
	r.log.Warn("routing failed: no backend answered", "host", canonicalHost(cc.head.host),
		"tried", len(st.tried), "err", err)
	const body = "502 Bad Gateway: Registered endpoint failed to handle the request.\n"
	cc.answer(http.StatusBadGateway, "endpoint_failure", body)
	return http.StatusBadGateway, int64(len(body))
}

func isEventStream(contentType string) bool {
	const es = "text/event-stream"
	ct := strings.TrimSpace(contentType)
	return len(ct) >= len(es) && strings.EqualFold(ct[:len(es)], es) && (len(ct) == len(es) || ct[len(es)] == ';' || ct[len(es)] == ' ')
}
