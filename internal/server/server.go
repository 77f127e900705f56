// Package server wires Pando's components into the all-in-one `pando
// server`: the CC API with UAA and log-cache on one address, the router on
// another, the SQLite CCDB and filesystem blobstore under the data dir, the
// in-process BBS and auctioneer, and one local cell running runc containers.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/certs"
	"github.com/pandoplatform/pando/internal/connlimit"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/logs"
	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/routestream"
	"github.com/pandoplatform/pando/internal/secrets"
	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/stackprobe"
	"github.com/pandoplatform/pando/internal/uaa"
)

// Config is `pando server`'s configuration, built once in cmd/.
type Config struct {
	APIAddr    string // 127.0.0.1:9022
	RouterAddr string // 127.0.0.1:8080
	// RouterTLSAddr, when set, is where the router serves HTTPS (e.g.
	// 0.0.0.0:443) with the certificates in TLSCertFiles and their keys in
	// TLSKeyFiles (pairs by position; chosen by SNI, the first by
	// default), else with a self-signed one kept in the data dir.
	RouterTLSAddr             string
	TLSCertFiles, TLSKeyFiles []string
	Domain                    string // localhost
	// SystemDomain (default Domain): the router serves the API, UAA and
	// log-cache at api., uaa., login. and log-cache. under it, and on any
	// Host that is an IP address.
	SystemDomain   string
	DataDir        string
	DatabaseURL    string // empty: SQLite in the data dir
	StagingTimeout time.Duration
	MaxUploadBytes int64
	AdminPassword  string // empty: generated and stored in the data dir
	// CellMemoryMB and CellDiskMB are the local cell's capacity; zero means
	// derived from the machine.
	CellMemoryMB int
	CellDiskMB   int
	// Stacks maps extra stack names to root filesystem directories (e.g.
	// a Debian rootfs built by `make stack`); "host" is always offered.
	Stacks map[string]string
	// ResourceCacheMaxBytes bounds the resource-match cache in the
	// blobstore (least recently used files go first); default 4 GiB.
	ResourceCacheMaxBytes int64
	// HostCFStack, when set, is the CF_STACK buildpacks see on the host
	// stack (e.g. "cflinuxfs4" for CF's own buildpacks).
	HostCFStack string
	// CacheDir holds machine-wide caches shared by servers (the Go build
	// cache seed); default /var/cache/pando.
	CacheDir string
	// RouterMaxConns, RouterMaxConnsPerClient and RouterMaxRequestsPerApp
	// are the router's caps (router.Config); zero picks defaults that fit
	// the process's fd limit.
	RouterMaxConns          int
	RouterMaxConnsPerClient int
	RouterMaxRequestsPerApp int
	// TrustedProxies may set X-Forwarded-For/-Proto for the router, and
	// name the client that login protection counts for the API.
	TrustedProxies []netip.Prefix
	// DefaultLogRateLimit is the log rate limit (bytes/s) of processes and
	// tasks that set none; 0 means cc.DefaultLogRateLimit, -1 unlimited.
	DefaultLogRateLimit int
	// LogRateCeiling bounds every container's log lines on the cell
	// (bytes/s, each line counting 64 more); 0 means
	// cell.DefaultLogRateCeiling, -1 none.
	LogRateCeiling int
	// ContainerHostIDBase and ContainerHostIDBlocks set the host uids and
	// gids containers run as: a block of 65536 per container from the
	// base; zero means runc.DefaultHostIDBase and DefaultHostIDBlocks.
	ContainerHostIDBase   uint32
	ContainerHostIDBlocks int
	// StagingEnv is KEY=VALUE environment for every staging container
	// (--staging-env: proxies, npm/pip/bundler settings), below the app's
	// own variables. It may carry credentials: never logged or shown.
	StagingEnv []string
	// StagingEgress (--staging-egress, on by default) lets staging reach
	// the network through an HTTP proxy the cell serves on each staging
	// container's loopback; off, staging has no network at all.
	StagingEgress bool
	// StagingEgressMaxBytes (--staging-egress-max-bytes) bounds what one
	// staging downloads through that proxy (0: the cell's default, -1: none).
	StagingEgressMaxBytes int64
	// InsecureRegistries are the HOST:PORTs of registries docker staging
	// may speak plain HTTP to (--insecure-registry).
	InsecureRegistries []string
	// LayerCacheMaxBytes bounds the unpacked bytes of the cell's image
	// layer cache (--layer-cache-max-bytes); 0 means 10 GiB.
	LayerCacheMaxBytes int64
	// CellAPIAddr is where cells on other machines join, report, fetch
	// blobs and ship logs, over mutual TLS; default the API's host on the API's port + 1.
	CellAPIAddr string
	// ConvergeInterval is the BBS convergence period (default 30s).
	ConvergeInterval time.Duration
	// APITimeouts bound slow and idle clients of the API listener.
	APITimeouts APITimeouts
	Logger      *slog.Logger
	// Ready, if set, is called once both listeners are up, with their
	// actual addresses (tests bind port 0).
	Ready func(apiAddr, routerAddr string)
	// Stdout receives the one-time admin password notice.
	Stdout interface{ Write([]byte) (int, error) }
}

