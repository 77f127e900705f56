package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// guard is the innermost RoundTripper of every registry exchange. It
// refuses plain HTTP to hosts not listed as insecure (go-containerregistry
// would otherwise fall back to HTTP for loopback and RFC 1918 addresses),
// bounds every request by an idle timeout (no response headers, or no
// body bytes, for timeout), and bounds manifest bodies.
type guard struct {
	inner        http.RoundTripper
	insecure     map[string]bool
	timeout      time.Duration
	maxManifests int64
}

func newBaseTransport(timeout time.Duration, roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Proxy:           http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   min(timeout, 10*time.Second),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ExpectContinueTimeout: time.Second,
	}
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure[strings.ToLower(req.URL.Host)] {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &errPlainHTTP{host: req.URL.Host}
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	idle := &errTimeout{host: req.URL.Host, what: "did not answer within " + g.timeout.String()}
	timer := time.AfterFunc(g.timeout, func() { cancel(idle) })
	resp, err := g.inner.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		if cause == idle {
			return nil, idle
		}
		return nil, err
	}
	body := &idleBody{rc: resp.Body, timer: timer, timeout: g.timeout, ctx: ctx, cancel: cancel, cause: idle}
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/") {
		body.limit = g.maxManifests
		body.limitErr = &errTooLarge{what: "the manifest", limit: g.maxManifests}
	}
	resp.Body = body
	return resp, nil
}

// idleBody cancels its request when no bytes arrive for timeout, and
// fails once more than limit bytes were read (limit 0: no bound).
type idleBody struct {
	rc       io.ReadCloser
	timer    *time.Timer
	timeout  time.Duration
	ctx      context.Context
	cancel   context.CancelCauseFunc
	cause    error
	limit    int64
	limitErr error
	n        int64
	once     sync.Once
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.limit > 0 && b.n > b.limit {
		return 0, b.limitErr
	}
	if b.limit > 0 && int64(len(p)) > b.limit-b.n+1 {
		p = p[:b.limit-b.n+1]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if n > 0 {
		b.timer.Reset(b.timeout)
	}
	if b.limit > 0 && b.n > b.limit {
		return n, b.limitErr
	}
	if err != nil && err != io.EOF && context.Cause(b.ctx) == b.cause {
		return n, b.cause
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel(nil)
	})
	return b.rc.Close()
}
