package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cellapi"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/connlimit"
)

// CellConfig is `pando cell`'s configuration: a cell on another machine
// (or address) that joins a server.
type CellConfig struct {
	// JoinURL is the server's API URL, or the comma-separated URLs of the
	// API replicas sharing one database (the cell moves to the next that
	// answers when the one in use is unreachable); Token the join token
	// from the server's <data-dir>/cell-token.
	JoinURL string
	Token   string
	DataDir string
	// Addr is IP:PORT the rep API listens on; its IP is also where the
	// instances' host ports open, which the router dials.
	Addr string
	// ID names the cell; default derived from the host name and Addr.
	ID       string
	Zone     string
	MemoryMB int
	DiskMB   int
	// Stacks maps extra stack names to root filesystem dirs ("host" is
	// always offered).
	Stacks         map[string]string
	HostCFStack    string
	CacheDir       string
	LogRateCeiling int
	// MaxConcurrentStarts bounds the container starts the cell runs at
	// once; 0 means cell.DefaultMaxConcurrentStarts().
	MaxConcurrentStarts   int
	ContainerHostIDBase   uint32
	ContainerHostIDBlocks int
	InsecureRegistries    []string
	// LayerCacheMaxBytes bounds the unpacked bytes of the cell's image
	// layer cache (--layer-cache-max-bytes); 0 means 10 GiB.
	LayerCacheMaxBytes int64
	// StagingEnv is KEY=VALUE environment for this cell's staging
	// containers (as the server's --staging-env).
	StagingEnv []string
	// StagingEgress (--staging-egress) gives staging an HTTP proxy the cell
	// serves, as the server's local cell does.
	StagingEgress bool
	// StagingEgressMaxBytes (--staging-egress-max-bytes) bounds what one
	// staging downloads through it (0: the cell's default, -1: none).
	StagingEgressMaxBytes int64
	// Heartbeat is how often the cell renews its presence (default: a
	// third of the server's presence TTL, cellapi.KeepPresence).
	Heartbeat time.Duration
	// SyncInterval is how often the cell sends the server what it runs
	// and stops what the server does not want (--sync-interval; default
	// cell.DefaultSyncInterval).
	SyncInterval time.Duration
	Logger       *slog.Logger

	// backend, when set (tests), runs the containers instead of runc.
	backend containerBackend
}

func (cfg CellConfig) cellRuntime() cellRuntimeConfig {
	return cellRuntimeConfig{
		verb: "pando cell", dataDir: cfg.DataDir, cacheDir: cfg.CacheDir, stacks: cfg.Stacks,
		stagingEnv: cfg.StagingEnv, insecureRegistries: cfg.InsecureRegistries,
		layerCacheMaxBytes: cfg.LayerCacheMaxBytes,
		hostIDBase:         cfg.ContainerHostIDBase, hostIDBlocks: cfg.ContainerHostIDBlocks,
		backend: cfg.backend,
	}
}

// DefaultCellID is the ID a cell takes without --id: the host's name and
// the cell's IP.
func DefaultCellID(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "cell"
	}
	id := strings.ToLower(strings.SplitN(name, ".", 2)[0]) + "-" + strings.NewReplacer(":", "-", "[", "", "]", "").Replace(host)
	var b strings.Builder
	for _, r := range id {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), ".-")
}

// RunCell joins the server, serves the rep on Addr and runs the work the
// server places on it until ctx ends; then it stops its containers
// (reporting them gone) and leaves.
func RunCell(ctx context.Context, cfg CellConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.JoinURL == "" || cfg.Token == "" || cfg.Addr == "" || cfg.DataDir == "" {
		return errors.New("pando cell needs --join API_URL, --token TOKEN, --addr IP:PORT and --data-dir DIR")
	}
	tok, err := cellauth.ParseToken(cfg.Token)
	if err != nil {
		return err
	}
	urls, err := parseAPIURLs("--join", cfg.JoinURL)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("--addr %q: want IP:PORT with the IP the server and the router reach this cell at", cfg.Addr)
	}
	if cfg.ID == "" {
		cfg.ID = DefaultCellID(cfg.Addr)
	}
	if err := cellauth.CheckCellID(cfg.ID); err != nil {
		return fmt.Errorf("--id: %w", err)
	}
	plan, err := planCellRuntime(cfg.cellRuntime())
	if err != nil {
		return err
	}
	raiseFileLimit(cfg.Logger)
	release, err := openDataDir(cfg.DataDir, "cell", "containers")
	if err != nil {
		return err
	}
	defer release()
	n, err := openCellNode(ctx, cfg, newAPIReplicas(urls, tok, cfg.Logger), host, plan)
	if err != nil {
		return err
	}
	defer n.close()
	return n.run(ctx)
}

