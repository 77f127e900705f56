// Package headbudget bounds the memory an http.Server spends on large
// request heads. net/http reads a whole head (up to MaxHeaderBytes) before
// a handler sees it, at a few times its size, so thousands of connections
// trickling large heads would hold hundreds of MBs. A Budget counts each
// head's bytes as they arrive: past Config.Small a head takes one of a
// few shared slots until its request ends, and one that finds none is
// answered 503 at once and closed. Smaller heads are never held up. The
// API listens through it (the router bounds its own heads, internal/router).
package headbudget

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/internal/connwrap"
)

// Config sizes a Budget.
type Config struct {
	// Small is how many bytes a head may take without a slot.
	Small int
	// Slots bounds the heads past Small read (and their requests served)
	// at once; PerClient bounds those of one client address, so one
	// address cannot take them all. Zero PerClient: no per-address bound.
	Slots, PerClient int
	// What names the server in the refusal ("the API").
	What string
}

// Budget is the slots for large heads that the connections of one or more
// listeners share.
type Budget struct {
	cfg Config

	mu     sync.Mutex
	held   int
	byAddr connwrap.PerAddr

	refused atomic.Int64
}

// New returns a Budget of cfg.
func New(cfg Config) *Budget {
	return &Budget{cfg: cfg, byAddr: connwrap.PerAddr{}}
}

// Wrap returns ln with its connections' heads counted, and sets srv's
// ConnState hook (calling any hook srv had) to tell where each head
// starts and its request ends. srv must serve plain HTTP/1.1 from the
// returned listener: the count runs on the bytes net/http reads.
func (b *Budget) Wrap(srv *http.Server, ln net.Listener) net.Listener {
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if hc, ok := c.(*conn); ok && hc.b == b {
			hc.state(s)
		}
		if next != nil {
			next(c, s)
		}
	}
	return &listener{Listener: ln, b: b}
}

// Held is how many large-head slots are taken.
func (b *Budget) Held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// Refused is how many heads were refused so far.
func (b *Budget) Refused() int64 { return b.refused.Load() }

// acquire takes a slot for a head from addr, or says why there is none.
func (b *Budget) acquire(addr netip.Addr) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.cfg.PerClient > 0 && b.byAddr[addr] >= b.cfg.PerClient:
		return fmt.Sprintf("too many large request heads (over %d KiB) from %s at once (limit %d)", b.cfg.Small>>10, addr, b.cfg.PerClient)
	case b.held >= b.cfg.Slots:
		return fmt.Sprintf("%s is reading too many large request heads (over %d KiB) at once", b.cfg.What, b.cfg.Small>>10)
	}
	b.held++
	b.byAddr.Take(addr)
	return ""
}

func (b *Budget) release(addr netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held--
	b.byAddr.Give(addr)
}

type listener struct {
	net.Listener
	b *Budget
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, b: l.b, addr: clientAddr(c.RemoteAddr()), counting: true}, nil
}

// errRefused ends net/http's read of a refused head. It comes wrapped in
// a *net.OpError of a read, which net/http closes the connection on
// without answering (the refusal has been answered already).
var errRefused = errors.New("request head refused: no large-head slot")

// conn counts the bytes of each request head read from it, from where
// net/http starts reading one (the connection's start, StateIdle) to the
// blank line that ends it or StateActive, whichever comes first.
type conn struct {
	net.Conn
	b    *Budget
	addr netip.Addr

	mu       sync.Mutex
	counting bool
	closed   bool // hijacked or closed: nothing more to count
	n        int  // bytes of the head so far
	end      endScan
	held     bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if why := c.count(p[:n]); why != "" {
			c.refuse(why)
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errRefused}
		}
	}
	return n, err
}

// count adds the head bytes of p; past Small it takes a slot, or says why
// there is none.
func (c *conn) count(p []byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.counting {
		return ""
	}
	k, ended := c.end.feed(p)
	c.n += k
	if ended {
		c.counting = false
	}
	if c.n > c.b.cfg.Small && !c.held {
		if why := c.b.acquire(c.addr); why != "" {
			c.counting, c.closed = false, true
			return why
		}
		c.held = true
	}
	return ""
}

// state follows net/http's view of the connection: StateActive once a
// head is read, StateIdle when its request has ended and the next head
// may come.
func (c *conn) state(s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateActive:
		c.counting = false
	case http.StateIdle:
		c.giveBack()
		if !c.closed {
			c.counting, c.n, c.end = true, 0, endScan{}
		}
	case http.StateHijacked, http.StateClosed:
		c.giveBack()
		c.counting, c.closed = false, true
	}
}

// giveBack releases c's slot, if it holds one; c.mu is held.
func (c *conn) giveBack() {
	if c.held {
		c.held = false
		c.b.release(c.addr)
	}
}

// CloseWrite and SyscallConn reach the connection underneath: net/http
// half-closes before closing, and a hijacked connection may be waited on
// in the poller (internal/pipe).
func (c *conn) CloseWrite() error { return connwrap.CloseWrite(c.Conn, c.Close) }

func (c *conn) SyscallConn() (syscall.RawConn, error) { return connwrap.SyscallConn(c.Conn) }

// Close gives back the slot too: a server closed under its connections
// may not report them closed.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.state(http.StateClosed)
	return err
}

// maxDrain bounds what a refusal reads of the rest of the request (net/http
// would refuse a head past 1 MiB anyway) so closing does not reset the
// connection before the client reads the answer.
const maxDrain = 1 << 20

// refuse answers 503 with why on the connection itself and reads what the
// client still sends, for at most 2 s.
func (c *conn) refuse(why string) {
	c.b.refused.Add(1)
	_ = c.Conn.SetDeadline(time.Now().Add(2 * time.Second))
	body := "503 Service Unavailable: " + why + "; retry, or send a smaller head.\n"
	fmt.Fprintf(c.Conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	buf := make([]byte, 4096)
	for read := 0; read < maxDrain; {
		n, err := c.Conn.Read(buf)
		if err != nil {
			return
		}
		read += n
	}
}

// endScan finds the blank line that ends a head ("\n\n" or "\n\r\n", as
// net/http takes bare newlines too) across reads.
type endScan struct {
	lineStart bool // the last byte ended a line
	cr        bool // and a '\r' followed it
}

// feed scans p and returns how many of its bytes belong to the head and
// whether the head ended in them.
func (s *endScan) feed(p []byte) (int, bool) {
	for i, ch := range p {
		switch {
		case ch == '\n' && s.lineStart:
			return i + 1, true
		case ch == '\n':
			s.lineStart, s.cr = true, false
		case ch == '\r' && s.lineStart && !s.cr:
			s.cr = true
		default:
			s.lineStart, s.cr = false, false
		}
	}
	return len(p), false
}

func clientAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
