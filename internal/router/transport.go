package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// backendTransport is the router's HTTP/1.1 client to app instances. Unlike
// http.Transport it runs each exchange on the caller's goroutine (no read
// and write loops per connection, no hand-offs between them), which is
// most of a proxied request's cost that is not a system call. Idle
// keep-alive connections are pooled per backend address, checked for a
// close by the peer before reuse, and dropped after idleTimeout.
type backendTransport struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration // for the response head
	idleTimeout   time.Duration
	maxIdle       int // per address

	mu     sync.Mutex
	idle   map[string][]*backendConn
	closed bool
}

type backendConn struct {
	net.Conn
	addr      string
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

func newBackendTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), headerTimeout time.Duration) *backendTransport {
	return &backendTransport{
		dial:          dial,
		headerTimeout: headerTimeout,
		idleTimeout:   90 * time.Second,
		maxIdle:       256,
		idle:          map[string][]*backendConn{},
	}
}

// errStaleConn marks an exchange that failed on a reused connection
// before anything of the response arrived: the backend had closed it.
var errStaleConn = errors.New("backend closed the idle connection")

// RoundTrip sends req to req.URL.Host and returns the response; its body
// gives the connection back to the pool when read to the end.
func (t *backendTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	addr := req.URL.Host
	hasBody := req.Body != nil && req.Body != http.NoBody
	// Only a request that may be sent twice (idempotent, no body) is sent
	// again when a reused connection turns out closed; for any other the
	// connection is checked before use (one extra system call), since the
	// instance may have acted on it before closing.
	replayable := !hasBody && idempotent(req.Method)
	for attempt := 0; ; attempt++ {
		bc, reused, err := t.get(req.Context(), addr, !replayable)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(req, bc, reused)
		if err == nil {
			return resp, nil
		}
		bc.Close()
		if errors.Is(err, errStaleConn) && attempt == 0 && replayable {
			continue
		}
		return nil, err
	}
}

func (t *backendTransport) exchange(req *http.Request, bc *backendConn, reused bool) (*http.Response, error) {
	// The client going away ends the exchange, body included.
	stop := context.AfterFunc(req.Context(), func() { bc.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	send := func() error {
		if err := writeRequest(bc.bw, req); err != nil {
			return err
		}
		return bc.bw.Flush()
	}
	// A request without a body is written before its answer is read, on
	// this goroutine. A body is written on a goroutine of its own while
	// the answer is read, as an instance may answer (413, 401) before it
	// has read the body, and that answer must reach the client.
	var sent chan error
	if req.Body == nil || req.Body == http.NoBody {
		if err := send(); err != nil {
			if reused && isConnGone(err) {
				err = fmt.Errorf("%w: %v", errStaleConn, err)
			}
			return fail(err)
		}
	} else {
		sent = make(chan error, 1)
		go func() { sent <- send() }()
	}
	_ = bc.SetReadDeadline(time.Now().Add(t.headerTimeout))
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(bc.br, req)
		if err != nil {
			if reused && bc.br.Buffered() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnGone(err)) {
				err = fmt.Errorf("%w: %v", errStaleConn, err)
			}
			if sent != nil {
				bc.Close() // ends a body write still waiting on the instance
				<-sent
			}
			return fail(fmt.Errorf("read response from %s: %w", bc.addr, err))
		}
		// Interim answers (100 Continue, 103) are not passed on.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		resp.Body.Close()
	}
	_ = bc.SetReadDeadline(time.Time{})
	keep := !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols
	body := &backendBody{rc: resp.Body, t: t, bc: bc, keep: keep, stop: stop, sent: sent}
	if resp.Body == http.NoBody {
		body.eof = true
	}
	resp.Body = body
	return resp, nil
}

func isConnGone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}