// cellNode is `pando cell` joined to its server: the cell runtime, the
// rep (served over mutual TLS on --addr) and the client of the server it
// reports, fetches blobs and ships logs through.
type cellNode struct {
	cfg     CellConfig
	log     *slog.Logger
	ln      net.Listener // the rep's, before TLS
	rt      *cellRuntime
	server  *cellapi.ServerClient
	shipper *cellapi.LogShipper
	rep     *cell.Rep
	creds   *cellauth.Credentials
}

// openCellNode joins the server (getting or reusing the cell's
// certificate), listens on --addr and makes the rep.
func openCellNode(ctx context.Context, cfg CellConfig, apis *apiReplicas, host string, plan *cellPlan) (_ *cellNode, err error) {
	log := cfg.Logger
	jctx, cancelJoin := context.WithTimeout(ctx, time.Minute)
	var creds *cellauth.Credentials
	err = apis.each(jctx, false, func(ctx context.Context, u *url.URL) error {
		var err error
		creds, err = cellauth.Join(ctx, apis.hc, u.String(), apis.tok, cfg.ID, filepath.Join(cfg.DataDir, "credentials"))
		return err
	})
	cancelJoin()
	if err != nil {
		return nil, err
	}
	log = log.With("cell_id", cfg.ID)
	if creds.Kept {
		log.Info("rejoined (certificate kept)", "server", creds.CellAPI)
	} else {
		log.Info("joined (certificate issued)", "server", creds.CellAPI)
	}

	// The rep's listener first: a port conflict fails before any work.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --addr %s: %w", cfg.Addr, err)
	}
	n := &cellNode{cfg: cfg, log: log, ln: ln}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	n.rt, err = openCellRuntime(ctx, plan, log, false)
	if err != nil {
		return nil, err
	}

	n.server = cellapi.NewServerClient(creds, log.With("component", "cell-client"))
	n.server.SetFailover(apis.failover)
	n.shipper = n.server.NewLogShipper(0)
	repCfg := n.rt.cellConfig(cfg.HostCFStack)
	repCfg.ID, repCfg.Zone = cfg.ID, cfg.Zone
	repCfg.Blobs, repCfg.Reporter, repCfg.Logs = n.server, n.server, n.shipper
	// A staging's lines reach the server before its completion does.
	repCfg.SyncLogs = n.shipper.Sync
	repCfg.HostAddr = host
	repCfg.TotalMemoryMB, repCfg.TotalDiskMB = cfg.MemoryMB, cfg.DiskMB
	repCfg.StagingEgress = cfg.StagingEgress
	// The rep's own port; the server's are on its machine.
	repCfg.StagingEgressDenyPorts = platformPorts(ln.Addr().String())
	repCfg.StagingEgressMaxBytes = cfg.StagingEgressMaxBytes
	repCfg.LogRateCeiling = cfg.LogRateCeiling
	repCfg.MaxConcurrentStarts = cfg.MaxConcurrentStarts
	repCfg.Logger = log.With("component", "cell")
	n.rep, err = cell.New(repCfg)
	if err != nil {
		return nil, fmt.Errorf("start cell: %w", err)
	}
	n.creds = creds
	return n, nil
}

func (n *cellNode) close() {
	if n.rt != nil {
		n.rt.close()
	}
	n.ln.Close()
}

