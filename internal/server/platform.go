package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/connlimit"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/logs"
	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/routestream"
	"github.com/pandoplatform/pando/internal/secrets"
	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/uaa"
)

// platform is the API side of Pando, the same in `pando server` and
// `pando api`: the listeners of the API and the router, the CCDB, the
// blobstore, the log store and syslog drains, UAA with the admin user,
// and the BBS with its auctioneer (openPlatform). build adds the cell
// listener, the router and the CF API; run runs them all.
type platform struct {
	cfg     Config
	log     *slog.Logger
	verb    string // "pando server" or "pando api", in log lines
	standby bool   // other servers may wait to replace this one (awaitLeadership)
	fdLimit int
	tempDir string

	apiLn, routerLn   net.Listener
	routerTLS         *routerTLS
	apiURL, routerURL string

	store    *sqlstore.Store
	blobs    blobStore
	logStore *logs.Store
	drains   *drain.Forwarder
	sealer   *secrets.Box
	auth     *uaa.Service
	board    *bbs.BBS

	// What build adds.
	cells     *cellAPI // nil: no cell can join
	routeHub  *routestream.Hub
	rtr       *router.Router
	api       *cc.API
	systemAPI http.Handler // the API on the router's system hosts, set by run

	closers []func() // in the order opened
}

// withDefaults fills in the defaults of DESIGN §7.
func (cfg Config) withDefaults() Config {
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:9022"
	}
	if cfg.RouterAddr == "" {
		cfg.RouterAddr = "127.0.0.1:8080"
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.SystemDomain == "" {
		cfg.SystemDomain = cfg.Domain
	}
	cfg.Domain = strings.TrimSuffix(strings.ToLower(cfg.Domain), ".")
	cfg.SystemDomain = strings.TrimSuffix(strings.ToLower(cfg.SystemDomain), ".")
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// openPlatform listens and opens the platform's state in cfg.DataDir,
// which the caller has locked. close releases what it opened. A standby
// (`pando api` on PostgreSQL) opens the CCDB first without migrating it
// and waits, its listeners closed, until it holds the database's claim
// (awaitLeadership), then migrates it; ctx ending meanwhile returns
// ctx.Err().
func openPlatform(ctx context.Context, cfg Config, verb string, fdLimit int, standby bool) (_ *platform, err error) {
	p := &platform{cfg: cfg, log: cfg.Logger, verb: verb, standby: standby, fdLimit: fdLimit, tempDir: filepath.Join(cfg.DataDir, tempDirName)}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	log := p.log
	if n, err := sweepTempDir(p.tempDir); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("removed temp files a previous run left", "dir", p.tempDir, "entries", n)
	}
	password, created := "", false
	p.sealer, password, created, err = ensureSharedSecrets(cfg)
	if err != nil {
		return nil, err
	}
	if !standby {
		if err := p.listen(); err != nil {
			return nil, err
		}
	}

	// On PostgreSQL one server per database (sqlstore.ClaimDatabase);
	// claimWait lets a server just killed let go of it.
	const claimWait = 15 * time.Second
	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "ccdb.sqlite")
	}
	open := sqlstore.Open
	if standby {
		// The schema moves once this server holds the claim (AwaitClaim),
		// never under a live leader of an older version.
		open = sqlstore.OpenStandby
	}
	p.store, err = open(ctx, dsn, log.With("component", "ccdb"))
	if err != nil {
		return nil, fmt.Errorf("open CCDB: %w", err)
	}
	p.onClose(func() { p.store.Close() })
	if standby {
		if err := p.awaitLeadership(ctx); err != nil {
			return nil, err
		}
		if err := p.listen(); err != nil {
			return nil, err
		}
		if err := p.store.PutServerState(ctx, sqlstore.StateClaimHolder, holderName(p.apiLn.Addr().String(), cellAPIAddr(cfg))); err != nil {
			log.Warn("record this server's addresses for the standbys", "err", err)
		}
	} else if err := p.store.ClaimDatabase(ctx, claimWait); err != nil {
		return nil, fmt.Errorf("open CCDB: %w", err)
	}

	if p.blobs, err = openBlobstore(ctx, cfg, p.tempDir, log); err != nil {
		return nil, err
	}

	p.logStore = logs.New(logs.Config{Logger: log.With("component", "logs"), AppName: appNamer(p.store)})
	// Every log line goes to the store and to its app's syslog drains;
	// drains may not reach the platform's own listeners.
	p.drains = drain.New(drain.Config{
		Sink:     p.logStore,
		Bindings: drainBindings{p.store},
		Limits:   cfg.SyslogDrainLimits,
		Guard:    drain.Guard{DenyPorts: p.ports()},
		Logger:   log.With("component", "syslog-drains"),
	})

	if err := p.openUAA(ctx, password, created); err != nil {
		return nil, err
	}
	p.board = bbs.New(bbs.Config{Logger: log.With("component", "bbs"), ConvergeInterval: cfg.ConvergeInterval,
		CellPresenceTTL: cfg.CellPresenceTTL, Logs: p.drains})
	return p, nil
}

