package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	for attempt := 0; ; attempt++ {
		// A request without a body is simply sent again if the reused
		// connection turns out closed; one with a body cannot be, so its
		// connection is checked first (one extra system call).
		hasBody := req.Body != nil && req.Body != http.NoBody
		bc, reused, err := t.get(req.Context(), addr, hasBody)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(req, bc, reused)
		if err == nil {
			return resp, nil
		}
		bc.Close()
		// A reused connection the backend had closed: once more on a
		// fresh one, if nothing of the body was sent.
		if errors.Is(err, errStaleConn) && attempt == 0 && bodyUnread(req) {
			continue
		}
		return nil, err
	}
}

// bodyUnread reports whether req's body can be sent again.
func bodyUnread(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if tb, ok := req.Body.(*trackedBody); ok {
		return tb.n == 0
	}
	return false
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
	if err := req.Write(bc.bw); err != nil {
		if reused && isConnGone(err) {
			err = fmt.Errorf("%w: %v", errStaleConn, err)
		}
		return fail(err)
	}
	if err := bc.bw.Flush(); err != nil {
		if reused && isConnGone(err) {
			err = fmt.Errorf("%w: %v", errStaleConn, err)
		}
		return fail(err)
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
			return fail(fmt.Errorf("read response from %s: %w", bc.addr, err))
		}
		// Interim answers (100 Continue, 103) are not passed on.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		resp.Body.Close()
	}
	_ = bc.SetReadDeadline(time.Time{})
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	body := &backendBody{rc: resp.Body, t: t, bc: bc, keep: keep, stop: stop}
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
		// Only a connection the client's cancel did not close goes back.
		if b.stop() && b.eof && b.keep {
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