// DefaultDataDir is /var/lib/pando as root, else ~/.local/share/pando.
func DefaultDataDir() string {
	if d := os.Getenv("PANDO_DATA_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/pando"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "pando")
	}
	return filepath.Join(home, ".local", "share", "pando")
}

// Run starts the server and blocks until ctx ends, then shuts down cleanly.
func Run(ctx context.Context, cfg Config) error {
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
	if cfg.LayerCacheMaxBytes < 0 {
		return fmt.Errorf("--layer-cache-max-bytes %d: give a size in bytes (0: the default, 10 GiB)", cfg.LayerCacheMaxBytes)
	}
	reg, err := registryClient(cfg.InsecureRegistries)
	if err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if os.Geteuid() != 0 {
		return errors.New("pando server runs containers with runc and needs root: run it with sudo (or as root)")
	}
	fdLimit := raiseFileLimit(log)
	release, err := openDataDir(cfg.DataDir, "blobs", tempDirName, "cell", "containers")
	if err != nil {
		return err
	}
	defer release()
	tempDir := filepath.Join(cfg.DataDir, tempDirName)
	if n, err := sweepTempDir(tempDir); err != nil {
		return err
	} else if n > 0 {
		log.Info("removed temp files a previous run left", "dir", tempDir, "entries", n)
	}

	// Listen first so a port conflict fails fast and tests learn the port.
	apiLn, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on API address %s: %w (is another pando server running? use --api-addr)", cfg.APIAddr, err)
	}
	defer apiLn.Close()
	routerLn, err := net.Listen("tcp", cfg.RouterAddr)
	if err != nil {
		return fmt.Errorf("listen on router address %s: %w (use --router-addr)", cfg.RouterAddr, err)
	}
	defer routerLn.Close()
	apiURL := "http://" + apiLn.Addr().String()
	routerURL := "http://" + routerLn.Addr().String()
	routerTLS, err := listenRouterTLS(cfg, log)
	if err != nil {
		return err
	}
	if routerTLS != nil {
		defer routerTLS.ln.Close()
	}

	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "ccdb.sqlite")
	}
	store, err := sqlstore.Open(ctx, dsn, log.With("component", "ccdb"))
	if err != nil {
		return fmt.Errorf("open CCDB: %w", err)
	}
	defer store.Close()

	blobs, err := fsblob.New(filepath.Join(cfg.DataDir, "blobs"), fsblob.WithTempDir(tempDir))
	if err != nil {
		return fmt.Errorf("open blobstore: %w", err)
	}

	logStore := logs.New(logs.Config{Logger: log.With("component", "logs"), AppName: appNamer(store)})
	// Every log line goes to the store and to its app's syslog drains;
	// drains may not reach the platform's own listeners.
	drains := drain.New(drain.Config{
		Sink:     logStore,
		Bindings: drainBindings{store},
		Guard:    drain.Guard{DenyPorts: platformPorts(apiLn.Addr().String(), routerLn.Addr().String(), cfg.RouterTLSAddr, cellAPIAddr(cfg))},
		Logger:   log.With("component", "syslog-drains"),
	})

	sealer, err := secrets.LoadOrCreate(filepath.Join(cfg.DataDir, "secrets.key"))
	if err != nil {
		return err
	}
	auth, err := uaa.New(uaa.Config{
		TrustedProxies: cfg.TrustedProxies,
		Users:          store,
		KeyPath:        filepath.Join(cfg.DataDir, "uaa-key.pem"),
		Issuer:         apiURL + "/oauth/token",
		Logger:         log.With("component", "uaa"),
	})
	if err != nil {
		return fmt.Errorf("start UAA: %w", err)
	}
	password, created, err := adminPassword(cfg)
	if err != nil {
		return err
	}
	if err := auth.EnsureAdmin(ctx, "admin", password); err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if created && cfg.Stdout != nil {
		fmt.Fprintf(cfg.Stdout, "Admin user: admin\nAdmin password: %s (stored in %s)\n", password, filepath.Join(cfg.DataDir, "admin-password"))
	}

	board := bbs.New(bbs.Config{Logger: log.With("component", "bbs"), ConvergeInterval: cfg.ConvergeInterval})

	backend, err := runc.New(runc.Config{
		StateDir:   filepath.Join(cfg.DataDir, "containers"),
		HostIDBase: cfg.ContainerHostIDBase, HostIDBlocks: cfg.ContainerHostIDBlocks,
		Logger: log.With("component", "runc"),
	})
	if err != nil {
		return fmt.Errorf("container backend: %w", err)
	}
	stagingEnv, err := parseStagingEnv(cfg.StagingEnv)
	if err != nil {
		return err
	}
	memMB, diskMB := cellCapacity(cfg)
	cellStacks := map[string]string{"host": ""}
	var ccStacks []cc.StackConfig
	for name, dir := range cfg.Stacks {
		if err := checkRootFS(name, dir); err != nil {
			return err
		}
		cellStacks[name] = dir
		ccStacks = append(ccStacks, cc.StackConfig{Name: name, Description: "Root filesystem at " + dir})
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = "/var/cache/pando"
	}
	var stagingCaches []cell.StagingCache
	goSeed, err := buildpacks.GoCacheSeedDir(ctx, cfg.CacheDir)
	if err != nil {
		log.Warn("no Go build cache seed: first Go stagings compile the standard library", "err", err)
	} else {
		stagingCaches = append(stagingCaches, cell.StagingCache{
			HostDir: goSeed, ContainerDir: "/tmp/go-cache-seed", Env: "PANDO_GO_CACHE_SEED",
			Ready: func() bool { return buildpacks.GoCacheReady(goSeed) },
		})
	}
	// Image layers: <data-dir>/layers, one content-addressed cache for
	// every container of the cell.
	images, err := newImagePuller(reg, filepath.Join(cfg.DataDir, "layers"), cfg.LayerCacheMaxBytes, log.With("component", "layers"))
	if err != nil {
		return fmt.Errorf("image layer cache: %w", err)
	}
	defer images.Close()
	rep, err := cell.New(cell.Config{
		ID:      "cell-0",
		Backend: backend,
		Adopter: backend, // instances outlive a kill -9; the rest is removed
		Blobs:   blobs,
		BlobPath: func(key string) (string, bool) {
			p, err := blobs.Path(key)
			return p, err == nil
		},
		Reporter:               board,
		Logs:                   drains,
		WorkDir:                filepath.Join(cfg.DataDir, "cell"),
		HostAddr:               "127.0.0.1",
		TotalMemoryMB:          memMB,
		TotalDiskMB:            diskMB,
		StagingCaches:          stagingCaches,
		StagingEnv:             stagingEnv,
		StagingEgress:          cfg.StagingEgress,
		StagingEgressMaxBytes:  cfg.StagingEgressMaxBytes,
		StagingEgressDenyPorts: platformPorts(apiLn.Addr().String(), routerLn.Addr().String(), cfg.RouterTLSAddr, cellAPIAddr(cfg)),
		LogRateCeiling:         cfg.LogRateCeiling,
		Stacks:                 cellStacks,
		CFStackNames:           map[string]string{"host": cfg.HostCFStack},
		DockerStager:           dockerStager(images),
		Images:                 images,
		LayerCacheBytes:        images.CacheBytes,
		Logger:                 log.With("component", "cell"),
	})
	if err != nil {
		return fmt.Errorf("start cell: %w", err)
	}
	board.RegisterCell(rep)

	// Cells on other machines join and report here (mutual TLS).
	// Only an address the operator chose is required: when the derived
	// one (API port + 1) is taken, the server runs without joined cells.
	// Routers in other processes (`pando router`) follow the table the
	// route emitter builds, on the cell listener.
	routeHub := routestream.NewHub(cfg.SystemDomain, 0, 0)
	routeHub.Hold() // released below, once cells' instances are adopted
	cells, err := listenCellAPI(cfg, board, blobs, drains, routeHub, log.With("component", "cell-api"))
	var busy *cellListenError
	switch {
	case errors.As(err, &busy) && cfg.CellAPIAddr == "":
		log.Warn("cells on other machines cannot join this server: its cell API port is taken; set --cell-api-addr", "err", err)
		cells = nil
	case err != nil:
		return err
	default:
		defer cells.ln.Close()
	}

	// The router reaches this cell's instances straight through their
	// network namespaces (one fd per backend connection); other addresses
	// are dialed as usual.
	var dialer net.Dialer
	// The API is also served on the router's system hosts (set below,
	// before the router serves).
	var systemAPI http.Handler
	// Route services are the API's route bindings (set below, before
	// the router serves).
	var api *cc.API
	rtr := router.New(router.Config{
		Logger:  log.With("component", "router"),
		LogSink: drains,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c, ok, err := rep.DialHostPort(ctx, addr); ok {
				return c, err
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxConns:          routerMaxConns(cfg.RouterMaxConns, fdLimit, apiMaxConns(fdLimit), log),
		MaxConnsPerClient: cfg.RouterMaxConnsPerClient,
		MaxRequestsPerApp: cfg.RouterMaxRequestsPerApp,
		TrustedProxies:    cfg.TrustedProxies,
		System: &router.SystemRoutes{Domain: cfg.SystemDomain, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			systemAPI.ServeHTTP(w, r)
		})},
		RouteServices: routeServicesFunc(func(host, path string) string { return api.RouteServiceURL(host, path) }),
	})

	stackRuntimes := &stackprobe.Cache{Stacks: maps.Clone(cellStacks)}
	api, err = cc.New(cc.Config{
		BaseURL:             apiURL,
		Domain:              cfg.Domain,
		ReservedHosts:       systemHosts(cfg.SystemDomain),
		RouterURL:           routerURL,
		Stacks:              ccStacks,
		StackRuntimes:       stackRuntimes,
		StagingTimeout:      cfg.StagingTimeout,
		MaxUploadBytes:      cfg.MaxUploadBytes,
		DefaultLogRateLimit: cfg.DefaultLogRateLimit,
		Secrets:             sealer,
		TempDir:             tempDir,
		Store:               store,
		Blobs:               blobs,
		Runtime:             board,
		Stats:               cellStats{board: board},
		Logs:                drains,
		ServicesChanged:     drains.Kick,
		Auth:                tokenAuth{auth},
		Logger:              log.With("component", "cc"),
		PublicRoutes: func(mux *http.ServeMux) {
			auth.Routes(mux)
			cells.joinRoute(mux)
		},
		AuthedRoutes: logStore.Routes,
		// The cell stages docker packages (DockerStager) and runs their
		// images (Images).
		DockerEnabled: true,
	})
	if err != nil {
		return fmt.Errorf("start API: %w", err)
	}
	if err := api.Seed(ctx, builtinBuildpacks()); err != nil {
		return fmt.Errorf("seed CCDB: %w", err)
	}

	// The run loops outlive the signal for a moment: the cell stops first,
	// while the API still follows what it reports (task completions).
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	emitter := &routeEmitter{rt: board, router: teeTable{rtr, routeHub}, log: log.With("component", "route-emitter"), syncReq: make(chan chan struct{})}
	g.Go(func() error { emitter.run(gctx); return nil })
	g.Go(func() error { api.FollowRuntime(gctx); return nil })
	g.Go(func() error { drains.Run(gctx); return nil })
	g.Go(func() error { return ignoreCanceled(board.Run(gctx)) })
	g.Go(func() error { trimResourceCache(gctx, blobs, cfg.ResourceCacheMaxBytes, log); return nil })
	// Probing the host's runtimes takes a second: before anyone asks.
	g.Go(func() error {
		for name := range cellStacks {
			if _, err := stackRuntimes.Runtimes(gctx, name); err != nil && gctx.Err() == nil {
				log.Warn("probe stack runtimes", "stack", name, "err", err)
			}
		}
		return nil
	})
	if goSeed != "" {
		g.Go(func() error {
			if err := buildpacks.WarmGoCache(gctx, goSeed, ""); err != nil && gctx.Err() == nil {
				log.Warn("warm Go build cache", "err", err)
			}
			return nil
		})
	}

	// Joined cells keep running across a restart: the BBS waits (a
	// presence TTL at most) for those it knew to report what they run,
	// adopts their instances and the stagings and tasks they still run,
	// and only then places what is missing and fails what nobody claimed.
	// So does the local cell: it adopted its RUNNING instances (New).
	local := rep.Inventory()
	var known []string
	if cells != nil {
		if known, err = readKnownCells(cfg.DataDir); err != nil {
			log.Warn("joined cells of the previous run unknown: their instances are placed afresh", "err", err)
		}
	}
	if len(local.Actuals) > 0 {
		known = append(known, rep.ID())
	}
	if len(known) > 0 {
		inFlight, err := api.InFlight(ctx)
		if err != nil {
			log.Warn("in-flight builds and tasks unknown: they fail", "err", err)
		}
		board.AwaitCells(known, inFlight, bbs.DefaultCellPresenceTTL)
	}
	if err := api.RestoreApps(ctx); err != nil {
		log.Error("restore apps", "err", err)
	}
	if len(local.Actuals) > 0 {
		if err := board.CellSynced(ctx, rep.ID(), rep.Inventory()); err != nil {
			log.Error("adopt the local cell's instances", "err", err)
		}
	}
	g.Go(func() error {
		if board.WaitAdopted(gctx) != nil {
			return nil
		}
		// Routers in other processes keep their last table until the
		// instances joined cells kept running are adopted and in the
		// table: a table without them would drop routes that still work.
		if emitter.sync(gctx) == nil {
			routeHub.Release()
		}
		if err := api.FailInterrupted(gctx); err != nil && gctx.Err() == nil {
			log.Error("fail interrupted builds and tasks", "err", err)
		}
		if cells != nil {
			keepKnownCells(gctx, cfg.DataDir, board, log.With("component", "cell-api"))
		}
		return nil
	})

	// Long polls and log streams end when the server stops.
	systemAPI = apiHandler(systemHandler(gctx, api, cfg.SystemDomain), cfg.APITimeouts)
	apiSrv := newAPIServer(systemHostLinks(api, cfg.SystemDomain), cfg.APITimeouts, func(net.Listener) context.Context { return gctx })
	apiCapped := connlimit.Wrap(apiLn, apiMaxConns(fdLimit), apiMaxConnsPerClient, "the API")
	g.Go(func() error { return serveUntil(gctx, apiSrv, apiCapped) })
	g.Go(func() error { return ignoreCanceled(rtr.Serve(gctx, routerLn)) })
	g.Go(func() error { return cells.serve(gctx) })
	routerHTTPS := ""
	if routerTLS != nil {
		routerHTTPS = "https://" + routerTLS.ln.Addr().String()
		if cfg.Stdout != nil {
			fmt.Fprint(cfg.Stdout, certNotice(routerHTTPS, routerTLS.certs, routerTLS.selfSigned))
		}
		tlsCfg := certs.ServerConfig(routerTLS.certs...)
		g.Go(func() error { return ignoreCanceled(rtr.ServeTLS(gctx, routerTLS.ln, tlsCfg)) })
	}

	log.Info("pando server started", "api", apiURL, "router", routerURL, "router_https", routerHTTPS, "cell_api", cells.address(),
		"domain", cfg.Domain, "system_domain", cfg.SystemDomain, "data_dir", cfg.DataDir,
		"cell_token_file", filepath.Join(cfg.DataDir, cellauth.TokenFile),
		"router_token_file", filepath.Join(cfg.DataDir, cellauth.RouterTokenFile))
	if cfg.Ready != nil {
		cfg.Ready(apiLn.Addr().String(), routerLn.Addr().String())
	}
	select {
	case <-ctx.Done(): // SIGTERM or SIGINT
	case <-gctx.Done(): // a component failed
	}
	log.Info("pando server stopping")
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stop()
	if err := rep.Shutdown(shutdownCtx); err != nil {
		log.Error("stop app containers", "err", err)
	}
	// Whatever is left (nothing, normally) and the server's cgroup parents.
	backend.Close()
	if err := backend.Cleanup(shutdownCtx); err != nil {
		log.Warn("clean up containers", "err", err)
	}
	cancel()
	err = g.Wait()
	api.Close()
	log.Info("pando server stopped")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// trimResourceCache keeps the resource-match cache within its bound: at