// backendBody returns its connection to the pool once read to the end; a
// body closed early closes the connection.
type backendBody struct {
	rc   io.ReadCloser
	t    *backendTransport
	bc   *backendConn
	keep bool
	stop func() bool
	eof  bool
	once sync.Once
	// sent, for a request with a body, reports the end of its write: the
	// connection is reused only if the whole request went out.
	sent chan error
}

func (b *backendBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *backendBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() {
		reuse := b.eof && b.keep
		if b.sent != nil {
			select {
			case err := <-b.sent:
				reuse = reuse && err == nil
			default:
				// The instance answered without reading the whole body:
				// end the write and do not reuse the connection.
				reuse = false
				b.bc.Close()
				<-b.sent
			}
		}
		// Only a connection the client's cancel did not close goes back.
		if b.stop() && reuse {
			b.t.put(b.bc)
			return
		}
		b.bc.Close()
	})
	return err
}

// get returns an idle connection to addr (with check, one seen to be still
// open), or a new one.
func (t *backendTransport) get(ctx context.Context, addr string, check bool) (*backendConn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for {
		list := t.idle[addr]
		if len(list) == 0 {
			break
		}
		bc := list[len(list)-1]
		list[len(list)-1] = nil
		if len(list) == 1 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = list[:len(list)-1]
		}
		if now.Sub(bc.idleSince) < t.idleTimeout && (!check || stillOpen(bc.Conn)) {
			t.mu.Unlock()
			return bc, true, nil
		}
		bc.Close()
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &backendConn{Conn: c, addr: addr, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}, false, nil
}

// stillOpen peeks at an idle connection without blocking: a peer that
// closed it (EOF), reset it, or sent something unasked makes it unusable.
func stillOpen(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var one [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		open = err == unix.EAGAIN
		return true
	})
	return open
}

func (t *backendTransport) put(bc *backendConn) {
	bc.idleSince = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || len(t.idle[bc.addr]) >= t.maxIdle {
		bc.Close()
		return
	}
	t.idle[bc.addr] = append(t.idle[bc.addr], bc)
}

// sweep closes connections idle for longer than idleTimeout.
func (t *backendTransport) sweep() {
	cutoff := time.Now().Add(-t.idleTimeout)
	t.mu.Lock()
	defer t.mu.Unlock()
	for addr, list := range t.idle {
		kept := list[:0]
		for _, bc := range list {
			if bc.idleSince.Before(cutoff) {
				bc.Close()
			} else {
				kept = append(kept, bc)
			}
		}
		if len(kept) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = kept
		}
	}
}

// closeIdle closes every idle connection and, with shutdown, pools no more.
func (t *backendTransport) closeIdle(shutdown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = t.closed || shutdown
	for addr, list := range t.idle {
		for _, bc := range list {
			bc.Close()
		}
		delete(t.idle, addr)
	}
}

// writeRequest sends req in HTTP/1.1 with the framing the router chooses:
// Content-Length when the body's length is known, chunked when not (the
// inbound framing headers were parsed by net/http and are not passed on).
// Header values come from net/http's parser, which refuses control
// characters, or from the router itself. An empty User-Agent is not sent.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	uri := req.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = req.URL.RequestURI() // absolute-form targets become origin-form
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.Host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding":
			continue
		}
		for _, v := range vv {
			if v == "" && k == "User-Agent" {
				continue
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	body := req.Body
	switch {
	case body == nil || body == http.NoBody || req.ContentLength == 0:
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			w.WriteString("Content-Length: 0\r\n")
		}
		_, err := w.WriteString("\r\n")
		return err
	case req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n\r\n")
		if _, err := io.CopyN(w, body, req.ContentLength); err != nil {
			return fmt.Errorf("send request body: %w", err)
		}
		return nil
	default:
		w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(w)
		if _, err := io.Copy(cw, body); err != nil {
			return fmt.Errorf("send request body: %w", err)
		}
		if err := cw.Close(); err != nil {
			return err
		}
		_, err := w.WriteString("\r\n")
		return err
	}
}
