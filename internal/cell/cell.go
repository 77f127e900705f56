// Package cell is the rep: it runs staging tasks, CF tasks and LRP instances in
// containers of a container.Backend, forwards a host port to each container
// port, checks instance health, streams their output to the log sink, and
// reports state changes and task results to the BBS through a
// pando.CellReporter. It implements pando.Cell.
package cell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/egress"
)

// Config configures a Rep. ID, Backend, Blobs and WorkDir are required.
type Config struct {
	ID   string
	Zone string
	// Backend runs the containers.
	Backend container.Backend
	// Adopter, when set (the Backend, whose containers outlive this
	// process), makes New adopt the RUNNING instances a previous run of
	// the cell on the same WorkDir left (see adopt.go), then remove every
	// other container and volume with its Cleanup. Without it, the caller
	// cleans the backend up before New.
	Adopter Adopter
	// Blobs holds packages, buildpacks, droplets and build caches: the
	// server's blobstore in its own process, or its cell API
	// (cellapi.ServerClient) on a joined cell.
	Blobs BlobStore
	// BlobPath, when set, maps a blob key to a local file (a filesystem
	// blobstore on this host) so the rep reads it in place instead of
	// downloading a copy.
	BlobPath func(key string) (string, bool)
	// Reporter receives state changes; it may also be set later with
	// SetReporter. Reports made while it is nil are logged and dropped.
	Reporter pando.CellReporter
	// Logs receives app, staging and cell log lines; nil discards them.
	Logs pando.LogSink
	// SyncLogs, when set, returns once every line Logs took before the
	// call has reached the log store (or ctx ends): a sink that ships
	// lines asynchronously (a joined cell's) sets it. The rep calls it
	// before reporting a staging's or task's completion: the API adds a
	// staging's outcome as its log's last line, and a client following
	// the output reads until the newest line the store holds then. Nil:
	// Logs stores as it takes.
	SyncLogs func(ctx context.Context) error
	// WorkDir holds per-container directories and the droplet and
	// buildpack caches.
	WorkDir string
	// HostAddr is the address host ports are opened on and reported to
	// the router; default "127.0.0.1".
	HostAddr string
	// PortRange is the inclusive range of host ports; default 61000-61999.
	PortRange [2]int
	// Capacity. TotalMemoryMB and TotalDiskMB default to the host's
	// memory and the size of WorkDir's filesystem; MaxContainers to 250.
	TotalMemoryMB int
	TotalDiskMB   int
	MaxContainers int
	// MaxConcurrentStarts bounds the container starts the cell runs at
	// once (from preparing an instance's, task's or staging's files to its
	// process running); the others wait in order. Stagings go first and
	// have a slot of their own beyond it. Default
	// DefaultMaxConcurrentStarts().
	MaxConcurrentStarts int
	// Stacks maps a stack name to its root filesystem dir ("" is the host
	// stack); default {"host": ""}. DefaultStack is used for requests that
	// name none; default "host" if present, else the first name.
	Stacks       map[string]string
	DefaultStack string
	// CFStackNames maps a stack to the CF_STACK value buildpacks see while
	// staging on it (default: the stack's own name). CF's buildpacks refuse
	// stacks their manifest does not list, so the host stack may pose as
	// e.g. cflinuxfs4 for them.
	CFStackNames map[string]string
	// Images, when set, fetches the layers of OCI images (docker LRPs).
	// Without it the cell cannot run docker apps.
	Images ImagePuller
	// LayerCacheBytes, when set, reports the bytes Images' layer cache
	// holds on the cell's disk. They count as used disk (State's
	// LayerCacheMB) and are not offered to containers, as Diego's cells
	// count their image store.
	LayerCacheBytes func() int64
	// CachedImages, when set, lists the digests of the images whose layers
	// the cell holds or is pulling, most recently used first (State's
	// Images, at most pando.MaxCellImages): the auction prefers the cell
	// for their instances.
	CachedImages func() []string
	// StackRuntimes, when set, gives the language runtimes of the stacks
	// probed so far, reported in State; it must not block.
	StackRuntimes func() map[string][]pando.StackRuntime
	// DockerStager, when set, stages docker packages (fetches the image
	// config, no container needed), writing progress lines to out (the
	// staging log). Without it docker staging fails.
	DockerStager func(ctx context.Context, req pando.StagingRequest, out func(line string)) (pando.StagingResult, error)
	// HealthCheckInterval is the startup check interval when the LRP gives
	// none; default 2s. StartTimeout likewise; default 60s.
	HealthCheckInterval time.Duration
	StartTimeout        time.Duration
	// LivenessInterval is how often a running instance is checked;
	// default 30s.
	LivenessInterval time.Duration
	// StopGrace is how long a stopped instance gets between SIGTERM and
	// SIGKILL; default 10s.
	StopGrace time.Duration
	// StagingCaches are cell-wide, read-only caches offered to every
	// staging container (e.g. a warm Go build cache the go buildpack seeds
	// a new app's cache from).
	StagingCaches []StagingCache
	// StagingEnv is the operator's environment for staging containers only
	// (proxies, npm/pip/bundler settings): below the app's own variables,
	// which win, and above nothing the platform sets. It may carry
	// credentials: it is never logged or shown.
	StagingEnv []pando.EnvVar
	// StagingEgress gives staging containers an HTTP proxy on their own
	// loopback (stagingProxyPort) through which they reach the network
	// from the host, through the operator's proxy when StagingEnv sets
	// HTTP(S)_PROXY (NO_PROXY honoured). Off, staging has no network.
	StagingEgress bool
	// StagingEgressDenyPorts are the platform's own listening ports
	// (inclusive ranges; the cell adds its PortRange): the egress proxy
	// refuses them on local addresses, and link-local addresses always.
	StagingEgressDenyPorts [][2]int
	// StagingEgressMaxBytes bounds what one staging downloads through its
	// egress proxy; default DefaultStagingEgressMaxBytes, -1 none.
	StagingEgressMaxBytes int64
	// LogRateCeiling bounds the log lines of every container, whatever
	// its process's log rate limit, in bytes per second with each line
	// counting 64 bytes more; default DefaultLogRateCeiling, -1 none.
	LogRateCeiling int
	Logger         *slog.Logger
}