// start and then hourly.
func trimResourceCache(ctx context.Context, blobs *fsblob.Store, maxBytes int64, log *slog.Logger) {
	if maxBytes <= 0 {
		maxBytes = 4 << 30
	}
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if n, err := blobs.Trim(ctx, "resources/", maxBytes); err != nil && ctx.Err() == nil {
			log.Warn("trim resource cache", "err", err)
		} else if n > 0 {
			log.Info("trimmed resource cache", "removed", n, "max_bytes", maxBytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// Handlers still running past the grace period: cut them off
			// before the database closes under them.
			_ = srv.Close()
		}
		<-errc
		return nil
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// adminPassword is PANDO_ADMIN_PASSWORD (via cfg), else the stored one,
// else a new random one stored 0600.
func adminPassword(cfg Config) (string, bool, error) {
	path := filepath.Join(cfg.DataDir, "admin-password")
	if cfg.AdminPassword != "" {
		if err := os.WriteFile(path, []byte(cfg.AdminPassword+"\n"), 0o600); err != nil {
			return "", false, fmt.Errorf("store admin password: %w", err)
		}
		return cfg.AdminPassword, false, nil
	}
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), false, nil
	}
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", false, err
	}
	for i := range buf {
		buf[i] = alphabet[int(buf[i])%len(alphabet)]
	}
	pw := string(buf)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("store admin password: %w", err)
	}
	return pw, true, nil
}

