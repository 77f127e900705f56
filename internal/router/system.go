package router

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/pandoplatform/pando/internal/certs"
)

// SystemRoutes are the platform's own hosts, served in-process instead
// of routed to apps, as CF's gorouter routes them to its system
// components: api., uaa., login. and log-cache. under Domain, and any
// Host that is an IP address (so `cf api https://IP` finds the API).
// Handler gets the request as the client sent it (its own address,
// X-Forwarded-For untouched) except X-Forwarded-Proto, which the router
// sets: "https" for its TLS listener, else "http" unless a trusted proxy
// said otherwise.
type SystemRoutes struct {
	Domain  string
	Handler http.Handler
}

// SystemHostLabels are the system hosts' first labels.
var SystemHostLabels = []string{"api", "uaa", "login", "log-cache"}

func (s *SystemRoutes) normalized() *SystemRoutes {
	n := *s
	n.Domain = strings.TrimSuffix(strings.ToLower(s.Domain), ".")
	return &n
}

// match says host (canonical: lower case, no port) is a system host.
func (s *SystemRoutes) match(host string) bool {
	if s == nil {
		return false
	}
	if isIP(host) {
		return true
	}
	label, rest, ok := strings.Cut(host, ".")
	return ok && rest == s.Domain && slices.Contains(SystemHostLabels, label)
}

func (r *Router) serveSystem(w http.ResponseWriter, req *http.Request) {
	_, proto := r.forwarded(req)
	req.Header["X-Forwarded-Proto"] = []string{proto}
	r.cfg.System.Handler.ServeHTTP(w, req)
}

// ServeTLS serves HTTPS with cfg on ln until ctx ends, as Serve does
// plain HTTP. Its connections count in the same caps as Serve's from
// their first byte, and their TLS handshake must finish within
// ReadHeaderTimeout.
func (r *Router) ServeTLS(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	if r.conns != nil {
		ln = r.conns.WrapTLS(ln, cfg)
	}
	return r.serve(ctx, certs.NewListener(ln, cfg, r.cfg.ReadHeaderTimeout, r.log))
}

// isIP says host is an IP address literal. Names are ruled out without
// parsing (a failed parse allocates, and this runs per request): IPv4
// ends in a digit, IPv6 has a colon.
func isIP(host string) bool {
	if host == "" {
		return false
	}
	if last := host[len(host)-1]; (last < '0' || last > '9') && strings.IndexByte(host, ':') < 0 {
		return false
	}
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil
}