// StagingCache is a host directory mounted read-only into staging
// containers at ContainerDir, announced to buildpacks as Env=ContainerDir.
// It is offered only while Ready reports true (it may still be building).
type StagingCache struct {
	HostDir      string
	ContainerDir string
	Env          string
	Ready        func() bool
}

// Defaults.
const (
	DefaultHostAddr            = "127.0.0.1"
	DefaultMaxContainers       = 250
	DefaultHealthCheckInterval = 2 * time.Second
	// fastCheckCap bounds the startup checks' backoff for the first
	// fastCheckFor of an instance, so an app that binds after a second is
	// RUNNING within this of binding, not up to an interval later.
	fastCheckCap             = 200 * time.Millisecond
	fastCheckFor             = 15 * time.Second
	DefaultStartTimeout      = 60 * time.Second
	DefaultLivenessInterval  = 30 * time.Second
	DefaultInvocationTimeout = time.Second
	DefaultStopGrace         = 10 * time.Second
	DefaultStagingMemoryMB   = 1024
	DefaultStagingDiskMB     = 4096
	DefaultStagingTimeout    = 15 * time.Minute
	DefaultInstanceMemoryMB  = 1024
	DefaultInstanceDiskMB    = 1024
	// VcapUID and VcapGID are vcap's ids inside containers (the backend
	// maps them to host ids of the container's own).
	VcapUID = 2000
	VcapGID = 2000
)

// DefaultPortRange is where host ports come from.
var DefaultPortRange = [2]int{61000, 61999}