// listen opens the API's and the router's listeners first, so a port
// conflict fails fast and tests learn the ports.
func (p *platform) listen() error {
	cfg := p.cfg
	var err error
	p.apiLn, err = net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on API address %s: %w (is another pando server running? use --api-addr)", cfg.APIAddr, err)
	}
	p.onClose(func() { p.apiLn.Close() })
	p.routerLn, err = net.Listen("tcp", cfg.RouterAddr)
	if err != nil {
		return fmt.Errorf("listen on router address %s: %w (use --router-addr)", cfg.RouterAddr, err)
	}
	p.onClose(func() { p.routerLn.Close() })
	p.apiURL = "http://" + p.apiLn.Addr().String()
	p.routerURL = "http://" + p.routerLn.Addr().String()
	p.routerTLS, err = listenRouterTLS(cfg, p.log)
	if err != nil {
		return err
	}
	if p.routerTLS != nil {
		p.onClose(func() { p.routerTLS.ln.Close() })
	}
	return nil
}

// openUAA starts the token service and makes sure the admin user exists,
// printing a password it generated once.
func (p *platform) openUAA(ctx context.Context, password string, created bool) error {
	cfg := p.cfg
	var err error
	p.auth, err = uaa.New(uaa.Config{
		TrustedProxies: cfg.TrustedProxies,
		Users:          p.store,
		KeyPath:        filepath.Join(cfg.DataDir, "uaa-key.pem"),
		Issuer:         p.apiURL + "/oauth/token",
		Logger:         p.log.With("component", "uaa"),
	})
	if err != nil {
		return fmt.Errorf("start UAA: %w", err)
	}
	if err := p.auth.EnsureAdmin(ctx, "admin", password); err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if created && cfg.Stdout != nil {
		fmt.Fprintf(cfg.Stdout, "Admin user: admin\nAdmin password: %s (stored in %s)\n", password, filepath.Join(cfg.DataDir, "admin-password"))
	}
	return nil
}

// ports are the platform's own listeners' ports, which syslog drains and
// the staging egress proxy refuse on local addresses.
func (p *platform) ports() [][2]int {
	return platformPorts(p.apiLn.Addr().String(), p.routerLn.Addr().String(), p.cfg.RouterTLSAddr, cellAPIAddr(p.cfg))
}

// sharedState is where the replicas on a PostgreSQL database keep what
// the next leader needs; nil on SQLite (one server, its data dir).
func (p *platform) sharedState() sharedState {
	if !sqlstore.IsPostgres(p.cfg.DatabaseURL) {
		return nil
	}
	return p.store
}

func (p *platform) onClose(f func()) { p.closers = append(p.closers, f) }

