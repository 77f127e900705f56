// Package drain forwards app log lines to the syslog drains of the
// user-provided service instances bound to the apps (CF's syslog agent):
// RFC 5424 messages over TCP (syslog://, octet-counted), TLS
// (syslog-tls://) or HTTPS POSTs (https://). Each drain has a bounded
// queue and a writer of its own, so a slow or dead drain never holds up
// the app or the log store: its lines are dropped, counted, and reported
// in the app's log.
package drain

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
)

// Defaults.
const (
	DefaultRefresh        = 15 * time.Second
	DefaultQueueLines     = 10000
	DefaultQueueBytes     = 4 << 20
	DefaultMaxDrains      = 1000
	DefaultMaxPayload     = 64 << 10
	DefaultNoticeInterval = 10 * time.Second
	DefaultDialTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultMaxBackoff     = time.Minute
)

// SourceTypeDrain tags the lines that report a drain's lost or refused
// lines in the app's own log (loggregator's source type).
const SourceTypeDrain = "LGR"

// Binding is one app's drain: where its lines go, the HOSTNAME they
// carry (org.space.app), and the app's space and org (which Limits count
// it against).
type Binding struct {
	AppGUID   string
	URL       string
	Hostname  string
	SpaceGUID string
	OrgGUID   string
}

// BindingSource lists every app's drains (the CCDB's bindings to
// instances with a syslog_drain_url).
type BindingSource interface {
	SyslogDrains(ctx context.Context) ([]Binding, error)
}

// Config configures a Forwarder.
type Config struct {
	// Sink is where lines go first (the log store); the drains' loss
	// notices go there too.
	Sink     pando.LogSink
	Bindings BindingSource
	// Refresh is how often the bindings are read again; Refresh(ctx)
	// reads them at once (after a bind or unbind).
	Refresh time.Duration
	// QueueLines and QueueBytes bound each drain's queue; past either,
	// lines are dropped and counted.
	QueueLines int
	QueueBytes int
	// Limits bound the drains forwarded to at once, in all and per org
	// and space; bindings past them (the newest) are reported once in
	// their app's log and ignored.
	Limits
	// MaxPayload truncates longer lines.
	MaxPayload int
	// NoticeInterval is the least time between two loss notices of one
	// drain.
	NoticeInterval time.Duration
	DialTimeout    time.Duration
	WriteTimeout   time.Duration
	// MaxBackoff caps the wait between reconnects (from 1 s, doubling).
	MaxBackoff time.Duration
	// Guard decides which addresses a drain may connect to (see Guard).
	Guard Guard
	// TLS is the client configuration for syslog-tls:// and https://
	// drains (nil: the system roots).
	TLS    *tls.Config
	Logger *slog.Logger
	Now    func() time.Time
}

// Forwarder is a pando.LogSink that passes every line to Config.Sink and
// queues a copy for each drain of the line's app.
type Forwarder struct {
	cfg Config
	log *slog.Logger

	mu     sync.RWMutex
	byApp  map[string][]*drain // read by Emit
	drains map[drainKey]*drain
	// over are the bindings past the limits already reported (owned by
	// Run).
	over map[drainKey]bool

	refresh chan chan error
	kick    chan struct{}
}

type drainKey struct{ app, url string }

