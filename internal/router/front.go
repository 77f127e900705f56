package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The router's HTTP/1.1 front end. Each client connection is served by
// one goroutine running a keep-alive loop: it reads a request head into
// the connection's reused buffer (h1.go), routes it, writes the request
// on to the instance and relays the answer (proxy.go), then reads the
// next request. Requests sent ahead (pipelined) wait in the connection's
// reader and are answered in order. Unlike net/http's server there is no
// header map, no request context and no background read per request.

// server is the state of one Serve call: its connections, for shutdown.
type server struct {
	r        *Router
	base     context.Context
	mu       sync.Mutex
	conns    map[*clientConn]struct{}
	shutting atomic.Bool
	wg       sync.WaitGroup
}

// A connection's state, for shutdown: idle ones are closed at once,
// active ones are let finish their request, tunnels end with the base
// context.
const (
	stateIdle int32 = iota
	stateActive
	stateTunnel
	stateClosed
)

// clientConn is one client connection.
type clientConn struct {
	srv    *server
	r      *Router
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string // "ip:port"
	// client is the connection's address and trusted whether it is a
	// configured proxy; both are worked out once per connection.
	client  string
	trusted bool
	// tls is the handshake's outcome on an HTTPS connection, else nil.
	tls   *tls.ConnectionState
	state atomic.Int32
	// backend is the instance connection of the exchange in progress, so
	// a forced shutdown can end it.
	backend atomic.Pointer[backendConn]

	head reqHead
	// headCnt counts the request head; a large one holds its slot until
	// the request ends.
	headCnt headCount
	body    reqBody   // the request's body reader, reset per request
	armed   time.Time // when the write deadline was last set

	// For Expect: 100-continue, guarded by wmu: whether the answer has
	// begun (no 100 Continue after that) and whether one was sent.
	wmu           sync.Mutex
	answering     bool
	continueSent  bool
	dateSec       int64
	date          []byte
	closeAfter    bool // this answer ends the connection
	bodyAbandoned bool // the request body was not read to its end
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
// caps and, for HTTPS, done with their handshake (*tls.Conn).
func (r *Router) serve(ctx context.Context, ln net.Listener) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	r.transport.open()
	if r.rsTransport != nil {
		r.rsTransport.open()
	}
	srv := &server{r: r, base: base, conns: map[*clientConn]struct{}{}}
	errc := make(chan error, 1)
	go func() { errc <- srv.accept(ln) }()
	sweeps := make(chan struct{})
	go func() {
		defer close(sweeps)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.transport.sweep()
				if r.rsTransport != nil {
					r.rsTransport.sweep()
				}
			case <-base.Done():
				return
			}
		}
	}()
	defer func() { cancelBase(); <-sweeps }()
	var serveErr error
	select {
	case err := <-errc:
		ln.Close() // a TLS listener's handshakes stop with it
		if err != nil {
			serveErr = fmt.Errorf("router serve %s: %w", ln.Addr(), err)
		}
	case <-ctx.Done():
		ln.Close()
		<-errc
	}
	if !srv.shutdown(r.cfg.ShutdownTimeout) {
		r.log.Warn("router shutdown timed out; closing connections")
	}
	cancelBase() // ends upgraded (websocket) connections
	srv.closeAll()
	srv.wg.Wait()
	r.transport.release()
	if r.rsTransport != nil {
		r.rsTransport.release()
	}
	return serveErr
}

// accept runs the accept loop until ln is closed; a shortage of file
// descriptors or memory is waited out, as net/http does.
func (s *server) accept(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
				errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.r.log.Warn("router accept failed; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-s.base.Done():
					return nil
				}
				continue
			}
			return err
		}
		delay = 0
		cc := s.newConn(c)
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[cc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go cc.serve()
	}
}

func (s *server) newConn(c net.Conn) *clientConn {
	r := s.r
	cc := &clientConn{srv: s, r: r, c: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}
	cc.headCnt.slots = r.heads
	cc.remote = c.RemoteAddr().String()
	cc.client = cc.remote
	if host, _, err := net.SplitHostPort(cc.remote); err == nil {
		cc.client = host
	}
	cc.trusted = r.trusted(cc.client)
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cc.tls = &st
	}
	return cc
}

// shutdown closes idle connections and waits up to timeout for active
// ones to finish their request; false when some did not.
func (s *server) shutdown(timeout time.Duration) bool {
	s.shutting.Store(true)
	deadline := time.Now().Add(timeout)
	for {
		busy := 0
		s.mu.Lock()
		for cc := range s.conns {
			switch {
			case cc.state.CompareAndSwap(stateIdle, stateClosed):
				cc.c.Close()
			case cc.state.Load() == stateActive:
				busy++
			}
		}
		s.mu.Unlock()
		if busy == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polls as net/http's Shutdown does
	}
}

// closeAll ends every connection left, with the exchange it is in.
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		cc.state.Store(stateClosed)
		cc.c.Close()
		if bc := cc.backend.Load(); bc != nil {
			bc.Close()
		}
	}
}

func (cc *clientConn) serve() {
	s := cc.srv
	defer func() {
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	defer cc.c.Close()
	defer cc.headCnt.done()
	r := cc.r
	// A new connection has ReadHeaderTimeout for its first request, a
	// kept-alive one IdleTimeout for the next to start.
	_ = cc.c.SetReadDeadline(r.now().Add(r.cfg.ReadHeaderTimeout))
	first := true
	for {
		if !first && cc.br.Buffered() == 0 {
			_ = cc.c.SetReadDeadline(r.now().Add(r.cfg.IdleTimeout))
			if _, err := cc.br.Peek(1); err != nil {
				return
			}
			cc.headerDeadline()
		} else if !first {
			cc.headerDeadline()
		} else if _, err := cc.br.Peek(1); err != nil {
			return
		}
		first = false
		if !cc.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by shutdown
		}
		if err := cc.head.readRequest(cc.br, &cc.headCnt); err != nil {
			var he *headError
			if errors.As(err, &he) {
				cc.refuse(he)
			}
			return
		}
		cc.closeAfter = !cc.head.keepAlive() || s.shutting.Load()
		cc.bodyAbandoned = false
		cc.answering, cc.continueSent = false, false
		cc.body.reset(cc)
		r.serveRequest(cc)
		if cc.closeAfter {
			if cc.bodyAbandoned {
				cc.lingerClose()
			}
			return
		}
		if cap(cc.head.buf) > keptHeadBytes { // a huge head is not kept
			cc.head.buf, cc.head.fields = nil, nil
		}
		cc.headCnt.done()
		if !cc.state.CompareAndSwap(stateActive, stateIdle) || s.shutting.Load() {
			return
		}
	}
}

// headerDeadline gives the request head ReadHeaderTimeout to arrive,
// unless all of it is here already (the common case, which then costs no
// timer).
func (cc *clientConn) headerDeadline() {
	if p, _ := cc.br.Peek(cc.br.Buffered()); bytes.Contains(p, []byte("\r\n\r\n")) {
		return
	}
	_ = cc.c.SetReadDeadline(cc.r.now().Add(cc.r.cfg.ReadHeaderTimeout))
}

// refuse answers a malformed request and closes.
func (cc *clientConn) refuse(he *headError) {
	body := strconv.Itoa(he.status) + " " + http.StatusText(he.status) + ": " + he.reason + "\n"
	cc.armWrite()
	fmt.Fprintf(cc.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		he.status, http.StatusText(he.status), len(body), body)
	if cc.bw.Flush() == nil {
		cc.lingerClose()
	}
}

// lingerClose half-closes and reads what the client still sends for half
// a second before the close, so that the client reads the answer instead
// of a reset (net/http's rstAvoidanceDelay); the time bounds the bytes.
func (cc *clientConn) lingerClose() {
	if cw, ok := cc.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = cc.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.Copy(io.Discard, cc.c)
}

// armWrite gives the answer's next write WriteTimeout. Re-arming the
// timer costs more than the writes of a small answer, so it is moved
// only once a quarter of the timeout has passed since it was last set.
func (cc *clientConn) armWrite() {
	now := cc.r.now()
	if !cc.armed.IsZero() && now.Sub(cc.armed) < cc.r.cfg.WriteTimeout/4 {
		return
	}
	cc.armed = now
	_ = cc.c.SetWriteDeadline(now.Add(cc.r.cfg.WriteTimeout))
}

// beginAnswer marks the answer as started: no 100 Continue goes out
// after it.
func (cc *clientConn) beginAnswer() {
	if !cc.head.expectContinue {
		return
	}
	cc.wmu.Lock()
	cc.answering = true
	cc.wmu.Unlock()
}

// sendContinue answers Expect: 100-continue when the body is first read,
// unless the answer has begun.
func (cc *clientConn) sendContinue() {
	if !cc.head.expectContinue || cc.head.minor == 0 {
		return
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if cc.answering || cc.continueSent {
		return
	}
	cc.continueSent = true
	_ = cc.c.SetWriteDeadline(time.Now().Add(cc.r.cfg.WriteTimeout))
	_, _ = io.WriteString(cc.c, "HTTP/1.1 100 Continue\r\n\r\n")
}

// appendDate appends a Date header line, formatted once a second.
func (cc *clientConn) appendDate(b []byte) []byte {
	now := cc.r.now()
	if sec := now.Unix(); sec != cc.dateSec || cc.date == nil {
		cc.dateSec = sec
		cc.date = now.UTC().AppendFormat(cc.date[:0], http.TimeFormat)
	}
	b = append(b, "Date: "...)
	b = append(b, cc.date...)
	return append(b, "\r\n"...)
}

// answer writes the router's own answer (gorouter's 404/502/503 pages):
// plain text, with X-Cf-Routererror. A request body the client is still
// sending is read and dropped, up to 256 KiB, so the connection can be
// kept; past that, or if the client waits for 100 Continue, it is closed.
func (cc *clientConn) answer(status int, routerError, body string) {
	cc.beginAnswer()
	if !cc.discardBody() {
		cc.closeAfter = true
	}
	b := cc.bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	b = cc.appendDate(b)
	if routerError != "" {
		b = append(b, "X-Cf-Routererror: "...)
		b = append(b, routerError...)
		b = append(b, "\r\n"...)
	}
	if cc.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	} else if cc.head.minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	if string(cc.head.method) != http.MethodHead {
		b = append(b, body...)
	}
	cc.armWrite()
	if _, err := cc.bw.Write(b); err == nil {
		err = cc.bw.Flush()
		if err != nil {
			cc.closeAfter = true
		}
	}
}

// discardBody reads what is left of a request body the answer does not
// need; false when the connection cannot be kept.
func (cc *clientConn) discardBody() bool {
	h := &cc.head
	if !h.hasBody() {
		return true
	}
	if h.expectContinue && !cc.continueSent {
		return false // the client waits for a go-ahead that will not come
	}
	if !h.chunked && h.length > 256<<10 {
		cc.bodyAbandoned = true
		return false
	}
	if n, err := io.CopyN(io.Discard, &cc.body, 256<<10+1); err != io.EOF || n > 256<<10 {
		cc.bodyAbandoned = true
		return false
	}
	return true
}