// cellCapacity defaults the local cell to the machine's memory and a disk
// budget from the data dir's free space.
func cellCapacity(cfg Config) (int, int) {
	mem, disk := cfg.CellMemoryMB, cfg.CellDiskMB
	if mem <= 0 {
		mem = 8192
		if b, err := os.ReadFile("/proc/meminfo"); err == nil {
			var kb int
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "MemTotal:") {
					fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
				}
			}
			if kb > 0 {
				mem = kb / 1024
			}
		}
	}
	if disk <= 0 {
		disk = 100 * 1024
	}
	return mem, disk
}

// platformPorts are the ports of the server's own listeners, which the
// staging egress proxy refuses on local addresses.
func platformPorts(addrs ...string) [][2]int {
	var ports [][2]int
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				ports = append(ports, [2]int{n, n})
			}
		}
	}
	return ports
}

// parseStagingEnv reads --staging-env KEY=VALUE flags. Errors name the
// key only: the value may hold a password (a proxy URL's).
func parseStagingEnv(kvs []string) ([]pando.EnvVar, error) {
	out := make([]pando.EnvVar, 0, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, errors.New("--staging-env: want KEY=VALUE (an argument has no '=')")
		case !envName.MatchString(k):
			return nil, fmt.Errorf("--staging-env %q: not an environment variable name (letters, digits, _)", k)
		case strings.IndexByte(v, 0) >= 0:
			return nil, fmt.Errorf("--staging-env %s: the value has a NUL byte", k)
		case k == "PORT" || k == "HOME" || k == "MEMORY_LIMIT" || strings.HasPrefix(k, "CF_") || strings.HasPrefix(k, "VCAP_"):
			return nil, fmt.Errorf("--staging-env %s: the platform sets %s itself", k, k)
		}
		out = append(out, pando.EnvVar{Name: k, Value: v})
	}
	return out, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkRootFS rejects a stack whose directory is not a usable root