// run serves the rep, registers, keeps the cell's presence and runs the
// work placed here until ctx ends; then it evacuates, stops and leaves.
func (n *cellNode) run(ctx context.Context) error {
	cfg, log, rep, server, shipper := n.cfg, n.log, n.rep, n.server, n.shipper
	repURL := "https://" + n.ln.Addr().String()
	repSrv := internalServer(cellapi.NewRepHandler(rep), log)
	// Only the server calls the rep: a few connections are plenty.
	tlsLn := tls.NewListener(connlimit.Wrap(n.ln, 256, 64, "the rep"), cellauth.ServerTLS(n.creds.Cert, n.creds.Pool))

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return serveUntil(gctx, repSrv, tlsLn) })
	g.Go(func() error { shipper.Run(gctx); return nil })

	st, _ := rep.State(ctx)
	rctx, cancelReg := context.WithTimeout(ctx, 30*time.Second)
	err := server.Register(rctx, repURL, st)
	cancelReg()
	if err != nil {
		cancel()
		_ = g.Wait()
		n.rt.stop(context.WithoutCancel(ctx))
		return fmt.Errorf("register with the server: %w", err)
	}
	// Presence stops before the cell leaves, or a renewal would register
	// it again.
	presenceCtx, stopPresence := context.WithCancel(gctx)
	defer stopPresence()
	presenceDone := make(chan struct{})
	go func() {
		defer close(presenceDone)
		n.keepPresence(presenceCtx, repURL)
	}()
	n.rt.warm(gctx, g)
	// The stacks' runtimes, for the server's `pando stacks` (the cell's
	// state reports them).
	g.Go(func() error { n.rt.keepStacksProbed(gctx, stackReprobeInterval); return nil })
	// Defence in depth: what the server forgot without telling this
	// cell is stopped within a sync period.
	g.Go(func() error { rep.RunSync(presenceCtx, server, cfg.SyncInterval); return nil })
	log.Info("pando cell started", "addr", n.ln.Addr().String(), "zone", cfg.Zone, "data_dir", cfg.DataDir)

	// SIGUSR1 drains the cell and keeps it up (for maintenance: SIGTERM
	// once its instances run elsewhere).
	drainSig := make(chan os.Signal, 1)
	signal.Notify(drainSig, syscall.SIGUSR1)
	defer signal.Stop(drainSig)
	awaitStop(ctx, gctx, log, drainSig, func() <-chan struct{} {
		rep.SetDraining(true)
		done := make(chan struct{})
		g.Go(func() error {
			defer close(done)
			evacuate(gctx, log, server, rep, evacuationTimeout, evacuationServerLoss)
			return nil
		})
		return done
	})
	log.Info("pando cell stopping")
	// Nothing new is placed here; each instance keeps serving until its
	// replacement runs elsewhere, then the server stops it here.
	rep.SetDraining(true)
	if ctx.Err() != nil && gctx.Err() == nil {
		evacuate(context.WithoutCancel(ctx), log, server, rep, evacuationTimeout, evacuationServerLoss)
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stop()
	if err := rep.Shutdown(shutdownCtx); err != nil {
		log.Error("stop app containers", "err", err)
	}
	stopPresence()
	<-presenceDone
	if err := server.Leave(shutdownCtx); err != nil {
		log.Warn("leave the server (it forgets this cell when its presence expires)", "err", err)
	}
	n.rt.stop(shutdownCtx)
	// The last lines (instances stopping) still go out.
	if err := shipper.Flush(shutdownCtx); err != nil {
		log.Warn("send the last log lines", "err", err)
	}
	cancel()
	err = g.Wait()
	log.Info("pando cell stopped")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// awaitStop returns once ctx or gctx ends. A signal on drainSig (SIGUSR1)
// calls drain, which starts the cell's evacuation and returns a channel
// closed when it ends; a signal while it is under way only logs so: one
// evacuation at a time is enough. One that ended (it gave up on an
// unreachable server, or its deadline passed) is started again.
func awaitStop(ctx, gctx context.Context, log *slog.Logger, drainSig <-chan os.Signal, drain func() <-chan struct{}) {
	var evacuating <-chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-gctx.Done():
			return
		case <-drainSig:
			if evacuating != nil {
				select {
				case <-evacuating:
					log.Info("draining again (SIGUSR1): the last evacuation ended; asking the server again to move what is left")
					evacuating = drain()
				default:
					log.Info("already draining (SIGUSR1 again): the evacuation under way goes on; SIGTERM stops the cell")
				}
				continue
			}
			log.Info("draining (SIGUSR1): the instances move to other cells; SIGTERM stops the cell")
			evacuating = drain()
		}
	}
}

// keepPresence renews the cell's presence until ctx ends. When the
// server did not know the cell (it restarted, or had lost the cell), the
// cell reports what it still runs, for the server to adopt.
func (n *cellNode) keepPresence(ctx context.Context, repURL string) {
	n.server.KeepPresence(ctx, repURL, n.cfg.Heartbeat, n.rep.State, func() {
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		inv := n.rep.Inventory()
		if err := n.server.ReportInventory(ictx, inv); err != nil {
			n.log.Warn("report this cell's work to the server", "err", err)
			return
		}
		n.log.Info("reported this cell's work to the server", "instances", len(inv.Actuals), "tasks", len(inv.Tasks))
	})
}

