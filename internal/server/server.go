// Package server wires Pando's components into the processes the binary
// runs: the all-in-one `pando server` (the CC API with UAA and log-cache
// on one address, the router on another, the SQLite CCDB and filesystem
// blobstore under the data dir, the in-process BBS and auctioneer, and
// one local cell running runc containers), `pando api` (the same without
// the local cell), `pando cell` (a cell joined over mutual TLS) and
// `pando router` (a router following the routing table). They share the
// constructors of platform.go, localcell.go and cellruntime.go.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/uaa"
)

// Config is `pando server`'s configuration, built once in cmd/. `pando
// api` (RunAPI) takes it too, without the local cell's fields (CellMemoryMB,
// CellDiskMB, HostCFStack, CacheDir, LogRateCeiling, the container id,
// staging env and egress, registry and layer cache fields), and with
// Stacks naming the cells' stacks only.
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
	// cache seed, the python venv seed); default /var/cache/pando.
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
	// CellMaxConcurrentStarts bounds the container starts the local cell
	// runs at once; 0 means cell.DefaultMaxConcurrentStarts().
	CellMaxConcurrentStarts int
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
	// SyslogDrainLimits bound the syslog drains forwarded to, in all and
	// per org and space (--syslog-drain-max, -per-org, -per-space); the
	// API refuses a binding past them. Zero fields are the defaults.
	SyslogDrainLimits drain.Limits
	// MaxServiceInstancesPerOrg bounds the service instances of one org
	// (--max-service-instances-per-org); 0 means cc's default, -1 none.
	MaxServiceInstancesPerOrg int
	// CellSyncInterval is how often the local cell sends the BBS what it
	// runs and stops what the BBS does not want (--cell-sync-interval;
	// default cell.DefaultSyncInterval).
	CellSyncInterval time.Duration
	// ConvergeInterval is the BBS convergence period (default 30s).
	ConvergeInterval time.Duration
	// DatabaseClaimInterval is how often a server on PostgreSQL checks
	// that it still holds its database (sqlstore.Store.HoldClaim; default
	// 5s).
	DatabaseClaimInterval time.Duration
	// Blobstore is where packages, droplets, buildpacks, build caches and
	// the resource cache live (--blobstore): "" for <data-dir>/blobs, or
	// s3://BUCKET[/PREFIX]?endpoint=HOST:PORT (internal/blobstore/s3).
	Blobstore string
	// BlobstoreGetenv reads where the S3 blobstore's credentials are
	// (AWS_ACCESS_KEY_ID..., AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE,
	// HOME, the role's variables: see internal/blobstore/s3); nil is
	// os.Getenv.
	BlobstoreGetenv func(string) string
	// CellPresenceTTL is how long a joined cell stays registered without
	// renewing its presence (default 6s); cells renew at a third of it.
	CellPresenceTTL time.Duration
	// KeepAppsOnStop (--keep-apps-on-stop): at SIGTERM or SIGINT the
	// server stops serving and exits but leaves cell-0's instances,
	// stagings and tasks running, for the next start to adopt (as after a
	// kill -9). Off, a stop stops them.
	KeepAppsOnStop bool
	// CellHostAddr is the IP the local cell's host-port forwarders bind
	// and advertise to routers (default 127.0.0.1: only a router on this
	// machine reaches its instances).
	CellHostAddr string
	// APITimeouts bound slow and idle clients of the API listener.
	APITimeouts APITimeouts
	Logger      *slog.Logger
	// Ready, if set, is called once both listeners are up, with their
	// actual addresses (tests bind port 0).
	Ready func(apiAddr, routerAddr string)
	// Stdout receives the one-time admin password notice.
	Stdout interface{ Write([]byte) (int, error) }

	// backend, when set (tests), runs the local cell's containers
	// instead of runc.
	backend containerBackend
	// seeds, when set (tests), stand for the host's toolchains the local
	// cell's staging seeds are made with.
	seeds seedSeams
}