// Rep runs a cell's work. It is safe for concurrent use.
type Rep struct {
	cfg     Config
	log     *slog.Logger
	logs    pando.LogSink
	fetches singleflight.Group

	// ctx lives until Shutdown; background work derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// egressUpstream and egressDeny configure staging egress proxies.
	egressUpstream egress.Upstream
	egressDeny     [][2]int

	// starts bounds the container starts running at once (startgate.go).
	starts *startGate

	mu        sync.Mutex
	reporter  pando.CellReporter
	closed    bool
	draining  bool
	instances map[string]*instance // by instance guid
	tasks     map[string]*task     // by task guid
	// unacked are completed tasks whose completion the reporter has not
	// acknowledged yet (Inventory reports them).
	unacked  map[string]pando.Task
	ports    map[int]bool // host ports in use
	nextPort int

	// ending are the instances being torn down whose end (crash or
	// removal) is not reported yet (Inventory lists them as Ending).
	ending map[string]struct{}
	// syncEpoch is the mark of the last sync answer (sync.go).
	syncEpoch string

	// released is closed by ReleaseAdopted: adopted tasks report then.
	released    chan struct{}
	releaseOnce sync.Once

	// detached is closed by Detach: the cell's work is left to the next
	// process on the work dir.
	detached   chan struct{}
	detachOnce sync.Once
	parked     atomic.Int32 // goroutines parked since (tests wait for them)
}

var _ pando.Cell = (*Rep)(nil)

// New checks cfg, fills defaults and prepares WorkDir (removing per-container
// directories a previous run left; the backend cleans up its containers).
func New(cfg Config) (*Rep, error) {
	switch {
	case cfg.ID == "":
		return nil, errors.New("cell: ID is required")
	case cfg.Backend == nil:
		return nil, errors.New("cell: Backend is required")
	case cfg.Blobs == nil:
		return nil, errors.New("cell: Blobs is required")
	case cfg.WorkDir == "":
		return nil, errors.New("cell: WorkDir is required")
	}
	wd, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("cell: work dir: %w", err)
	}
	cfg.WorkDir = wd
	if cfg.HostAddr == "" {
		cfg.HostAddr = DefaultHostAddr
	}
	if cfg.PortRange == [2]int{} {
		cfg.PortRange = DefaultPortRange
	}
	if cfg.PortRange[0] <= 0 || cfg.PortRange[1] > 65535 || cfg.PortRange[0] > cfg.PortRange[1] {
		return nil, fmt.Errorf("cell: bad port range %d-%d", cfg.PortRange[0], cfg.PortRange[1])
	}
	if cfg.MaxContainers <= 0 {
		cfg.MaxContainers = DefaultMaxContainers
	}
	if cfg.MaxConcurrentStarts <= 0 {
		cfg.MaxConcurrentStarts = DefaultMaxConcurrentStarts()
	}
	if len(cfg.Stacks) == 0 {
		cfg.Stacks = map[string]string{"host": ""}
	}
	if cfg.DefaultStack == "" {
		if _, ok := cfg.Stacks["host"]; ok {
			cfg.DefaultStack = "host"
		} else {
			cfg.DefaultStack = sortedKeys(cfg.Stacks)[0]
		}
	}
	if _, ok := cfg.Stacks[cfg.DefaultStack]; !ok {
		return nil, fmt.Errorf("cell: default stack %q is not in Stacks", cfg.DefaultStack)
	}
	if cfg.HealthCheckInterval <= 0 {
		cfg.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.LivenessInterval <= 0 {
		cfg.LivenessInterval = DefaultLivenessInterval
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.LogRateCeiling == 0 {
		cfg.LogRateCeiling = DefaultLogRateCeiling
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("cell_id", cfg.ID)
	for _, d := range []string{wd, filepath.Join(wd, dirInstances), filepath.Join(wd, dirStaging),
		filepath.Join(wd, dirTasks), filepath.Join(wd, dirDroplets), filepath.Join(wd, dirBuildpacks),
		filepath.Join(wd, dirDownloads)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cell: %w", err)
		}
	}
	// Only root reads the records: they hold the instances' and tasks'
	// environment.
	for _, d := range []string{dirRecords, dirTaskRecords} {
		if err := os.MkdirAll(filepath.Join(wd, d), 0o700); err != nil {
			return nil, fmt.Errorf("cell: %w", err)
		}
	}
	if cfg.TotalMemoryMB <= 0 {
		cfg.TotalMemoryMB = hostMemoryMB()
	}
	if cfg.TotalDiskMB <= 0 {
		cfg.TotalDiskMB = diskSizeMB(wd)
	}
	logs := cfg.Logs
	if logs == nil {
		logs = discardSink{}
	}
	var upstream egress.Upstream
	var deny [][2]int
	if cfg.StagingEgress {
		kvs := make([]string, 0, len(cfg.StagingEnv))
		for _, v := range cfg.StagingEnv {
			kvs = append(kvs, v.Name+"="+v.Value)
		}
		if upstream, err = egress.ParseUpstream(kvs); err != nil {
			return nil, fmt.Errorf("cell: staging egress: %w", err)
		}
		deny = append(append(deny, cfg.StagingEgressDenyPorts...), cfg.PortRange)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Rep{
		egressUpstream: upstream,
		egressDeny:     deny,
		starts:         newStartGate(cfg.MaxConcurrentStarts, stagingStartReserve, startWaitRefresh),
		cfg:            cfg,
		log:            log,
		logs:           logs,
		ctx:            ctx,
		cancel:         cancel,
		reporter:       cfg.Reporter,
		instances:      map[string]*instance{},
		tasks:          map[string]*task{},
		unacked:        map[string]pando.Task{},
		ending:         map[string]struct{}{},
		ports:          map[int]bool{},
		nextPort:       cfg.PortRange[0],
		released:       make(chan struct{}),
		detached:       make(chan struct{}),
	}
	keep := map[string]bool{}
	if cfg.Adopter != nil {
		actx, acancel := context.WithTimeout(ctx, adoptTimeout)
		keep = r.adoptAll(actx, cfg.Adopter)
		acancel()
	} else {
		for _, d := range []string{dirRecords, dirTaskRecords} {
			if err := emptyDir(filepath.Join(wd, d)); err != nil {
				return nil, fmt.Errorf("cell: clean %s: %w", d, err)
			}
		}
	}
	// What no adopted instance uses. Buildpacks too: earlier versions
	// extracted them with other ownership and modes.
	for _, d := range []string{dirInstances, dirStaging, dirTasks, dirDownloads, dirBuildpacks} {
		if err := emptyDirExcept(filepath.Join(wd, d), keep); err != nil {
			_ = r.Shutdown(context.Background())
			return nil, fmt.Errorf("cell: clean %s: %w", d, err)
		}
	}
	return r, nil
}

// Work dir layout.
const (
	dirInstances  = "instances"  // <guid>/ is an instance's volume; home/ its /home/vcap
	dirStaging    = "staging"    // <task guid>/ is a volume: {app,cache,deps,output}
	dirTasks      = "tasks"      // <task guid>/ is a CF task's volume; home/ its /home/vcap
	dirDroplets   = "droplets"   // <sha256>.tgz cache
	dirBuildpacks = "buildpacks" // <sha256>/ extracted buildpacks
	dirDownloads  = "downloads"  // partial downloads
)

// ID returns the cell's id.
func (r *Rep) ID() string { return r.cfg.ID }

// SetReporter sets where reports go.
func (r *Rep) SetReporter(rep pando.CellReporter) {
	r.mu.Lock()
	r.reporter = rep
	r.mu.Unlock()
}

// SetDraining marks the cell as draining in its State (the auctioneer
// places nothing new on it); running work is untouched.
func (r *Rep) SetDraining(d bool) {
	r.mu.Lock()
	r.draining = d
	r.mu.Unlock()
}

// State reports capacity and what is reserved by running work.
func (r *Rep) State(ctx context.Context) (pando.CellState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := pando.CellState{
		ID:                  r.cfg.ID,
		Zone:                r.cfg.Zone,
		Stacks:              sortedKeys(r.cfg.Stacks),
		TotalMemoryMB:       r.cfg.TotalMemoryMB,
		TotalDiskMB:         r.cfg.TotalDiskMB,
		TotalContainers:     r.cfg.MaxContainers,
		Draining:            r.draining,
		InstancesPerProcess: map[string]int{},
		LayerCacheMB:        r.layerCacheMB(),
	}
	s.UsedDiskMB = s.LayerCacheMB
	if r.cfg.CachedImages != nil {
		imgs := r.cfg.CachedImages()
		s.Images = imgs[:min(len(imgs), pando.MaxCellImages)]
	}
	if r.cfg.StackRuntimes != nil {
		s.Runtimes = r.cfg.StackRuntimes()
	}
	for _, i := range r.instances {
		s.UsedMemoryMB += i.memMB
		s.UsedDiskMB += i.diskMB
		s.UsedContainers++
		if i.getState() != pando.ActualRunning {
			s.StartingContainers++
		}
		s.InstancesPerProcess[i.lrp.ProcessGUID]++
	}
	for _, t := range r.tasks {
		s.UsedMemoryMB += t.memMB
		s.UsedDiskMB += t.diskMB
		s.UsedContainers++
	}
	return s, nil
}

// reserve checks capacity for new work; r.mu must be held.
func (r *Rep) reserveLocked(memMB, diskMB int) error {
	if r.closed {
		return pando.Errorf(pando.EUnavailable, "cell %s is shutting down", r.cfg.ID)
	}
	mem, disk, n := 0, r.layerCacheMB(), 0
	for _, i := range r.instances {
		mem, disk, n = mem+i.memMB, disk+i.diskMB, n+1
	}
	for _, t := range r.tasks {
		mem, disk, n = mem+t.memMB, disk+t.diskMB, n+1
	}
	switch {
	case mem+memMB > r.cfg.TotalMemoryMB:
		return pando.Errorf(pando.EInsufficient, "insufficient resources: memory")
	case disk+diskMB > r.cfg.TotalDiskMB:
		return pando.Errorf(pando.EInsufficient, "insufficient resources: disk")
	case n+1 > r.cfg.MaxContainers:
		return pando.Errorf(pando.EInsufficient, "insufficient resources: containers")
	}
	return nil
}

// layerCacheMB is the disk the image layer cache holds, in MB rounded up.
func (r *Rep) layerCacheMB() int {
	if r.cfg.LayerCacheBytes == nil {
		return 0
	}
	return int((max(r.cfg.LayerCacheBytes(), 0) + 1<<20 - 1) >> 20)
}

// rootFS resolves a stack name to its root filesystem dir.
func (r *Rep) rootFS(stack string) (name, dir string, err error) {
	if stack == "" {
		stack = r.cfg.DefaultStack
	}
	dir, ok := r.cfg.Stacks[stack]
	if !ok {
		return "", "", pando.Errorf(pando.EInvalid, "cell %s does not have stack %q", r.cfg.ID, stack)
	}
	return stack, dir, nil
}

// Shutdown stops every instance and task in parallel (instances and CF
// tasks get at most StopGrace, less if ctx's deadline is nearer), reports
// them removed or failed, and waits for all of the cell's goroutines or ctx's end.
func (r *Rep) Shutdown(ctx context.Context) error {
	r.ReleaseAdopted()
	r.mu.Lock()
	r.closed = true
	grace := r.cfg.StopGrace
	if dl, ok := ctx.Deadline(); ok {
		if half := time.Until(dl) / 2; half < grace {
			grace = max(half, 0)
		}
	}
	for _, i := range r.instances {
		i.requestStop(grace)
	}
	for _, t := range r.tasks {
		t.stop(errShutdown, grace)
	}
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel() // ends reports and checks still in flight
		return fmt.Errorf("cell %s shutdown: %w", r.cfg.ID, ctx.Err())
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// emptyDir removes everything inside dir.
func emptyDir(dir string) error { return emptyDirExcept(dir, nil) }

// emptyDirExcept removes everything inside dir but the paths in keep.
func emptyDirExcept(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if keep[filepath.Join(dir, e.Name())] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func hostMemoryMB() int {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 4096
	}
	return int(uint64(si.Totalram) * uint64(si.Unit) >> 20)
}

func diskSizeMB(dir string) int {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 16384
	}
	return int(st.Blocks * uint64(st.Bsize) >> 20)
}
