package egress

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Upstream is the operator's proxy: where the egress proxy sends what
// NO_PROXY does not exempt.
type Upstream struct {
	HTTP    *url.URL // for http:// targets
	HTTPS   *url.URL // for CONNECT (https) targets
	noProxy []string
}

// ParseUpstream reads the operator's HTTP_PROXY, HTTPS_PROXY and NO_PROXY
// (upper case first, then lower case, as curl and Go do) from env
// (KEY=VALUE).
func ParseUpstream(env []string) (Upstream, error) {
	get := func(k string) string {
		var upper, lower string
		for _, kv := range env {
			key, v, _ := strings.Cut(kv, "=")
			switch key {
			case k:
				upper = v
			case strings.ToLower(k):
				lower = v
			}
		}
		if upper != "" {
			return upper
		}
		return lower
	}
	var u Upstream
	for _, p := range []struct {
		key string
		dst **url.URL
	}{{"HTTP_PROXY", &u.HTTP}, {"HTTPS_PROXY", &u.HTTPS}} {
		v := get(p.key)
		if v == "" {
			continue
		}
		if !strings.Contains(v, "://") {
			v = "http://" + v
		}
		pu, err := url.Parse(v)
		if err != nil || pu.Host == "" {
			return Upstream{}, fmt.Errorf("%s: not a proxy URL", p.key)
		}
		if pu.Scheme != "http" {
			return Upstream{}, fmt.Errorf("%s: the staging egress proxy chains to http:// proxies only, not %s://", p.key, pu.Scheme)
		}
		*p.dst = pu
	}
	for _, e := range strings.Split(get("NO_PROXY"), ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			u.noProxy = append(u.noProxy, e)
		}
	}
	return u, nil
}

// proxyFor returns the upstream proxy for a target (host:port or host) of
// scheme, or nil to dial directly.
func (u Upstream) proxyFor(scheme, target string) *url.URL {
	p := u.HTTP
	if scheme == "https" {
		p = u.HTTPS
	}
	if p == nil || u.exempt(target) {
		return nil
	}
	return p
}

// exempt reports whether NO_PROXY names target: "*", an IP, a CIDR, a
// host name or a domain suffix (".example.com" or "example.com" both
// match sub.example.com), each optionally with ":port".
func (u Upstream) exempt(target string) bool {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	ip, ipErr := netip.ParseAddr(host)
	for _, e := range u.noProxy {
		if e == "*" {
			return true
		}
		eh, ep := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			eh, ep = h, p
		}
		if ep != "" && ep != port {
			continue
		}
		eh = strings.Trim(eh, "[]")
		if pfx, err := netip.ParsePrefix(eh); err == nil {
			if ipErr == nil && pfx.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		if eip, err := netip.ParseAddr(eh); err == nil {
			if ipErr == nil && eip.Unmap() == ip.Unmap() {
				return true
			}
			continue
		}
		d := strings.TrimPrefix(eh, ".")
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}
