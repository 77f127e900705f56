package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/certs"
	"github.com/pandoplatform/pando/internal/router"
	"golang.org/x/sync/errgroup"
)

// routerTLS is the router's HTTPS listener and certificates.
type routerTLS struct {
	ln         net.Listener
	certs      []*certs.Cert
	selfSigned bool
}

// listenRouterTLS listens on --router-tls-addr and loads or makes its
// certificates, or returns nil when HTTPS is off.
func listenRouterTLS(cfg Config, log *slog.Logger) (*routerTLS, error) {
	if cfg.RouterTLSAddr == "" {
		if len(cfg.TLSCertFiles) > 0 || len(cfg.TLSKeyFiles) > 0 {
			return nil, errors.New("--tls-cert and --tls-key are for the router's HTTPS: give --router-tls-addr too")
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.RouterTLSAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on router HTTPS address %s: %w (use --router-tls-addr)", cfg.RouterTLSAddr, err)
	}
	var listenIP netip.Addr
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		listenIP, _ = netip.AddrFromSlice(ta.IP)
	}
	cs, selfSigned, err := routerCerts(cfg, listenIP, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &routerTLS{ln: ln, certs: cs, selfSigned: selfSigned}, nil
}

// routerCerts are the router's HTTPS certificates: the operator's (one
// pair per --tls-cert/--tls-key, e.g. one per domain), else the
// self-signed one kept in the data dir, made for the app domain's
// wildcard, the system hosts, localhost, loopback, the listen address and
// the machine's addresses.
func routerCerts(cfg Config, listenIP netip.Addr, log *slog.Logger) (cs []*certs.Cert, selfSigned bool, err error) {
	if len(cfg.TLSCertFiles) != len(cfg.TLSKeyFiles) {
		return nil, false, fmt.Errorf("%d --tls-cert but %d --tls-key: give them in pairs", len(cfg.TLSCertFiles), len(cfg.TLSKeyFiles))
	}
	for i := range cfg.TLSCertFiles {
		c, err := certs.Load(cfg.TLSCertFiles[i], cfg.TLSKeyFiles[i])
		if err != nil {
			return nil, false, err
		}
		cs = append(cs, c)
	}
	if len(cs) > 0 {
		return cs, false, nil
	}
	want := certs.Names{DNS: []string{"*." + cfg.Domain}}
	for _, l := range router.SystemHostLabels {
		want.DNS = append(want.DNS, l+"."+cfg.SystemDomain)
	}
	want.DNS = append(want.DNS, "localhost")
	want.IPs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	if listenIP.IsValid() && !listenIP.IsUnspecified() {
		want.IPs = append(want.IPs, listenIP.Unmap())
	}
	want.MoreIPs = machineIPs(log)
	c, created, err := certs.SelfSigned(cfg.DataDir, want, time.Now())
	if err != nil {
		return nil, true, err
	}
	if created {
		log.Info("made a self-signed certificate for the router's HTTPS", "cert", c.CertFile, "names", c.Leaf().DNSNames)
	}
	return []*certs.Cert{c}, true, nil
}

// machineIPs are the machine's unicast addresses, link-local ones aside.
func machineIPs(log *slog.Logger) []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		log.Warn("list the machine's addresses for the router certificate", "err", err)
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, ip.Unmap())
	}
	return out
}

// certNotice is what `pando server` prints about the router's HTTPS.
func certNotice(url string, cs []*certs.Cert, selfSigned bool) string {
	kind := "certificate"
	if selfSigned {
		kind = "self-signed certificate"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Router HTTPS: %s\n", url)
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s %s (%s; expires %s)\n  SHA-256 fingerprint %s\n", kind, c.CertFile,
			strings.Join(c.Leaf().DNSNames, ", "), c.Leaf().NotAfter.UTC().Format(time.DateOnly), c.Fingerprint())
	}
	return b.String()
}

// systemHandler is the API as the router serves it on the system hosts:
// its links follow the scheme (X-Forwarded-Proto, which the router sets)
// and host the client used, and its long polls and log streams end when
// run does, as on the API's own listener.
func systemHandler(run context.Context, api http.Handler, systemDomain string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := externalURLs(r.Header.Get("X-Forwarded-Proto"), r.Host, systemDomain)
		ctx, cancel := context.WithCancel(cc.WithExternalURLs(r.Context(), u))
		defer cancel()
		defer context.AfterFunc(run, cancel)()
		api.ServeHTTP(w, r.WithContext(ctx))
	})
}

// systemHostLinks is the API on its own listener: a request for a system
// host (api., uaa., login., log-cache. under systemDomain), as a separate
// `pando router` forwards them, gets links for that host and the scheme
// the router set in X-Forwarded-Proto, as the in-process router's system
// routes do. Any other Host (the API's address) changes nothing. What a
// client claims here only shapes the links of its own answer.
func systemHostLinks(api http.Handler, systemDomain string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := systemHostURLs(r, systemDomain); ok {
			r = r.WithContext(cc.WithExternalURLs(r.Context(), u))
		}
		api.ServeHTTP(w, r)
	})
}

// systemHostURLs are the links for a request to a system host; false for
// any other Host.
func systemHostURLs(r *http.Request, systemDomain string) (cc.ExternalURLs, bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	label, rest, _ := strings.Cut(strings.TrimSuffix(strings.ToLower(host), "."), ".")
	if rest != systemDomain || !slices.Contains(router.SystemHostLabels, label) {
		return cc.ExternalURLs{}, false
	}
	return externalURLs(r.Header.Get("X-Forwarded-Proto"), r.Host, systemDomain), true
}

// externalURLs are the API's URLs for a client that reached the router at
// proto://hostport: on an IP address everything is there; on a system
// host, the API, login, UAA and log-cache each have theirs, as on CF.
func externalURLs(proto, hostport, systemDomain string) cc.ExternalURLs {
	if proto != "https" {
		proto = "http"
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 ||
		(proto == "https" && n == 443) || (proto == "http" && n == 80) {
		port = ""
	}
	at := func(h string) string {
		if port != "" {
			return proto + "://" + net.JoinHostPort(h, port)
		}
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		return proto + "://" + h
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		base := at(ip.String())
		return cc.ExternalURLs{API: base, Login: base, UAA: base, LogCache: base, Router: base}
	}
	return cc.ExternalURLs{
		API: at("api." + systemDomain), Login: at("login." + systemDomain),
		UAA: at("uaa." + systemDomain), LogCache: at("log-cache." + systemDomain),
		Router: at(host),
	}
}

// systemHosts are the host names the router serves itself under domain.
func systemHosts(domain string) []string {
	hosts := make([]string, 0, len(router.SystemHostLabels))
	for _, l := range router.SystemHostLabels {
		hosts = append(hosts, l+"."+domain)
	}
	return hosts
}

// serve prints the certificate notice to stdout (if set) and serves the
// router's HTTPS on t's listener, in g.
func (t *routerTLS) serve(ctx context.Context, g *errgroup.Group, rtr *router.Router, stdout io.Writer) {
	if stdout != nil {
		fmt.Fprint(stdout, certNotice("https://"+t.ln.Addr().String(), t.certs, t.selfSigned))
	}
	tlsCfg := certs.ServerConfig(t.certs...)
	g.Go(func() error { return ignoreCanceled(rtr.ServeTLS(ctx, t.ln, tlsCfg)) })
}
