package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cellapi"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/connlimit"
	"github.com/pandoplatform/pando/internal/container/runc"
)

// CellConfig is `pando cell`'s configuration: a cell on another machine
// (or address) that joins a server.
type CellConfig struct {
	// JoinURL is the server's API URL; Token the join token from the
	// server's <data-dir>/cell-token.
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
	Stacks                map[string]string
	HostCFStack           string
	CacheDir              string
	LogRateCeiling        int
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
	Logger    *slog.Logger
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
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.JoinURL == "" || cfg.Token == "" || cfg.Addr == "" || cfg.DataDir == "" {
		return errors.New("pando cell needs --join API_URL, --token TOKEN, --addr IP:PORT and --data-dir DIR")
	}
	tok, err := cellauth.ParseToken(cfg.Token)
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
	if os.Geteuid() != 0 {
		return errors.New("pando cell runs containers with runc and needs root: run it with sudo (or as root)")
	}
	reg, err := registryClient(cfg.InsecureRegistries)
	if err != nil {
		return err
	}
	stagingEnv, err := parseStagingEnv(cfg.StagingEnv)
	if err != nil {
		return err
	}
	raiseFileLimit(log)
	release, err := openDataDir(cfg.DataDir, "cell", "containers")
	if err != nil {
		return err
	}
	defer release()
	stacks := map[string]string{"host": ""}
	for name, dir := range cfg.Stacks {
		if err := checkRootFS(name, dir); err != nil {
			return err
		}
		stacks[name] = dir
	}

	jctx, cancelJoin := context.WithTimeout(ctx, time.Minute)
	creds, err := cellauth.Join(jctx, &http.Client{Timeout: 30 * time.Second}, cfg.JoinURL, tok, cfg.ID, filepath.Join(cfg.DataDir, "credentials"))
	cancelJoin()
	if err != nil {
		return err
	}
	log = log.With("cell_id", cfg.ID)
	log.Info("joined", "server", creds.CellAPI)

	// The rep's listener first: a port conflict fails before any work.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on --addr %s: %w", cfg.Addr, err)
	}
	defer ln.Close()

	backend, err := runc.New(runc.Config{
		StateDir:   filepath.Join(cfg.DataDir, "containers"),
		HostIDBase: cfg.ContainerHostIDBase, HostIDBlocks: cfg.ContainerHostIDBlocks,
		Logger: log.With("component", "runc"),
	})
	if err != nil {
		return fmt.Errorf("container backend: %w", err)
	}
	if err := backend.Cleanup(ctx); err != nil {
		log.Warn("clean up leftover containers", "err", err)
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
	images, err := newImagePuller(reg, filepath.Join(cfg.DataDir, "layers"), cfg.LayerCacheMaxBytes, log.With("component", "layers"))
	if err != nil {
		return fmt.Errorf("image layer cache: %w", err)
	}
	defer images.Close()

	server := cellapi.NewServerClient(creds, log.With("component", "cell-client"))
	shipper := server.NewLogShipper(0)
	rep, err := cell.New(cell.Config{
		ID:            cfg.ID,
		Zone:          cfg.Zone,
		Backend:       backend,
		Blobs:         server,
		Reporter:      server,
		Logs:          shipper,
		WorkDir:       filepath.Join(cfg.DataDir, "cell"),
		HostAddr:      host,
		TotalMemoryMB: cfg.MemoryMB,
		TotalDiskMB:   cfg.DiskMB,
		StagingCaches: stagingCaches,
		StagingEnv:    stagingEnv,
		StagingEgress: cfg.StagingEgress,
		// The rep's own port; the server's are on its machine.
		StagingEgressDenyPorts: platformPorts(ln.Addr().String()),
		StagingEgressMaxBytes:  cfg.StagingEgressMaxBytes,
		LogRateCeiling:         cfg.LogRateCeiling,
		Stacks:                 stacks,
		CFStackNames:           map[string]string{"host": cfg.HostCFStack},
		DockerStager:           dockerStager(images),
		Images:                 images,
		LayerCacheBytes:        images.CacheBytes,
		Logger:                 log.With("component", "cell"),
	})
	if err != nil {
		return fmt.Errorf("start cell: %w", err)
	}
	repURL := "https://" + ln.Addr().String()
	repSrv := &http.Server{
		Handler:           cellapi.NewRepHandler(rep),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// Only the server calls the rep: a few connections are plenty.
	tlsLn := tls.NewListener(connlimit.Wrap(ln, 256, 64, "the rep"), cellauth.ServerTLS(creds.Cert, creds.Pool))

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return serveUntil(gctx, repSrv, tlsLn) })
	g.Go(func() error { shipper.Run(gctx); return nil })

	st, _ := rep.State(ctx)
	rctx, cancelReg := context.WithTimeout(ctx, 30*time.Second)
	err = server.Register(rctx, repURL, st)
	cancelReg()
	if err != nil {
		cancel()
		_ = g.Wait()
		backend.Close()
		return fmt.Errorf("register with the server: %w", err)
	}
	// Presence stops before the cell leaves, or a renewal would register
	// it again.
	presenceCtx, stopPresence := context.WithCancel(gctx)
	defer stopPresence()
	presenceDone := make(chan struct{})
	go func() {
		defer close(presenceDone)
		server.KeepPresence(presenceCtx, repURL, cfg.Heartbeat, rep.State, func() {
			// The server did not know this cell (it restarted, or had
			// lost the cell): it adopts what the cell still runs for it.
			ictx, cancel := context.WithTimeout(presenceCtx, time.Minute)
			defer cancel()
			inv := rep.Inventory()
			if err := server.ReportInventory(ictx, inv); err != nil {
				log.Warn("report this cell's work to the server", "err", err)
				return
			}
			log.Info("reported this cell's work to the server", "instances", len(inv.Actuals), "tasks", len(inv.Tasks))
		})
	}()
	if goSeed != "" {
		g.Go(func() error {
			if err := buildpacks.WarmGoCache(gctx, goSeed, ""); err != nil && gctx.Err() == nil {
				log.Warn("warm Go build cache", "err", err)
			}
			return nil
		})
	}
	log.Info("pando cell started", "addr", ln.Addr().String(), "zone", cfg.Zone, "data_dir", cfg.DataDir)

	// SIGUSR1 drains the cell and keeps it up (for maintenance: SIGTERM
	// once its instances run elsewhere).
	drainSig := make(chan os.Signal, 1)
	signal.Notify(drainSig, syscall.SIGUSR1)
	defer signal.Stop(drainSig)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-gctx.Done():
			break wait
		case <-drainSig:
			log.Info("draining (SIGUSR1): the instances move to other cells; SIGTERM stops the cell")
			rep.SetDraining(true)
			g.Go(func() error {
				evacuate(gctx, log, server, rep, evacuationTimeout)
				return nil
			})
		}
	}
	log.Info("pando cell stopping")
	// Nothing new is placed here; each instance keeps serving until its
	// replacement runs elsewhere, then the server stops it here.
	rep.SetDraining(true)
	if ctx.Err() != nil && gctx.Err() == nil {
		evacuate(context.WithoutCancel(ctx), log, server, rep, evacuationTimeout)
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
	backend.Close()
	if err := backend.Cleanup(shutdownCtx); err != nil {
		log.Warn("clean up containers", "err", err)
	}
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

// evacuationTimeout bounds how long a stopping cell waits for its
// instances to be replaced elsewhere (the BBS's evacuation deadline).
const evacuationTimeout = 10 * time.Minute

// drainer is the server side of an evacuation.
type drainer interface {
	Drain(ctx context.Context) error
}

// stateReader is the cell's own view of its instances.
type stateReader interface {
	State(ctx context.Context) (pando.CellState, error)
}

// evacuate asks the server to drain the cell and waits (up to timeout)
// until the server has stopped every instance here, each once its
// replacement was RUNNING elsewhere. Presence keeps being renewed
// meanwhile. If the server cannot be asked, the cell stops at once.
func evacuate(ctx context.Context, log *slog.Logger, server drainer, cell stateReader, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dctx, cancelDrain := context.WithTimeout(ctx, 30*time.Second)
	err := server.Drain(dctx)
	cancelDrain()
	if err != nil {
		log.Warn("evacuation not possible, stopping the instances now", "err", err)
		return
	}
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := cell.State(ctx)
		n := 0
		for _, c := range st.InstancesPerProcess {
			n += c
		}
		if err == nil && n == 0 {
			log.Info("evacuation done: every instance runs elsewhere", "took", time.Since(start).Round(time.Millisecond))
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
