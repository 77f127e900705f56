package routestream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// Table is the router a Follower keeps equal to the stream
// (*router.Router).
type Table interface {
	SetRoutes(key, appGUID string, routes []string)
	SetBackends(key string, backends []router.Backend)
	RemoveProcess(key string)
}

// Follower bounds and defaults.
const (
	// MaxLine bounds one line of the stream (one entry).
	MaxLine = 8 << 20
	// DefaultIdleTimeout: a stream silent this long (three heartbeats)
	// is given up and dialed again.
	DefaultIdleTimeout = 3 * DefaultHeartbeat
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	// Connect opens the stream (Open, after finding the server).
	Connect func(ctx context.Context) (io.ReadCloser, error)
	Table   Table
	// Services, when set, receives the route services (give it to the
	// router as its RouteServices); without it the Follower keeps them
	// for RouteServices only.
	Services *RouteServices
	// OnSnapshot, when set, is called with each snapshot's system
	// domain, before its entries.
	OnSnapshot func(systemDomain string)
	// OnChange, when set, is called (on the following goroutine) after
	// each change to the table: a snapshot applied, an entry set or
	// removed. Table reads the table.
	OnChange func()
	// IdleTimeout, MinBackoff and MaxBackoff of zero pick the defaults.
	IdleTimeout            time.Duration
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Follower keeps a router's table equal to the server's stream. While
// the stream is down the table stays as it was (the router serves its
// last routes); on reconnection the new snapshot replaces it, removing
// what vanished meanwhile.
type Follower struct {
	cfg FollowerConfig
	log *slog.Logger

	// Touched only by Run's goroutine: the keys and route services set
	// since the last snapshot began; nil outside one.
	seen         map[string]bool
	seenServices map[string]bool

	mu           sync.Mutex
	known        map[string]Entry // written only by Run's goroutine
	systemDomain string
	synced       int // snapshots applied
}

// NewFollower returns a Follower of cfg.Connect into cfg.Table. Load
// gives it a table kept from before, Run follows the stream.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Services == nil {
		cfg.Services = NewRouteServices()
	}
	return &Follower{cfg: cfg, log: log, known: map[string]Entry{}}
}

// Load puts entries and route services (a table kept from an earlier
// run) into the router until the first snapshot replaces them. Call it
// before Run.
func (f *Follower) Load(systemDomain string, entries map[string]Entry, services map[string]string) {
	f.mu.Lock()
	f.systemDomain = systemDomain
	f.mu.Unlock()
	for route, url := range services {
		f.cfg.Services.set(route, url)
	}
	for k, e := range entries {
		f.set(k, e)
	}
}

// Table returns the system domain and the table the router holds.
func (f *Follower) Table() (systemDomain string, entries map[string]Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.systemDomain, maps.Clone(f.known)
}

// RouteServices returns the route services the router holds (route to
// URL).
func (f *Follower) RouteServices() map[string]string { return f.cfg.Services.all() }

func (f *Follower) changed() {
	if f.cfg.OnChange != nil {
		f.cfg.OnChange()
	}
}

// Synced says how many snapshots have been applied.
func (f *Follower) Synced() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