// close releases what openPlatform opened, last first.
func (p *platform) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// build adds what serves on the platform's state: the listener cells
// join and routers follow, the in-process router and the CF API (seeded
// with the built-in buildpacks). local is `pando server`'s own cell, nil
// in `pando api`.
func (p *platform) build(ctx context.Context, local *localCell) error {
	cfg, log := p.cfg, p.log
	// Cells on other machines join and report here (mutual TLS). In
	// `pando server` only an address the operator chose is required:
	// when the derived one (API port + 1) is taken, the server runs
	// without joined cells. `pando api` has no other cell: it needs it.
	// Routers in other processes (`pando router`) follow the table the
	// route emitter builds, on the cell listener.
	p.routeHub = routestream.NewHub(cfg.SystemDomain, 0, 0)
	p.routeHub.Hold() // released once cells' instances are adopted
	cells, err := listenCellAPI(cfg, p.board, p.blobs, p.drains, p.routeHub, log.With("component", "cell-api"))
	var busy *cellListenError
	switch {
	case errors.As(err, &busy) && cfg.CellAPIAddr == "" && local != nil:
		log.Warn("cells on other machines cannot join this server: its cell API port is taken; set --cell-api-addr", "err", err)
		cells = nil
	case err != nil:
		return err
	default:
		p.onClose(func() { cells.ln.Close() })
	}
	p.cells = cells

	// The router reaches the local cell's instances straight through
	// their network namespaces (one fd per backend connection); other
	// addresses are dialed as usual. The API is also served on the
	// router's system hosts, and route services are the API's route
	// bindings (both set before the router serves).
	var dialer net.Dialer
	p.rtr = router.New(router.Config{
		Logger:  log.With("component", "router"),
		LogSink: p.drains,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c, ok, err := local.dialHostPort(ctx, addr); ok {
				return c, err
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxConns:          routerMaxConns(cfg.RouterMaxConns, p.fdLimit, apiMaxConns(p.fdLimit), log),
		MaxConnsPerClient: cfg.RouterMaxConnsPerClient,
		MaxRequestsPerApp: cfg.RouterMaxRequestsPerApp,
		TrustedProxies:    cfg.TrustedProxies,
		System: &router.SystemRoutes{Domain: cfg.SystemDomain, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.systemAPI.ServeHTTP(w, r)
		})},
		RouteServices:   routeServicesFunc(func(host, path string) string { return p.api.RouteServiceURL(host, path) }),
		RouteServiceKey: cells.routeServiceKey(),
	})

	var ccStacks []cc.StackConfig
	for name, dir := range cfg.Stacks {
		desc := "Root filesystem at " + dir
		if dir == "" {
			desc = "Offered by joined cells"
		}
		ccStacks = append(ccStacks, cc.StackConfig{Name: name, Description: desc})
	}
	p.api, err = cc.New(cc.Config{
		BaseURL:             p.apiURL,
		Domain:              cfg.Domain,
		ReservedHosts:       systemHosts(cfg.SystemDomain),
		RouterURL:           p.routerURL,
		Stacks:              ccStacks,
		StackRuntimes:       local.stackRuntimes(),
		StagingTimeout:      cfg.StagingTimeout,
		MaxUploadBytes:      cfg.MaxUploadBytes,
		DefaultLogRateLimit: cfg.DefaultLogRateLimit,
		Secrets:             p.sealer,
		TempDir:             p.tempDir,
		Store:               p.store,
		Blobs:               p.blobs,
		Runtime:             p.board,
		Stats:               cellStats{board: p.board},
		Logs:                p.drains,
		ServicesChanged:     p.drains.Kick,
		Auth:                tokenAuth{p.auth},
		Logger:              log.With("component", "cc"),

		// Per-tenant bounds CF's quotas leave out.
		DrainLimits:               cfg.SyslogDrainLimits,
		MaxServiceInstancesPerOrg: cfg.MaxServiceInstancesPerOrg,
		PublicRoutes: func(mux *http.ServeMux) {
			p.auth.Routes(mux)
			cells.joinRoute(mux)
		},
		AuthedRoutes: p.logStore.Routes,
		// Cells stage docker packages (DockerStager) and run their
		// images (Images).
		DockerEnabled: true,

		// Routers in other processes learn route services from the hub.
		RouteServicesChanged: p.routeHub.SetRouteServices,
	})
	if err != nil {
		return fmt.Errorf("start API: %w", err)
	}
	if err := p.api.Seed(ctx, builtinBuildpacks()); err != nil {
		return fmt.Errorf("seed CCDB: %w", err)
	}
	return nil
}

