package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellapi"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/routestream"
)

// RouterConfig is `pando router`'s configuration: a router in its own
// process, fed by a server's routing table stream.
type RouterConfig struct {
	// APIURL is the server's API URL, or the comma-separated URLs of the
	// API replicas sharing one database (the router follows the one that
	// answers); Token the router token from the server's
	// <data-dir>/router-token.
	APIURL  string
	Token   string
	DataDir string
	// Addr is where the router serves HTTP (default :8080); TLSAddr, when
	// set, where it serves HTTPS with TLSCertFiles and TLSKeyFiles (pairs
	// by position), else a self-signed certificate kept in DataDir made
	// for Domain's wildcard and its system hosts.
	Addr                      string
	TLSAddr                   string
	TLSCertFiles, TLSKeyFiles []string
	Domain                    string
	// The router's caps (router.Config); zero picks the defaults.
	MaxConns          int
	MaxConnsPerClient int
	MaxRequestsPerApp int
	TrustedProxies    []netip.Prefix
	// RouteServiceTLS, when set, is the TLS client configuration for
	// route services (default: the system roots, SSL_CERT_FILE).
	RouteServiceTLS *tls.Config
	Logger          *slog.Logger
	// Stdout receives the HTTPS certificate notice.
	Stdout io.Writer
	// Ready, if set, is called once the router serves, with its HTTP
	// address (tests bind port 0).
	Ready func(addr string)
}

// RunRouter serves HTTP (and HTTPS) with the routing table it follows
// from the server until ctx ends. While the server is away it keeps
// serving its last table (kept in the data dir, so a restart does too)
// and reconnects with backoff; each reconnection resyncs the whole table.
func RunRouter(ctx context.Context, cfg RouterConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.APIURL == "" || cfg.Token == "" || cfg.DataDir == "" {
		return errors.New("pando router needs --api API_URL, --token TOKEN (the server's <data-dir>/router-token) and --data-dir DIR")
	}
	tok, err := cellauth.ParseRouterToken(cfg.Token)
	if err != nil {
		return err
	}
	urls, err := parseAPIURLs("--api", cfg.APIURL)
	if err != nil {
		return err
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	fdLimit := raiseFileLimit(log)
	release, err := openDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer release()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on router address %s: %w (use --addr)", cfg.Addr, err)
	}
	defer ln.Close()
	tlsLn, err := listenRouterTLS(Config{RouterTLSAddr: cfg.TLSAddr, TLSCertFiles: cfg.TLSCertFiles, TLSKeyFiles: cfg.TLSKeyFiles,
		Domain: cfg.Domain, SystemDomain: cfg.Domain, DataDir: cfg.DataDir}, log)
	if err != nil {
		return err
	}
	if tlsLn != nil {
		defer tlsLn.ln.Close()
	}

	link := newServerLink(newAPIReplicas(urls, tok, log.With("component", "route-follower")))
	// Access lines (RTR) go to the apps' logs on the server, as the
	// server's own router's do; bounded while the server is away.
	shipper := cellapi.NewLogShipper(link.sendLogs, 0, "the router", pando.LogSourceRouter, log.With("component", "log-shipper"))
	// Route services come with the table; signatures are sealed with the
	// key the server's router and every other router share.
	services := routestream.NewRouteServices()
	rtr := router.New(router.Config{
		Logger:            log.With("component", "router"),
		LogSink:           shipper,
		MaxConns:          routerMaxConns(cfg.MaxConns, fdLimit, 0, log),
		MaxConnsPerClient: cfg.MaxConnsPerClient,
		MaxRequestsPerApp: cfg.MaxRequestsPerApp,
		TrustedProxies:    cfg.TrustedProxies,
		RouteServices:     services,
		RouteServiceKey:   tok.RouteServiceKey(),
		RouteServiceTLS:   cfg.RouteServiceTLS,
	})
	// The system hosts (api., uaa., login., log-cache. under the domain
	// the server names in each snapshot) go to the API.
	systemAPI := apiProxy(link.apis.current, log)
	setSystem := func(domain string) {
		if domain == "" {
			rtr.SetSystemRoutes(nil)
			return
		}
		rtr.SetSystemRoutes(&router.SystemRoutes{Domain: domain, Handler: systemAPI})
	}

	tablePath := filepath.Join(cfg.DataDir, routestream.TableFile)
	saved := make(chan struct{}, 1)
	follower := routestream.NewFollower(routestream.FollowerConfig{
		Connect:    link.openStream,
		Table:      rtr,
		Services:   services,
		OnSnapshot: setSystem,
		OnChange: func() {
			select {
			case saved <- struct{}{}:
			default:
			}
		},
		Logger: log.With("component", "route-follower"),
	})
	if domain, entries, rs, err := routestream.LoadTable(tablePath); err != nil {
		log.Warn("the routing table kept from the last run is unreadable: starting empty", "err", err)
	} else if entries != nil {
		setSystem(domain)
		follower.Load(domain, entries, rs)
		log.Info("serving the routing table kept from the last run until the server sends its own", "entries", len(entries))
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { follower.Run(gctx); return nil })
	g.Go(func() error { shipper.Run(gctx); return nil })
	g.Go(func() error { keepTable(gctx, follower, tablePath, saved, log); return nil })
	g.Go(func() error { return ignoreCanceled(rtr.Serve(gctx, ln)) })
	httpsURL := ""
	if tlsLn != nil {
		httpsURL = "https://" + tlsLn.ln.Addr().String()
		tlsLn.serve(gctx, g, rtr, cfg.Stdout)
	}
	log.Info("pando router started", "addr", ln.Addr().String(), "https", httpsURL, "api", cfg.APIURL, "data_dir", cfg.DataDir)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case <-gctx.Done():
	}
	log.Info("pando router stopping")
	cancel()
	err = g.Wait()
	// The last requests' lines still go out, briefly.
	flushCtx, stopFlush := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if ferr := shipper.Flush(flushCtx); ferr != nil {
		log.Warn("send the last access log lines", "err", ferr)
	}
	stopFlush()
	log.Info("pando router stopped")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// serverLink is a router's way to the server: found from the API with
