package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// backendTransport is the router's HTTP/1.1 client to app instances. Unlike
// http.Transport it runs each exchange on the caller's goroutine (no read
// and write loops per connection, no hand-offs between them), writes the
// request head the router built and parses the answer's head into the
// connection's reused buffer (h1.go). Idle
// keep-alive connections are pooled per backend address, checked for a
// close by the peer before reuse, and dropped after idleTimeout.
type backendTransport struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration // for the response head
	idleTimeout   time.Duration
	// maxIdle bounds the idle connections kept per address. It is well
	// above the requests one instance has in flight under load (512
	// client connections in bench/router): a connection closed because
	// the pool was full is dialled again a moment later (at 256, wrk's 512
	// connections made the router open 1,618 to the instance in 5 s
	// instead of 504).
	maxIdle int
	// heads bounds the large response heads read at once (h1.go).
	heads *headSlots

	mu     sync.Mutex
	idle   map[string][]*backendConn
	closed bool
	// serving counts the Serve calls running (plain HTTP and HTTPS
	// share the pool).
	serving int
}

type backendConn struct {
	net.Conn
	addr      string
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	resp      respHead // the last response head read
	// readDeadline is the connection's read deadline, zero for none.
	readDeadline time.Time
	// sent, for a request with a body, reports the end of its write: the
	// connection is reused only if the whole request went out.
	sent chan error
}

func newBackendTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), headerTimeout time.Duration, heads *headSlots) *backendTransport {
	return &backendTransport{
		dial:          dial,
		heads:         heads,
		headerTimeout: headerTimeout,
		idleTimeout:   90 * time.Second,
		maxIdle:       1024,
		idle:          map[string][]*backendConn{},
	}
}

// errStaleConn marks an exchange that failed on a reused connection
// before anything of the response arrived: the backend had closed it.
var errStaleConn = errors.New("backend closed the idle connection")

// exchange is what the transport needs of a request: its head written
// for one endpoint, and its body, if any, written after it.
type exchange interface {
	writeHead(w *bufio.Writer, ep *endpoint)
	// writeBody writes the body after the head (framed as the head
	// said) and flushes; nil when there is no body.
	writeBody(w *bufio.Writer) error
	hasBody() bool
	idempotent() bool
	// using is told the connection the exchange goes over, so that a
	// shutdown can end an exchange still waiting for its answer.
	using(bc *backendConn)
}

// roundTrip sends x to ep and reads the response head into the returned
// connection's resp; its body is read from bc.br, and the connection is
// handed back with done.
func (t *backendTransport) roundTrip(ctx context.Context, ep *endpoint, x exchange) (*backendConn, error) {
	// Only a request that may be sent twice (idempotent, no body) is sent
	// again when a reused connection turns out closed; for any other the
	// connection is checked before use (one extra system call), since the
	// instance may have acted on it before closing.
	replayable := !x.hasBody() && x.idempotent()
	for attempt := 0; ; attempt++ {
		bc, reused, err := t.get(ctx, ep.Addr, !replayable)
		if err != nil {
			return nil, err
		}
		x.using(bc)
		err = t.exchange(bc, reused, ep, x)
		if err == nil {
			return bc, nil
		}
		bc.Close()
		if errors.Is(err, errStaleConn) && attempt == 0 && replayable {
			continue
		}
		return nil, err
	}
}

