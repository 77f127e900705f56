package drain

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
)

// drain is one (app, URL) binding: a bounded queue and the writer that
// empties it into the drain.
type drain struct {
	f        *Forwarder
	app      string
	hostname string
	rawURL   string
	u        *url.URL
	addr     string // host:port
	dialer   *net.Dialer
	client   *http.Client // https drains

	mu      sync.Mutex
	queue   []pando.LogEnvelope
	qbytes  int
	dropped int

	wake     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	conn       net.Conn // syslog drains, owned by run
	lastNotice time.Time
	backoff    time.Duration
	unreported int
}

func (f *Forwarder) newDrain(b Binding) (*drain, error) {
	u, err := url.Parse(b.URL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("not a valid url")
	}
	port := u.Port()
	switch u.Scheme {
	case "syslog", "syslog-tls":
		if port == "" {
			port = "514"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return nil, fmt.Errorf("scheme %q is not supported (syslog, syslog-tls, https)", u.Scheme)
	}
	d := &drain{
		f: f, app: b.AppGUID, hostname: b.Hostname, rawURL: b.URL, u: u,
		addr:   net.JoinHostPort(u.Hostname(), port),
		dialer: &net.Dialer{Timeout: f.cfg.DialTimeout, Control: f.cfg.Guard.control},
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if u.Scheme == "https" {
		d.client = &http.Client{
			Timeout: f.cfg.WriteTimeout,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         d.dialer.DialContext,
				TLSClientConfig:     f.tlsConfig(u.Hostname()),
				TLSHandshakeTimeout: f.cfg.DialTimeout,
				MaxIdleConnsPerHost: 1,
				IdleConnTimeout:     90 * time.Second,
			},
			// A drain answers; it does not send the lines elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return d, nil
}

func (f *Forwarder) tlsConfig(serverName string) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.cfg.TLS != nil {
		c = f.cfg.TLS.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	return c
}

// stop ends the writer; lines still queued are dropped.
func (d *drain) stop() {
	if d == nil {
		return
	}
	d.stopOnce.Do(func() { close(d.done) })
}

// offer queues e, or counts it dropped when the queue is full.
func (d *drain) offer(e pando.LogEnvelope) {
	size := len(e.Payload) + 64
	d.mu.Lock()
	if len(d.queue) >= d.f.cfg.QueueLines || d.qbytes+size > d.f.cfg.QueueBytes {
		d.dropped++
		d.mu.Unlock()
	} else {
		d.queue = append(d.queue, e)
		d.qbytes += size
		d.mu.Unlock()
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (d *drain) take(spare []pando.LogEnvelope) []pando.LogEnvelope {
	d.mu.Lock()
	defer d.mu.Unlock()
	batch := d.queue
	d.queue, d.qbytes = spare[:0], 0
	d.unreported += d.dropped
	d.dropped = 0
	return batch
}

// reportDrops writes a loss notice to the app's log, at most one per
// NoticeInterval.
func (d *drain) reportDrops() {
	d.mu.Lock()
	d.unreported += d.dropped
	d.dropped = 0
	n := d.unreported
	d.mu.Unlock()
	now := d.f.cfg.Now()
	if n == 0 || now.Sub(d.lastNotice) < d.f.cfg.NoticeInterval {
		return
	}
	d.lastNotice = now
	d.mu.Lock()
	d.unreported -= n
	d.mu.Unlock()
	d.f.notice(d.app, fmt.Sprintf("Dropped %d log messages for syslog drain %s: it is not keeping up or not reachable", n, redact(d.rawURL)))
}

// run writes queued lines until ctx ends or the drain is stopped.
func (d *drain) run(ctx context.Context) {
	defer d.closeConn()
	var spare []pando.LogEnvelope
	// A pending loss notice is written when its interval has passed even
	// if no line comes.
	tick := time.NewTicker(d.f.cfg.NoticeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.done:
			return
		case <-d.wake:
		case <-tick.C:
		}
		batch := d.take(spare)
		d.reportDrops()
		if len(batch) > 0 && !d.deliver(ctx, batch) {
			return
		}
		clear(batch)
		spare = batch
	}
}

// deliver writes batch, once more on a new connection when the first
// attempt fails (the drain may have closed an idle one). A batch that
// still fails is dropped and counted, and the writer waits (1 s,
// doubling up to MaxBackoff) before it connects again; false when the
// drain stopped meanwhile.
func (d *drain) deliver(ctx context.Context, batch []pando.LogEnvelope) bool {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if d.client != nil {
			batch, err = d.post(ctx, batch)
		} else {
			err = d.write(ctx, batch)
		}
		if err == nil {
			d.backoff = 0
			return true
		}
		d.closeConn()
	}
	d.mu.Lock()
	d.dropped += len(batch)
	d.mu.Unlock()
	d.backoff = min(max(2*d.backoff, time.Second), d.f.cfg.MaxBackoff)
	d.f.log.Debug("syslog drain write failed", "app_guid", d.app, "drain", redact(d.rawURL), "lines_dropped", len(batch), "retry_in", d.backoff, "err", err)
	d.reportDrops()
	t := time.NewTimer(d.backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-d.done:
		return false
	case <-t.C:
		return true
	}
}

func (d *drain) closeConn() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// write sends batch over the syslog connection (made if needed), each
// message octet-counted (RFC 6587).
func (d *drain) write(ctx context.Context, batch []pando.LogEnvelope) error {
	if d.conn == nil {
		c, err := d.dial(ctx)
		if err != nil {
			return err
		}
		d.conn = c
	}
	var buf, msg []byte
	for i := range batch {
		msg = appendRFC5424(msg[:0], &batch[i], d.hostname)
		buf = appendOctetCounted(buf, msg)
	}
	_ = d.conn.SetWriteDeadline(time.Now().Add(d.f.cfg.WriteTimeout))
	if _, err := d.conn.Write(buf); err != nil {
		return fmt.Errorf("write to %s: %w", d.addr, err)
	}
	return nil
}

func (d *drain) dial(ctx context.Context) (net.Conn, error) {
	c, err := d.dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", d.addr, err)
	}
	if d.u.Scheme != "syslog-tls" {
		return c, nil
	}
	tc := tls.Client(c, d.f.tlsConfig(d.u.Hostname()))
	hctx, cancel := context.WithTimeout(ctx, d.f.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", d.addr, err)
	}
	return tc, nil
}

// post sends each message of batch in a POST of its own, as CF's https
// drains do; it returns what is left to send when one fails.
func (d *drain) post(ctx context.Context, batch []pando.LogEnvelope) ([]pando.LogEnvelope, error) {
	var msg []byte
	for i := range batch {
		msg = appendRFC5424(msg[:0], &batch[i], d.hostname)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.rawURL, bytes.NewReader(msg))
		if err != nil {
			return nil, err // the URL was parsed before: not reached
		}
		req.Header.Set("Content-Type", "text/plain")
		resp, err := d.client.Do(req)
		if err != nil {
			return batch[i:], fmt.Errorf("post to %s: %w", redact(d.rawURL), err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return batch[i:], fmt.Errorf("post to %s: %s", redact(d.rawURL), resp.Status)
		}
	}
	return nil, nil
}