// run runs what build made, with the local cell if there is one, until
// ctx ends or a component fails; then it stops the local cell's
// containers (or leaves them to the next start: cfg.KeepAppsOnStop) and
// everything else, cleanly.
func (p *platform) run(ctx context.Context, local *localCell) error {
	cfg, log := p.cfg, p.log
	// The run loops outlive the signal for a moment: the cell stops first,
	// while the API still follows what it reports (task completions).
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	emitter := &routeEmitter{rt: p.board, router: teeTable{p.rtr, p.routeHub}, log: log.With("component", "route-emitter"), syncReq: make(chan chan struct{})}
	g.Go(func() error { emitter.run(gctx); return nil })
	g.Go(func() error { p.api.FollowRuntime(gctx); return nil })
	g.Go(func() error { p.drains.Run(gctx); return nil })
	g.Go(func() error { return ignoreCanceled(p.board.Run(gctx)) })
	g.Go(func() error { trimResourceCache(gctx, p.blobs, cfg.ResourceCacheMaxBytes, log); return nil })
	g.Go(func() error { return p.holdClaim(gctx) })
	local.start(gctx, g)
	p.restore(ctx, g, gctx, emitter, local)
	local.sync(gctx, g, p.board, cfg.CellSyncInterval)

	// Long polls and log streams end when the server stops: a client
	// whose work goes on (--keep-apps-on-stop, a joined cell's) reconnects.
	p.systemAPI = apiHandler(systemHandler(gctx, p.api, cfg.SystemDomain), cfg.APITimeouts)
	apiSrv := newAPIServer(systemHostLinks(p.api, cfg.SystemDomain), cfg.APITimeouts, func(net.Listener) context.Context { return gctx })
	apiCapped := connlimit.Wrap(p.apiLn, apiMaxConns(p.fdLimit), apiMaxConnsPerClient, "the API")
	g.Go(func() error { return serveUntil(gctx, apiSrv, apiHeads().Wrap(apiSrv, apiCapped)) })
	g.Go(func() error { return ignoreCanceled(p.rtr.Serve(gctx, p.routerLn)) })
	g.Go(func() error { return p.cells.serve(gctx) })
	routerHTTPS := ""
	if p.routerTLS != nil {
		routerHTTPS = "https://" + p.routerTLS.ln.Addr().String()
		p.routerTLS.serve(gctx, g, p.rtr, cfg.Stdout)
	}

	log.Info(p.verb+" started", "api", p.apiURL, "router", p.routerURL, "router_https", routerHTTPS, "cell_api", p.cells.address(),
		"domain", cfg.Domain, "system_domain", cfg.SystemDomain, "data_dir", cfg.DataDir,
		"cell_token_file", filepath.Join(cfg.DataDir, cellauth.TokenFile),
		"router_token_file", filepath.Join(cfg.DataDir, cellauth.RouterTokenFile))
	if cfg.Ready != nil {
		cfg.Ready(p.apiLn.Addr().String(), p.routerLn.Addr().String())
	}
	select {
	case <-ctx.Done(): // SIGTERM or SIGINT
	case <-gctx.Done(): // a component failed
	}
	log.Info(p.verb + " stopping")
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stop()
	if cfg.KeepAppsOnStop {
		local.detach()
	} else {
		local.shutdown(shutdownCtx)
	}
	cancel()
	err := g.Wait()
	p.api.Close()
	log.Info(p.verb + " stopped")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// holdClaim keeps the PostgreSQL database this server's alone across a
// restart of PostgreSQL or a network failure (sqlstore.Store.HoldClaim);
// its error, another server having taken the database meanwhile, stops
// this one. A server standbys may replace also stops when it cannot take
// its claim again soon enough (sqlstore.Store.HoldLeadership).
func (p *platform) holdClaim(ctx context.Context) error {
	every := p.cfg.DatabaseClaimInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	hold := p.store.HoldClaim
	if p.standby {
		hold = p.store.HoldLeadership
	}
	if err := hold(ctx, every); err != nil {
		p.log.Error("stopping: the CCDB is another server's now", "err", err)
		return fmt.Errorf("CCDB: %w", err)
	}
	return nil
}

// restore brings back the apps of the previous run. Joined cells keep
// running across a restart: the BBS waits (a presence TTL at most) for
// those it knew to report what they run, adopts their instances and the
// stagings and tasks they still run, and only then places what is missing
// and fails what nobody claimed. So does the local cell when it adopted
// its RUNNING instances, stagings or tasks (cell.Config.Adopter): their
// completions wait until the BBS has its inventory.
func (p *platform) restore(ctx context.Context, g *errgroup.Group, gctx context.Context, emitter *routeEmitter, local *localCell) {
	cfg, log := p.cfg, p.log
	localID, _, adopted := local.adopted()
	var known []string
	if p.cells != nil {
		var err error
		if known, err = readKnownCells(cfg.DataDir); err != nil {
			log.Warn("joined cells of the previous run unknown: their instances are placed afresh", "err", err)
		}
		if shared := p.sharedState(); shared != nil {
			if known, err = readSharedKnownCells(ctx, shared, known); err != nil {
				log.Warn("joined cells of the last leader unknown: their instances are placed afresh", "err", err)
			}
		}
	}
	if adopted {
		known = append(known, localID)
	}
	if len(known) > 0 {
		inFlight, err := p.api.InFlight(ctx)
		if err != nil {
			log.Warn("in-flight builds and tasks unknown: they fail", "err", err)
		}
		p.board.AwaitCells(known, inFlight, p.board.CellPresenceTTL())
	}
	if err := p.api.RestoreApps(ctx); err != nil {
		log.Error("restore apps", "err", err)
	}
	if adopted {
		// Its inventory now: an instance may have ended meanwhile.
		_, inv, _ := local.adopted()
		if err := p.board.CellSynced(ctx, localID, inv); err != nil {
			log.Error("adopt the local cell's instances, stagings and tasks", "err", err)
		}
	}
	local.releaseAdopted()
	g.Go(func() error {
		if p.board.WaitAdopted(gctx) != nil {
			return nil
		}
		// Routers in other processes keep their last table until the
		// instances joined cells kept running are adopted and in the
		// table: a table without them would drop routes that still work.
		if emitter.sync(gctx) == nil {
			p.routeHub.Release()
		}
		if err := p.api.FailInterrupted(gctx); err != nil && gctx.Err() == nil {
			log.Error("fail interrupted builds and tasks", "err", err)
		}
		if p.cells != nil {
			keepKnownCells(gctx, cfg.DataDir, p.sharedState(), p.board, log.With("component", "cell-api"))
		}
		return nil
	})
}