func (cfg Config) cellRuntime() cellRuntimeConfig {
	return cellRuntimeConfig{
		verb: "pando server", dataDir: cfg.DataDir, cacheDir: cfg.CacheDir, stacks: cfg.Stacks,
		stagingEnv: cfg.StagingEnv, insecureRegistries: cfg.InsecureRegistries,
		layerCacheMaxBytes: cfg.LayerCacheMaxBytes,
		hostIDBase:         cfg.ContainerHostIDBase, hostIDBlocks: cfg.ContainerHostIDBlocks,
		backend: cfg.backend, seeds: cfg.seeds,
	}
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

// Run starts `pando server` and blocks until ctx ends, then shuts down
// cleanly: the platform (API, BBS, router, cell listener) and cell-0,
// whose work keeps running with cfg.KeepAppsOnStop.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	p, local, closeAll, err := openServer(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	return p.run(ctx, local)
}

// openServer opens what `pando server` runs (cfg with its defaults): the
// locked data dir, the platform with its listeners and cell-0, built and
// ready to run. closeAll releases them, last opened first.
func openServer(ctx context.Context, cfg Config) (_ *platform, _ *localCell, closeAll func(), err error) {
	plan, err := planCellRuntime(cfg.cellRuntime())
	if err != nil {
		return nil, nil, nil, err
	}
	fdLimit := raiseFileLimit(cfg.Logger)
	release, err := openDataDir(cfg.DataDir, "blobs", tempDirName, "cell", "containers")
	if err != nil {
		return nil, nil, nil, err
	}
	closers := []func(){release}
	// Not the result closeAll: an error return sets it to nil before the
	// deferred clean-up runs.
	closeOpened := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeOpened()
		}
	}()
	p, err := openPlatform(ctx, cfg, "pando server", fdLimit, false)
	if err != nil {
		return nil, nil, nil, err
	}
	closers = append(closers, p.close)
	local, err := openLocalCell(ctx, cfg, plan, p)
	if err != nil {
		return nil, nil, nil, err
	}
	closers = append(closers, local.close)
	if err := p.build(ctx, local); err != nil {
		return nil, nil, nil, err
	}
	return p, local, closeOpened, nil
}

// RunAPI starts `pando api` and blocks until ctx ends, then shuts down
// cleanly: the platform of `pando server` without its local cell. Every
// staging, instance and task runs on a joined `pando cell`; while none
// is, placement fails with "no healthy cells". It runs no containers, so
// it needs no root. Stacks name the stacks the cells offer besides "host"
// (their directories are the cells' business: here they are "").
func RunAPI(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	for name, dir := range cfg.Stacks {
		if err := checkStackName(name); err != nil || dir != "" {
			return fmt.Errorf("--stack %q: want the name of a stack the cells offer (not host)", name)
		}
	}
	fdLimit := raiseFileLimit(cfg.Logger)
	release, err := openDataDir(cfg.DataDir, "blobs", tempDirName)
	if err != nil {
		return err
	}
	defer release()
	// Several `pando api` may share one PostgreSQL database: one leads,
	// the others wait as standbys (awaitLeadership).
	p, err := openPlatform(ctx, cfg, "pando api", fdLimit, sqlstore.IsPostgres(cfg.DatabaseURL))
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // stopped while a standby
	}
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.build(ctx, nil); err != nil {
		return err
	}
	return p.run(ctx, nil)
}

// trimResourceCache keeps the resource-match cache within its bound: at
// start and then hourly.
func trimResourceCache(ctx context.Context, blobs blobStore, maxBytes int64, log *slog.Logger) {
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
// else a new random one stored 0600. A crash while storing it leaves the
// old file or the new one, never a cut password.
func adminPassword(cfg Config) (string, bool, error) {
	path := filepath.Join(cfg.DataDir, "admin-password")
	if cfg.AdminPassword != "" {
		if err := atomicfile.WriteFile(path, []byte(cfg.AdminPassword+"\n"), 0o600, atomicfile.Durable()); err != nil {
			return "", false, fmt.Errorf("store admin password: %w", err)
		}
		return cfg.AdminPassword, false, nil
	}
	return uaa.LoadOrCreateAdminPassword(cfg.DataDir)
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
	if checkStackName(name) != nil {
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

// checkStackName refuses what cannot name an extra stack.
func checkStackName(name string) error {
	if name == "" || name == "host" || strings.ContainsAny(name, "/ \t") {
		return errors.New("invalid stack name")
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