// New returns a Forwarder; Run starts its drains.
func New(cfg Config) *Forwarder {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.QueueLines <= 0 {
		cfg.QueueLines = DefaultQueueLines
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.NoticeInterval <= 0 {
		cfg.NoticeInterval = DefaultNoticeInterval
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Forwarder{
		cfg: cfg, log: cfg.Logger,
		byApp: map[string][]*drain{}, drains: map[drainKey]*drain{}, over: map[drainKey]bool{},
		refresh: make(chan chan error),
		kick:    make(chan struct{}, 1),
	}
}

// Emit passes e to the sink and offers it to e's app's drains. It never
// blocks on a drain.
func (f *Forwarder) Emit(e pando.LogEnvelope) {
	if f.cfg.Sink != nil {
		f.cfg.Sink.Emit(e)
	}
	f.mu.RLock()
	ds := f.byApp[e.SourceID]
	f.mu.RUnlock()
	if len(ds) == 0 {
		return
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = f.cfg.Now()
	}
	// The emitter may reuse its buffer once Emit returns.
	p := e.Payload
	if len(p) > f.cfg.MaxPayload {
		p = p[:f.cfg.MaxPayload]
	}
	e.Payload = slices.Clone(p)
	for _, d := range ds {
		d.offer(e)
	}
}

// Refresh reads the bindings now and starts or stops drains to match;
// it returns once they are applied (or ctx ends, or Run is not running).
func (f *Forwarder) Refresh(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case f.refresh <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kick asks Run to read the bindings again soon, without waiting for it
// (the API calls it after a bind, an unbind or a changed drain URL).
func (f *Forwarder) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run keeps the drains in step with the bindings until ctx ends, then
// stops every drain and waits for their writers.
func (f *Forwarder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		f.mu.Lock()
		for k, d := range f.drains {
			d.stop()
			delete(f.drains, k)
		}
		f.byApp = map[string][]*drain{}
		f.mu.Unlock()
		wg.Wait()
	}()
	t := time.NewTicker(f.cfg.Refresh)
	defer t.Stop()
	for {
		err := f.apply(ctx, &wg)
		if err != nil && ctx.Err() == nil {
			f.log.Warn("read syslog drain bindings", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		case done := <-f.refresh:
			err := f.apply(ctx, &wg)
			done <- err
		}
	}
}

// apply reads the bindings and starts or stops drains to match.
func (f *Forwarder) apply(ctx context.Context, wg *sync.WaitGroup) error {
	bs, err := f.cfg.Bindings.SyslogDrains(ctx)
	if err != nil {
		return fmt.Errorf("list syslog drains: %w", err)
	}
	admitted, over := f.cfg.Limits.Admit(bs)
	want := make(map[drainKey]Binding, len(admitted))
	for _, b := range admitted {
		want[drainKey{b.AppGUID, b.URL}] = b
	}
	f.reportOver(over)
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, d := range f.drains {
		if b, ok := want[k]; !ok || (d != nil && b.Hostname != d.hostname) {
			d.stop()
			delete(f.drains, k)
		}
	}
	for k, b := range want {
		if _, ok := f.drains[k]; ok {
			continue
		}
		d, err := f.newDrain(b)
		if err != nil {
			// The API checks URLs on the way in; one that is still
			// unusable is reported in the app's log once.
			f.notice(b.AppGUID, fmt.Sprintf("syslog drain %s not used: %v", redact(b.URL), err))
			d = nil
		}
		f.drains[k] = d
		if d != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.run(ctx)
			}()
		}
	}
	byApp := map[string][]*drain{}
	for k, d := range f.drains {
		if d != nil {
			byApp[k.app] = append(byApp[k.app], d)
		}
	}
	f.byApp = byApp
	return nil
}

// reportOver tells each app whose drain a limit leaves out, once (until
// the drain is forwarded to or unbound).
func (f *Forwarder) reportOver(over []Over) {
	now := make(map[drainKey]bool, len(over))
	added := map[string]int{}
	for _, o := range over {
		k := drainKey{o.Binding.AppGUID, o.Binding.URL}
		now[k] = true
		if f.over[k] {
			continue
		}
		added[o.Scope]++
		f.notice(o.Binding.AppGUID, fmt.Sprintf("syslog drain %s not used: %v", redact(o.Binding.URL), o))
	}
	if len(added) > 0 {
		f.log.Warn("syslog drains past a limit not used", "newly_over", added, "over", len(over),
			"max_drains", f.cfg.MaxDrains, "max_per_org", f.cfg.MaxDrainsPerOrg, "max_per_space", f.cfg.MaxDrainsPerSpace)
	}
	f.over = now
}

// notice writes a line about a drain to the app's log (not to its
// drains).
func (f *Forwarder) notice(appGUID, msg string) {
	if f.cfg.Sink == nil {
		return
	}
	f.cfg.Sink.Emit(pando.LogEnvelope{
		Timestamp: f.cfg.Now(), SourceID: appGUID, SourceType: SourceTypeDrain, Type: "ERR",
		Payload: []byte(msg),
	})
}

// redact shows a drain URL without its credentials, path or query.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid url)"
	}
	return u.Scheme + "://" + u.Host
}