// stackReprobeInterval is how often a joined cell looks whether its
// stacks' runtimes changed (the server's local cell does on demand).
const stackReprobeInterval = 10 * time.Minute

// evacuationTimeout bounds how long a stopping cell waits for its
// instances to be replaced elsewhere (the BBS's evacuation deadline).
const evacuationTimeout = 10 * time.Minute

// evacuationRetry is the first wait before a failed drain request that
// follows a server restart is sent again; the wait doubles on each failure
// up to evacuationRetryMax.
const (
	evacuationRetry    = 500 * time.Millisecond
	evacuationRetryMax = 15 * time.Second
)

// evacuationServerLoss is how long the server may be unreachable during
// an evacuation before the cell gives up waiting for it to move the
// instances (a server stopped at the same time would otherwise hold a
// stopping cell for evacuationTimeout).
const evacuationServerLoss = 30 * time.Second

// drainer is the server side of an evacuation.
type drainer interface {
	Drain(ctx context.Context) (cellapi.DrainAnswer, error)
	// PresenceFailingFor is how long the cell has not reached the
	// server (0 while it does).
	PresenceFailingFor() time.Duration
	// Registrations changes when the server registers the cell again
	// (it restarted, forgetting the drain).
	Registrations() int64
}

// stateReader is the cell's own view of its instances.
type stateReader interface {
	State(ctx context.Context) (pando.CellState, error)
}

// evacuate asks the server to drain the cell and waits (up to timeout)
// until the server has stopped every instance here, each once its
// replacement was RUNNING elsewhere, or after a short grace when no other
// cell can take it. Presence keeps being renewed meanwhile. If the server
// cannot be asked, the cell stops at once; if it is unreachable for
// serverLoss during the wait, the cell gives up waiting then. A server
// that registers the cell again (it restarted, forgetting the drain) is
// asked again, with backoff until it accepts.
func evacuate(ctx context.Context, log *slog.Logger, server drainer, cell stateReader, timeout, serverLoss time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	drain := func() error {
		dctx, cancelDrain := context.WithTimeout(ctx, 30*time.Second)
		answer, err := server.Drain(dctx)
		cancelDrain()
		if err != nil {
			return err
		}
		for _, a := range answer.Stopping {
			log.Warn("no other cell can take the instance: the server stops it after its requests in flight",
				"process_guid", a.ProcessGUID, "instance_index", a.Index, "instance_guid", a.InstanceGUID, "reason", a.PlacementError)
		}
		return nil
	}
	regs := server.Registrations()
	if err := drain(); err != nil {
		log.Warn("evacuation not possible, stopping the instances now", "err", err)
		return
	}
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// A drain to send again (the server restarted), and when next.
	var (
		resend      bool
		resendAt    time.Time
		resendDelay time.Duration
	)
	for {
		st, err := cell.State(ctx)
		n := 0
		for _, c := range st.InstancesPerProcess {
			n += c
		}
		if err == nil && n == 0 {
			log.Info("evacuation done: no instance left here (each runs elsewhere, or waits UNCLAIMED on the server when no other cell could take it)",
				"took", time.Since(start).Round(time.Millisecond))
			return
		}
		if r := server.Registrations(); r != regs {
			// A restarted server knows nothing of the drain: ask again.
			regs = r
			log.Info("the server registered this cell again (it restarted): asking it again to drain the cell", "instances", n)
			resend, resendAt, resendDelay = true, time.Now(), evacuationRetry
		}
		if resend && !time.Now().Before(resendAt) {
			if err := drain(); err != nil {
				log.Warn("ask the server again to drain the cell: retrying", "err", err, "retry_in", resendDelay)
				resendAt = time.Now().Add(resendDelay)
				resendDelay = min(2*resendDelay, evacuationRetryMax)
			} else {
				resend = false
			}
		}
		if d := server.PresenceFailingFor(); d >= serverLoss {
			log.Warn("the server is unreachable: the evacuation cannot finish, giving up on it (a stopping cell stops its remaining instances; the server places them again when it is back)",
				"instances", n, "unreachable_for", d.Round(time.Second))
			return
		}
		select {
		case <-ctx.Done():
			log.Warn("evacuation deadline passed, stopping the remaining instances", "instances", n, "timeout", timeout)
			return
		case <-tick.C:
		}
	}
}