// the router token (pinning the CA it names), then TLS to the server's
// cell listener with the token's secret.
type serverLink struct {
	apis *apiReplicas
	tok  cellauth.Token

	mu      sync.Mutex
	cellAPI string       // https://HOST:PORT, "" until found
	hc      *http.Client // to cellAPI
}

func newServerLink(apis *apiReplicas) *serverLink {
	return &serverLink{apis: apis, tok: apis.tok}
}

// client is the cell listener's URL and a client of it; fresh finds them
// again (the server may have moved).
func (l *serverLink) client(ctx context.Context, fresh bool) (string, *http.Client, error) {
	l.mu.Lock()
	base, hc := l.cellAPI, l.hc
	l.mu.Unlock()
	if base != "" && !fresh {
		return base, hc, nil
	}
	pool, base, err := l.apis.discover(ctx, false)
	if err != nil {
		return "", nil, err
	}
	hc = &http.Client{Transport: &http.Transport{
		TLSClientConfig:       cellauth.ClientTLS(nil, pool, cellauth.ServerName),
		Proxy:                 nil,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
	}}
	l.mu.Lock()
	old := l.hc
	l.cellAPI, l.hc = base, hc
	l.mu.Unlock()
	if old != nil {
		old.CloseIdleConnections()
	}
	return base, hc, nil
}

// openStream opens the routing table stream, finding the server anew.
func (l *serverLink) openStream(ctx context.Context) (io.ReadCloser, error) {
	base, hc, err := l.client(ctx, true)
	if err != nil {
		return nil, err
	}
	body, err := routestream.Open(ctx, hc, base, l.tok.Secret)
	if err != nil {
		return nil, fmt.Errorf("routing table at %s: %w", base, err)
	}
	return body, nil
}

// sendLogs delivers access log lines to the server's log store.
func (l *serverLink) sendLogs(ctx context.Context, batch []pando.LogEnvelope) error {
	base, hc, err := l.client(ctx, false)
	if err != nil {
		return err
	}
	return cellapi.PostLogs(ctx, hc, base+routestream.LogsPath, http.Header{"Authorization": {"Bearer " + l.tok.Secret}}, batch)
}

// keepTable writes the router's table to path after changes, at most
// once a second, so a router restarted while the server is down routes.
func keepTable(ctx context.Context, f *routestream.Follower, path string, changed <-chan struct{}, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		domain, entries := f.Table()
		if err := routestream.SaveTable(path, domain, entries, f.RouteServices()); err != nil {
			log.Warn("keep the routing table", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// apiProxy forwards the system hosts' requests to the API (the replica
// in use: api), as the client sent them (Host, X-Forwarded-Proto as the router set it) with the
// client's address added to X-Forwarded-For.
func apiProxy(api func() *url.URL, log *slog.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			proto := pr.In.Header.Get("X-Forwarded-Proto")
			pr.SetURL(api())
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			if proto != "" {
				pr.Out.Header.Set("X-Forwarded-Proto", proto)
			}
		},
		// Log streams and long polls go out as they come.
		FlushInterval: -1,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 15 * time.Minute,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("API unreachable for a system host request", "host", r.Host, "err", err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "502 Bad Gateway: the Pando API is not reachable from this router\n")
		},
	}
}