func (t *backendTransport) exchange(bc *backendConn, reused bool, ep *endpoint, x exchange) error {
	bc.sent = nil
	// A request without a body is written before its answer is read, on
	// this goroutine. A body is written on a goroutine of its own while
	// the answer is read, as an instance may answer (413, 401) before it
	// has read the body, and that answer must reach the client.
	x.writeHead(bc.bw, ep)
	if !x.hasBody() {
		if err := bc.bw.Flush(); err != nil {
			if reused && isConnGone(err) {
				err = fmt.Errorf("%w: %v", errStaleConn, err)
			}
			return err
		}
	} else {
		bc.sent = make(chan error, 1)
		go func() {
			err := x.writeBody(bc.bw)
			if errors.Is(err, errClientBody) {
				bc.Close() // the instance will not get the whole request
			}
			bc.sent <- err
		}()
	}
	// The deadline for the answer's head is moved only when a quarter
	// of it has been used up: re-arming a timer per request costs more
	// than the request's parsing.
	now := time.Now()
	if bc.readDeadline.Sub(now) < t.headerTimeout*3/4 {
		bc.readDeadline = now.Add(t.headerTimeout)
		_ = bc.SetReadDeadline(bc.readDeadline)
	}
	for {
		err := bc.resp.readResponse(bc.br, t.heads)
		if err != nil {
			if reused && bc.br.Buffered() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnGone(err)) {
				err = fmt.Errorf("%w: %v", errStaleConn, err)
			}
			if bc.sent != nil {
				bc.Close() // ends a body write still waiting on the instance
				<-bc.sent
				bc.sent = nil
			}
			return fmt.Errorf("read response from %s: %w", bc.addr, err)
		}
		// Interim answers (100 Continue, 103) are not passed on; a
		// switch nobody asked for (upgrades do not come here) is an error.
		if bc.resp.status >= 200 {
			break
		}
		if bc.resp.status == 101 {
			bc.Close()
			if bc.sent != nil {
				<-bc.sent
				bc.sent = nil
			}
			return fmt.Errorf("read response from %s: %w: 101 to a request that asked for no upgrade", bc.addr, errBadResponse)
		}
	}
	// The body has no deadline, unless all of it is here already.
	if r := &bc.resp; r.chunked || r.length < 0 || int64(bc.br.Buffered()) < r.length {
		bc.readDeadline = time.Time{}
		_ = bc.SetReadDeadline(bc.readDeadline)
	}
	return nil
}

func isConnGone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}

// bodySent reports whether the request body (if any) went out in full;
// wait blocks until its write ends.
func (bc *backendConn) bodySent(wait bool) (done, ok bool) {
	if bc.sent == nil {
		return true, true
	}
	if wait {
		err := <-bc.sent
		bc.sent = nil
		return true, err == nil
	}
	select {
	case err := <-bc.sent:
		bc.sent = nil
		return true, err == nil
	default:
		return false, false
	}
}

// done hands bc back after its answer: to the pool when reuse and the
// whole request went out, else closed. A body write still running is
// ended first.
func (t *backendTransport) done(bc *backendConn, reuse bool) {
	if done, ok := bc.bodySent(false); !done {
		// The instance answered without reading the whole body: end the
		// write and do not reuse the connection.
		bc.Close()
		bc.bodySent(true)
		return
	} else if !ok {
		reuse = false
	}
	if reuse {
		if cap(bc.resp.buf) > keptHeadBytes { // a huge head is not kept
			bc.resp.buf, bc.resp.fields = nil, nil
		}
		t.put(bc)
		return
	}
	bc.Close()
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
	if tc, ok := c.(*tls.Conn); ok {
		// A route service's: the socket under it (a close_notify
		// waiting there counts as something unasked).
		c = tc.NetConn()
	}
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
	if cap(bc.resp.buf) > 64<<10 { // an answer's huge head is not kept
		bc.resp.buf, bc.resp.fields = nil, nil
	}
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

// open lets connections be pooled, for a Serve (or ServeTLS) starting.
func (t *backendTransport) open() {
	t.mu.Lock()
	t.serving++
	t.closed = false
	t.mu.Unlock()
}

// release is open's counterpart, when a Serve ends: with the last one,
// the pool is emptied and keeps no more connections.
func (t *backendTransport) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.serving--; t.serving <= 0 {
		t.serving = 0
		t.closed = true
		t.closeIdleLocked()
	}
}

// closeIdleLocked closes every idle connection; t.mu is held.
func (t *backendTransport) closeIdleLocked() {
	for addr, list := range t.idle {
		for _, bc := range list {
			bc.Close()
		}
		delete(t.idle, addr)
	}
}
