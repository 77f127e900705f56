// Package connlimit bounds a listener's open connections, in all and per
// client address. A connection past a cap is answered at once (an HTTP 503
// that says which cap) and closed, so a client learns why instead of
// hanging in the accept queue; the router and the API listen through it.
package connlimit

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/internal/connwrap"
)

// Limit is a cap on open connections, in all and per client address,
// that one or more listeners share (the router's HTTP and HTTPS ones).
// Zero caps mean no limit.
type Limit struct {
	max, perClient int
	what           string

	mu     sync.Mutex
	open   int
	byAddr connwrap.PerAddr

	// refusing bounds the goroutines that answer refused connections.
	refusing atomic.Int32
	refused  atomic.Int64
}

// NewLimit returns a cap of max open connections, perClient of them from
// one address (zero or negative: no limit). what names the server in the
// refusal ("the router", "the API").
func NewLimit(max, perClient int, what string) *Limit {
	return &Limit{what: what, max: max, perClient: perClient, byAddr: connwrap.PerAddr{}}
}

// Listener bounds open connections.
type Listener struct {
	net.Listener
	*Limit
	// tls, when set, is how a refusal is answered: over TLS, since the
	// client speaks nothing else.
	tls *tls.Config
}

// maxRefusing bounds concurrent 503 answers to refused connections; past
// it a refused connection is closed without one.
const maxRefusing = 256

// Wrap returns ln with at most max open connections, perClient of them from
// one address (zero or negative: no limit). what names the server in the
// refusal ("the router", "the API").
func Wrap(ln net.Listener, max, perClient int, what string) *Listener {
	return NewLimit(max, perClient, what).Wrap(ln)
}

// Wrap returns ln counted in l.
func (l *Limit) Wrap(ln net.Listener) *Listener {
	return &Listener{Listener: ln, Limit: l}
}

// WrapTLS returns ln counted in l, for a listener that serves TLS with
// cfg around it: connections count from their first byte, handshake
// included, and a refusal is answered over TLS.
func (l *Limit) WrapTLS(ln net.Listener, cfg *tls.Config) *Listener {
	return &Listener{Listener: ln, Limit: l, tls: cfg}
}

// Accept returns the next connection within the caps; those past a cap
// are answered and closed on the side.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := clientAddr(c.RemoteAddr())
		if why := l.admit(addr); why != "" {
			l.refuse(c, why, l.tls)
			continue
		}
		return &limitedConn{Conn: c, l: l.Limit, addr: addr}, nil
	}
}

// admit counts a new connection in, or says which cap it is past.
func (l *Limit) admit(addr netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return fmt.Sprintf("%s has reached its limit of %d connections", l.what, l.max)
	case l.perClient > 0 && l.byAddr[addr] >= l.perClient:
		return fmt.Sprintf("too many connections from %s (limit %d)", addr, l.perClient)
	}
	l.open++
	l.byAddr.Take(addr)
	return ""
}

func (l *Limit) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	l.byAddr.Give(addr)
}

// refuse answers 503 (over TLS with tlsCfg) and closes, without holding
// up Accept.
func (l *Limit) refuse(c net.Conn, why string, tlsCfg *tls.Config) {
	l.refused.Add(1)
	if l.refusing.Add(1) > maxRefusing {
		l.refusing.Add(-1)
		c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if tlsCfg != nil {
			c = tls.Server(c, tlsCfg) // the deferred Close still closes the socket
		}
		body := "503 Service Unavailable: " + why + ".\n"
		fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"X-Cf-Routererror: too_many_connections\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		// Read what the client sent so closing does not reset the
		// connection before it reads the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		buf := make([]byte, 4096)
		for range 16 {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
}

// limitedConn gives its slot back once, on Close.
type limitedConn struct {
	net.Conn
	l    *Limit
	addr netip.Addr
	once sync.Once
}

// CloseWrite and SyscallConn reach the TCP connection underneath, so a
// hijacked connection still half-closes and can be waited on in the poller
// without a buffer (internal/pipe).
func (c *limitedConn) CloseWrite() error { return connwrap.CloseWrite(c.Conn, c.Close) }

func (c *limitedConn) SyscallConn() (syscall.RawConn, error) { return connwrap.SyscallConn(c.Conn) }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
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

// Refused is how many connections were refused so far.
func (l *Limit) Refused() int64 { return l.refused.Load() }

// Open is how many connections are counted in now: accepted within the
// caps and not yet closed.
func (l *Limit) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}
