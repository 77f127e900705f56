package uaa

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// maxLockoutEntries bounds the failure table, so guessing at many user
// names from many addresses cannot grow memory without limit.
const maxLockoutEntries = 10000

// lockout refuses password grants for a user name from one client address
// after too many recent failures there, as UAA does per user. Keying by
// address too means a stranger's wrong guesses lock only the stranger out,
// never the user logging in from elsewhere. It is in memory: a restart
// forgets it.
type lockout struct {
	limit    int
	window   time.Duration
	duration time.Duration

	mu      sync.Mutex
	entries map[string]*lockEntry
}

type lockEntry struct {
	failures    int
	windowStart time.Time
	lockedUntil time.Time
}

func newLockout(limit int, window, duration time.Duration) *lockout {
	return &lockout{limit: limit, window: window, duration: duration, entries: map[string]*lockEntry{}}
}

func lockKey(name string, client clientAddr) string {
	return strings.ToLower(name) + "\x00" + client.key
}

// locked reports whether name is locked out from client. Loopback clients
// are never locked out: the operator on the server's own machine must be
// able to log in whatever strangers try (they are still rate limited).
func (l *lockout) locked(name string, client clientAddr, now time.Time) bool {
	if client.loopback {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[lockKey(name, client)]
	return e != nil && now.Before(e.lockedUntil)
}

func (l *lockout) fail(name string, client clientAddr, now time.Time) {
	if client.loopback {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lockKey(name, client)
	e := l.entries[k]
	if e == nil {
		if len(l.entries) >= maxLockoutEntries {
			l.pruneLocked(now)
		}
		e = &lockEntry{windowStart: now}
		l.entries[k] = e
	}
	if now.Sub(e.windowStart) > l.window {
		e.failures, e.windowStart = 0, now
	}
	e.failures++
	if e.failures >= l.limit {
		e.lockedUntil = now.Add(l.duration)
		e.failures, e.windowStart = 0, now
	}
}

func (l *lockout) succeed(name string, client clientAddr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, lockKey(name, client))
}

// pruneLocked drops stale entries; if all are fresh, it drops arbitrary
// unlocked ones, then arbitrary ones, until there is room.
func (l *lockout) pruneLocked(now time.Time) {
	for k, e := range l.entries {
		if now.Sub(e.windowStart) > l.window && !now.Before(e.lockedUntil) {
			delete(l.entries, k)
		}
	}
	for k, e := range l.entries {
		if len(l.entries) < maxLockoutEntries {
			return
		}
		if !now.Before(e.lockedUntil) {
			delete(l.entries, k)
		}
	}
	for k := range l.entries {
		if len(l.entries) < maxLockoutEntries {
			return
		}
		delete(l.entries, k)
	}
}

// clientAddr is who a login comes from, as far as lockout and rate limits
// are concerned: the TCP peer's address (X-Forwarded-For is not trusted),
// an IPv6 address counted by its /64, which one host usually owns whole.
type clientAddr struct {
	key      string
	loopback bool
}

// clientAddr is the address login protection counts a request against:
// the peer, or, when the peer is a trusted proxy, the last address in
// X-Forwarded-For that is not itself a trusted proxy.
func (s *Service) clientAddr(r *http.Request) string {
	if len(s.trusted) == 0 || !trustedPeer(r.RemoteAddr, s.trusted) {
		return r.RemoteAddr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if !trustedPeer(hops[i], s.trusted) {
			return hops[i]
		}
	}
	return r.RemoteAddr
}

func trustedPeer(addr string, trusted []netip.Prefix) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func clientOf(remoteAddr string) clientAddr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// Not an IP (a unix socket, a test): one bucket for all of them.
		return clientAddr{key: "other:" + host}
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() {
		return clientAddr{key: ip.String(), loopback: true}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return clientAddr{key: p.String()}
	}
	return clientAddr{key: ip.String()}
}