// Run follows the stream until ctx ends, reconnecting with backoff.
func (f *Follower) Run(ctx context.Context) {
	backoff := f.cfg.MinBackoff
	failures, warned := 0, ""
	for ctx.Err() == nil {
		synced, err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			backoff, failures = f.cfg.MinBackoff, 0
		}
		failures++
		// The first failure in a row is news, and so is another reason
		// (the server back, but refusing a router token it rotated);
		// retries for the same reason are not.
		level := slog.LevelDebug
		if failures == 1 || err.Error() != warned {
			level, warned = slog.LevelWarn, err.Error()
		}
		f.log.Log(ctx, level, "no routing table stream from the server: serving the last table, reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
}

// follow reads one connection's stream until it fails; synced says a
// snapshot was applied on it.
func (f *Follower) follow(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := f.cfg.Connect(ctx)
	if err != nil {
		return false, err
	}
	defer body.Close()
	// A stream that goes quiet (a server gone without a FIN) is closed,
	// which ends the read below.
	idle := time.AfterFunc(f.cfg.IdleTimeout, func() { cancel(); body.Close() })
	defer idle.Stop()
	f.seen, f.seenServices = nil, nil // a snapshot cut short counts for nothing
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	for sc.Scan() {
		idle.Reset(f.cfg.IdleTimeout)
		var m Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return synced, fmt.Errorf("routing table stream: bad line: %w", err)
		}
		if f.apply(m) {
			synced = true
		}
	}
	if err := sc.Err(); err != nil {
		return synced, fmt.Errorf("routing table stream: %w", err)
	}
	return synced, errors.New("routing table stream: the server closed it")
}

// apply applies one message; true when it completed a snapshot.
func (f *Follower) apply(m Message) bool {
	switch m.Type {
	case TypeSnapshot:
		f.seen, f.seenServices = map[string]bool{}, map[string]bool{}
		f.mu.Lock()
		f.systemDomain = m.SystemDomain
		f.mu.Unlock()
		if f.cfg.OnSnapshot != nil {
			f.cfg.OnSnapshot(m.SystemDomain)
		}
	case TypeSet:
		if m.Key == "" || m.Entry == nil {
			return false
		}
		f.set(m.Key, *m.Entry)
		if f.seen != nil {
			f.seen[m.Key] = true
		} else {
			f.changed()
		}
	case TypeRemove:
		if f.remove(m.Key) {
			f.changed()
		}
	case TypeRouteService:
		if m.Route == "" {
			return false
		}
		changed := f.cfg.Services.set(m.Route, m.URL)
		if f.seenServices != nil {
			f.seenServices[normalRoute(m.Route)] = true
		} else if changed {
			f.changed()
		}
	case TypeSynced:
		if f.seen == nil {
			return false // the end of a snapshot this connection did not start
		}
		f.mu.Lock()
		var gone []string
		for k := range f.known {
			if !f.seen[k] {
				gone = append(gone, k)
			}
		}
		n := len(f.known) - len(gone)
		f.mu.Unlock()
		for _, k := range gone {
			f.remove(k)
		}
		// Unbound while the stream was down: after the entries, so no
		// route is routable without its route service meanwhile.
		for route := range f.cfg.Services.all() {
			if !f.seenServices[route] {
				f.cfg.Services.set(route, "")
			}
		}
		f.seen, f.seenServices = nil, nil
		f.mu.Lock()
		f.synced++
		f.mu.Unlock()
		f.log.Info("routing table synced", "entries", n, "removed", len(gone))
		f.changed()
		return true
	}
	// Heartbeats, and types a newer server may send, change nothing.
	return false
}

func (f *Follower) set(key string, e Entry) {
	f.cfg.Table.SetRoutes(key, e.AppGUID, e.Routes)
	f.cfg.Table.SetBackends(key, fromBackends(e.Backends))
	f.mu.Lock()
	f.known[key] = e
	f.mu.Unlock()
}

// remove forgets key; false when the router did not have it.
func (f *Follower) remove(key string) bool {
	f.mu.Lock()
	_, ok := f.known[key]
	delete(f.known, key)
	f.mu.Unlock()
	if ok {
		f.cfg.Table.RemoveProcess(key)
	}
	return ok
}

// Open requests the stream at baseURL+Path with the router token's
// secret, through hc.
func Open(ctx context.Context, hc *http.Client, baseURL, secret string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+Path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, wireerr.Read("routing table", resp)
	}
	return resp.Body, nil
}

// BearerSecret is the secret a stream request presents (Open's), or "".
func BearerSecret(r *http.Request) string {
	s, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(s)
}
