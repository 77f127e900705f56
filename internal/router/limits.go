package router

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter is a listener that bounds open connections, in all and per
// client address. A connection past either cap is answered with a 503 at
// once and closed, so a client sees why instead of hanging in the backlog.
type connLimiter struct {
	net.Listener
	max, perClient int

	mu     sync.Mutex
	open   int
	byAddr map[netip.Addr]int

	// refusing bounds the goroutines that answer refused connections.
	refusing atomic.Int32
	refused  atomic.Int64
}

// maxRefusing bounds concurrent 503 answers to refused connections; past
// it a refused connection is closed without one.
const maxRefusing = 256

func newConnLimiter(ln net.Listener, max, perClient int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, perClient: perClient, byAddr: map[netip.Addr]int{}}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := clientAddr(c.RemoteAddr())
		if why := l.admit(addr); why != "" {
			l.refuse(c, why)
			continue
		}
		return &limitedConn{Conn: c, l: l, addr: addr}, nil
	}
}

// admit counts a new connection in, or says which cap it is past.
func (l *connLimiter) admit(addr netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return fmt.Sprintf("the router has reached its limit of %d connections", l.max)
	case l.perClient > 0 && l.byAddr[addr] >= l.perClient:
		return fmt.Sprintf("too many connections from %s (limit %d)", addr, l.perClient)
	}
	l.open++
	l.byAddr[addr]++
	return ""
}

func (l *connLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byAddr[addr] - 1; n > 0 {
		l.byAddr[addr] = n
	} else {
		delete(l.byAddr, addr)
	}
}

// refuse answers 503 and closes, without holding up Accept.
func (l *connLimiter) refuse(c net.Conn, why string) {
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
		body := "503 Service Unavailable: " + why + ".\n"
		fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"X-Cf-Routererror: too_many_connections\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		// Read what the client sent so closing does not reset the
		// connection before it reads the answer.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
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
	l    *connLimiter
	addr netip.Addr
	once sync.Once
}

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

// appLimiter bounds the requests (websockets included) in flight per app.
type appLimiter struct {
	max    int
	mu     sync.Mutex
	counts map[string]int
}

func newAppLimiter(max int) *appLimiter {
	return &appLimiter{max: max, counts: map[string]int{}}
}

// acquire takes a slot for app; false when the app is at its cap.
func (a *appLimiter) acquire(app string) bool {
	if a.max <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts[app] >= a.max {
		return false
	}
	a.counts[app]++
	return true
}

func (a *appLimiter) release(app string) {
	if a.max <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.counts[app] - 1; n > 0 {
		a.counts[app] = n
	} else {
		delete(a.counts, app)
	}
}
