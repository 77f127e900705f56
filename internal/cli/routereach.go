package cli

import (
	"net"
	"net/url"
	"strings"
)

// routeReachNote says how to reach apps whose route names do not lead to
// the router, or "" when they do (as far as the CLI can know without DNS).
// Names under localhost are sent to 127.0.0.1 or ::1 by browsers and curl
// (RFC 6761), so a router listening on another address (127.0.0.2, a
// LAN address, a remote machine) is not reached by http://web.localhost:PORT.
// Other names are the operator's DNS, which the CLI does not second-guess.
func routeReachNote(base, api *url.URL, hosts []string) string {
	addr := routerAddr(base, api)
	if addr == "" {
		return ""
	}
	var lost []string
	for _, h := range hosts {
		h = strings.ToLower(h)
		if h == "localhost" || strings.HasSuffix(h, ".localhost") {
			lost = append(lost, h)
		}
	}
	if len(lost) == 0 {
		return ""
	}
	scheme := base.Scheme
	if scheme == "" {
		scheme = "http"
	}
	port := base.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	how := "curl -H 'Host: " + lost[0] + "' " + scheme + "://" + net.JoinHostPort(addr, port) + "/"
	if scheme == "https" {
		// A Host header would not set the TLS server name the router
		// picks its certificate by.
		how = "curl --connect-to ::" + net.JoinHostPort(addr, port) + " https://" + net.JoinHostPort(lost[0], port) + "/"
	}
	return "note: the router listens on " + net.JoinHostPort(addr, port) + ", where names under localhost do not lead " +
		"(browsers and curl send them to 127.0.0.1); reach an app with e.g. " + how +
		", or name the router's address for its routes in /etc/hosts or DNS\n"
}

// routerAddr is the IP address the router is reached at when it is not
// this machine's loopback 127.0.0.1 or ::1, else "": a router listening on
// every address (0.0.0.0, ::) is reached where the API is.
func routerAddr(base, api *url.URL) string {
	if base == nil {
		return ""
	}
	ip := net.ParseIP(base.Hostname())
	if ip != nil && ip.IsUnspecified() && api != nil {
		ip = net.ParseIP(api.Hostname())
	}
	if ip == nil || ip.IsUnspecified() || ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback) {
		return ""
	}
	return ip.String()
}

// routeHost is the host name of a route as api.Route.URL shows it
// (host.domain/path, no scheme).
func routeHost(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	if h, _, err := net.SplitHostPort(u); err == nil {
		return h
	}
	return u
}