// filesystem, at start-up rather than at the first staging.
func checkRootFS(name, dir string) error {
	if name == "" || name == "host" || strings.ContainsAny(name, "/ \t") {
		return fmt.Errorf("--stack %s=%s: invalid stack name", name, dir)
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("--stack %s=%s: the root filesystem must be an absolute path", name, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "sh")); err != nil {
		return fmt.Errorf("--stack %s=%s: not a root filesystem (no /bin/sh); build one with `make stack`", name, dir)
	}
	return nil
}

// tokenAuth adapts the UAA service to the API's Authenticator.
type tokenAuth struct{ s *uaa.Service }

func (t tokenAuth) Authenticate(r *http.Request) (cc.Identity, error) {
	id, err := t.s.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return cc.Identity{}, err
	}
	return cc.Identity{UserGUID: id.UserGUID, UserName: id.UserName, Scopes: id.Scopes}, nil
}

// UserDeleted tells UAA that the API deleted a user: their tokens end now.
func (t tokenAuth) UserDeleted(guid string) { t.s.UserDeleted(guid) }

func builtinBuildpacks() []cc.BuiltinBuildpack {
	var out []cc.BuiltinBuildpack
	for _, b := range buildpacks.Builtin() {
		out = append(out, cc.BuiltinBuildpack{Name: b.Name, Position: b.Position, Zip: b.Zip})
	}
	return out
}
