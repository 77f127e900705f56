package certs

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServerConfig is the TLS configuration of a public HTTPS listener with
// certs: TLS 1.2 and later, forward-secret AEAD suites only (TLS 1.3's are
// fixed by Go), HTTP/1.1 by ALPN. A client gets the first certificate
// that covers the name it asks for (SNI), else the first one.
func ServerConfig(certs ...*Cert) *tls.Config {
	pairs := make([]tls.Certificate, 0, len(certs))
	for _, c := range certs {
		pairs = append(pairs, c.TLS)
	}
	return &tls.Config{
		Certificates: pairs,
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"http/1.1"},
	}
}

// DefaultHandshakeTimeout bounds a TLS handshake.
const DefaultHandshakeTimeout = 10 * time.Second

// Listener yields TLS connections whose handshake is done. Each accepted
// connection shakes hands on its own goroutine within a deadline, so a
// slow or silent client holds one goroutine and whatever slot the inner
// listener gave it (connlimit's) for at most the timeout, and never the
// accept loop.
type Listener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	log     *slog.Logger

	ready chan *tls.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

// NewListener serves TLS with cfg on inner's connections; timeout zero
// means DefaultHandshakeTimeout.
func NewListener(inner net.Listener, cfg *tls.Config, timeout time.Duration, log *slog.Logger) *Listener {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		inner: inner, cfg: cfg, timeout: timeout, log: log,
		ready: make(chan *tls.Conn),
		errs:  make(chan error),
		done:  make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			// The caller decides (net/http backs off on temporary
			// errors and calls Accept again); this loop follows.
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				continue
			}
			return
		}
		go l.handshake(c)
	}
}

func (l *Listener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	if err := tc.Handshake(); err != nil {
		l.log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

// Accept returns the next connection that completed its handshake.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; handshakes under way end with their connection
// closed.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }
