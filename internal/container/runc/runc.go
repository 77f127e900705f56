// Package runc runs containers as OCI bundles with the runc binary: it lays
// out a bundle per container (the "host" stack or an overlayfs over an image
// rootfs, generated /etc files, a private /home/vcap and /tmp), starts
// `runc run` under a shim that outlives the server (so runc's exit is the
// process's exit, and a restarted server can adopt the container), and
// reads cgroup files for stats and OOM kills. It implements
// container.Backend.
package runc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// Config configures a Backend.
type Config struct {
	// RuncPath is the runc binary; default: "runc" looked up on PATH.
	RuncPath string
	// StateDir holds runc's state (--root), the bundles and each container's
	// writable directories, e.g. <data-dir>/containers. Required.
	StateDir string
	// LifecycleBinary is the host path of the pando binary, bind-mounted
	// read-only at /tmp/lifecycle/pando; default os.Executable().
	LifecycleBinary string
	// CgroupParent is the cgroup (relative to each hierarchy's root) the
	// containers' cgroups are created under; default "/pando/<hash of
	// StateDir>", so two backends on one host never share a cgroup.
	CgroupParent string
	// RunDir is a machine-wide directory on a filesystem that does not
	// outlive a reboot: it holds the host id leases every backend on the
	// machine shares, and each container's rootfs mount point, which its
	// unprivileged root must be able to reach (StateDir, inside the data
	// dir, may be private). Default /run/pando.
	RunDir string
	// HostIDBase and HostIDBlocks set the host uids and gids containers
	// get: HostIDBlocks blocks of 65536 from HostIDBase (a multiple of
	// 65536), one per container. Defaults DefaultHostIDBase and
	// DefaultHostIDBlocks.
	HostIDBase   uint32
	HostIDBlocks int
	// UnsharePath and PrlimitPath are util-linux's unshare, which creates
	// each container's user namespace as the container's own host uid, and
	// prlimit, which runs runc with the containers' rlimits; default
	// "unshare" and "prlimit" looked up on PATH.
	UnsharePath string
	PrlimitPath string
	// StartTimeout bounds how long Run waits for runc to report the
	// container's process; default 30s (Run's ctx can end it sooner).
	StartTimeout time.Duration
	// ShimBinary is the pando binary run as each container's shim
	// (`pando container-shim`, see shim.go); default LifecycleBinary.
	ShimBinary string
	// RuncFromPath runs `runc run` from RuncPath, as runc is installed.
	// By default the backend keeps one sealed in-memory copy of runc and
	// runs it from there (see sealedBinary): runc then skips protecting
	// itself again at every start. Where the copy cannot be made or run,
	// the backend falls back to the path and logs why.
	RuncFromPath bool
	// VolumePoolSizes are volume sizes (bytes, as Volume takes them) kept
	// formatted ahead from the start, e.g. the default disk quota; sizes
	// Volume is asked for are kept too (volumepool.go).
	VolumePoolSizes []int64
	Logger          *slog.Logger
}

// Backend runs containers with runc. It is safe for concurrent use.
//
// Each container runs in its own user namespace with its own block of
// host ids (see idAllocator): its vcap (2000) is host uid block+2000, its
// root is never the host's root.
//
// Memory (without swap), pids and CPU shares are enforced through cgroups;
// disk through volumes (see Volume): a container whose Spec.Volume is set
// keeps its home, tmp and overlay upper layer on it. Without one, Stats
// measures those directories by walking them.
// A zero Spec.UID or GID means vcap (2000); Spec.User sets exact ids, root
// included: root of the container's user namespace, without capabilities,
// never the host's root.
type Backend struct {
	runc         string
	root         string // runc --root
	bundles      string
	lifecycle    string
	cgroupParent string
	rootfsDir    string // <RunDir>/rootfs/<hash of StateDir>: rootfs mount points
	shimDir      string // <RunDir>/shims/<hash of StateDir>: the shims' sockets
	shim         string // the shim binary
	stateDir     string
	ids          *idAllocator
	unshare      string
	prlimit      string
	startTimeout time.Duration
	cg           cgroups
	log          *slog.Logger
	volumes      string      // the volumes' image files
	mkfs         string      // mkfs.ext4; "" when missing
	pool         *volumePool // nil without mkfs

	// sealedMu guards sealed: Run holds it (read) until its child has its
	// own descriptor of the copy, Close (write) to close it.
	sealedMu sync.RWMutex
	sealed   *sealedBinary // nil: runc runs from its path

	// spare is a shim started ahead of the next container (adopt.go).
	spareMu       sync.Mutex
	spare         *spareShim
	spareStarting bool
	spareClosed   bool

	mu        sync.Mutex
	live      map[string]*Container
	retrying  map[*Container]bool // containers whose Destroy failed
	retries   sync.WaitGroup      // their retry goroutines
	closing   chan struct{}       // closed by Close
	closeOnce sync.Once
	vols      map[string]*volume   // by dir
	prepared  map[string]*prepared // by container id, until its Run (prepare.go)
}

var _ container.Backend = (*Backend)(nil)

// LifecyclePath is where the lifecycle binary appears in every container.
const LifecyclePath = "/tmp/lifecycle/pando"

// DefaultUID and DefaultGID are vcap's, used when a Spec leaves them zero.
const (
	DefaultUID = 2000
	DefaultGID = 2000
)

// New checks the configuration and prepares StateDir.
func New(cfg Config) (*Backend, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("runc backend: StateDir is required")
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("runc backend: state dir: %w", err)
	}
	runcPath := cfg.RuncPath
	if runcPath == "" {
		runcPath = "runc"
	}
	if runcPath, err = exec.LookPath(runcPath); err != nil {
		return nil, fmt.Errorf("runc backend: find runc: %w", err)
	}
	lifecycle := cfg.LifecycleBinary
	if lifecycle == "" {
		if lifecycle, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("runc backend: lifecycle binary: %w", err)
		}
	}
	if lifecycle, err = filepath.Abs(lifecycle); err != nil {
		return nil, fmt.Errorf("runc backend: lifecycle binary: %w", err)
	}
	if fi, err := os.Stat(lifecycle); err != nil {
		return nil, fmt.Errorf("runc backend: lifecycle binary: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("runc backend: lifecycle binary %s is not a regular file", lifecycle)
	}
	sum := sha256.Sum256([]byte(stateDir))
	stateHash := hex.EncodeToString(sum[:4])
	parent := cfg.CgroupParent
	if parent == "" {
		parent = "/pando/" + stateHash
	}
	parent = filepath.Clean("/" + parent)
	cg, err := detectCgroups()
	if err != nil {
		return nil, fmt.Errorf("runc backend: %w", err)
	}
	unshare := cfg.UnsharePath
	if unshare == "" {
		unshare = "unshare"
	}
	if unshare, err = exec.LookPath(unshare); err != nil {
		return nil, fmt.Errorf("runc backend: find unshare (util-linux), needed for user namespaces: %w", err)
	}
	prlimit := cfg.PrlimitPath
	if prlimit == "" {
		prlimit = "prlimit"
	}
	if prlimit, err = exec.LookPath(prlimit); err != nil {
		return nil, fmt.Errorf("runc backend: find prlimit (util-linux): %w", err)
	}
	runDir := cfg.RunDir
	if runDir == "" {
		runDir = "/run/pando"
	}
	idBase, idBlocks := cfg.HostIDBase, cfg.HostIDBlocks
	if idBase == 0 {
		idBase = DefaultHostIDBase
	}
	if idBlocks == 0 {
		idBlocks = DefaultHostIDBlocks
	}
	ids, err := newIDAllocator(filepath.Join(runDir, "ids"), idBase, idBlocks)
	if err != nil {
		return nil, fmt.Errorf("runc backend: %w", err)
	}
	rootfsDir := filepath.Join(runDir, "rootfs", stateHash)
	// Searchable, not listable, by the containers' host users.
	for _, d := range []string{runDir, filepath.Dir(rootfsDir), rootfsDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("runc backend: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("runc backend: %w", err)
		}
	}
	// Root's alone: a shim's socket hands out the container's output.
	shimDir := filepath.Join(runDir, "shims", stateHash)
	if err := os.MkdirAll(shimDir, 0o700); err != nil {
		return nil, fmt.Errorf("runc backend: %w", err)
	}
	shim := cfg.ShimBinary
	if shim == "" {
		shim = lifecycle
	}
	if shim, err = filepath.Abs(shim); err != nil {
		return nil, fmt.Errorf("runc backend: shim binary: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Backend{
		runc:         runcPath,
		root:         filepath.Join(stateDir, "runc"),
		bundles:      filepath.Join(stateDir, "bundles"),
		lifecycle:    lifecycle,
		cgroupParent: parent,
		rootfsDir:    rootfsDir,
		shimDir:      shimDir,
		shim:         shim,
		stateDir:     stateDir,
		ids:          ids,
		unshare:      unshare,
		prlimit:      prlimit,
		startTimeout: cfg.StartTimeout,
		cg:           cg,
		log:          log,
		volumes:      filepath.Join(stateDir, "volumes"),
		mkfs:         findMkfs(),
		live:         map[string]*Container{},
		retrying:     map[*Container]bool{},
		closing:      make(chan struct{}),
		prepared:     map[string]*prepared{},
		vols:         map[string]*volume{},
	}
	if b.startTimeout <= 0 {
		b.startTimeout = 30 * time.Second
	}
	if !cfg.RuncFromPath {
		b.sealed = sealRunc(runcPath, log)
	}
	closeInheritedOnExec(log)
	for _, d := range []string{stateDir, b.root, b.bundles, b.volumes} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runc backend: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfsDir, stateDirMarker), []byte(stateDir), 0o600); err != nil {
		return nil, fmt.Errorf("runc backend: %w", err)
	}
	if b.mkfs != "" {
		b.pool = newVolumePool(b.volumes, cfg.VolumePoolSizes)
		go b.refillVolumes()
	}
	return b, nil
}

// closeInheritedOnExec marks the descriptors this process inherited
// without close-on-exec (Go opens its own with it) so that no child gets
// them: a shim lives as long as its container, and would otherwise hold,
// say, the pipe a parent reads this process's output from.
func closeInheritedOnExec(log *slog.Logger) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		log.Warn("list open descriptors: inherited ones may leak into containers' shims", "error", err)
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
		}
	}
}

// findMkfs looks for mkfs.ext4 on PATH and in the sbin directories a
// non-root PATH lacks.
func findMkfs() string {
	for _, p := range []string{"mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// validID reports whether id is 1-128 letters, digits, '_', '.' or '-',
// starting with a letter or digit. Checked by hand: a regexp with that
// repeat count costs every start of the pando binary (CLI commands
// included) a millisecond or more to compile.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// Run lays out the bundle and starts the container. ctx bounds the start
// only; the container runs until its process exits or it is destroyed.
func (b *Backend) Run(ctx context.Context, spec container.Spec) (container.Container, error) {
	if err := validate(spec); err != nil {
		return nil, err
	}
	if spec.Volume != "" && !b.liveVolume(spec.Volume) {
		return nil, pando.Errorf(pando.EInvalid, "container %s: %s is not a volume of this backend", spec.ID, spec.Volume)
	}
	b.mu.Lock()
	if _, ok := b.live[spec.ID]; ok {
		b.mu.Unlock()
		return nil, pando.Errorf(pando.EConflict, "container %q already exists", spec.ID)
	}
	c := &Container{
		b:      b,
		id:     spec.ID,
		bundle: filepath.Join(b.bundles, spec.ID),
		rootfs: filepath.Join(b.rootfsDir, spec.ID),
		cgPath: b.cgroupParent + "/" + spec.ID,
		limit:  spec.MemoryBytes,
		volume: filepath.Clean(spec.Volume),
		done:   make(chan struct{}),
	}
	if spec.Volume == "" {
		c.volume = ""
	}
	for _, m := range spec.Mounts {
		if !m.ReadOnly {
			c.rwMounts = append(c.rwMounts, m.Source)
		}
	}
	b.live[spec.ID] = c
	b.mu.Unlock()

	if err := c.start(ctx, spec); err != nil {
		// Destroy needs its own time: ctx may be what ended the start.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := c.Destroy(dctx); derr != nil {
			b.log.Error("clean up failed container", "container_id", spec.ID, "error", derr)
		}
		return nil, err
	}
	return c, nil
}

func validate(spec container.Spec) error {
	if !validID(spec.ID) {
		return pando.Errorf(pando.EInvalid, "container id %q: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", spec.ID)
	}
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return pando.Errorf(pando.EInvalid, "container %s: no command to run", spec.ID)
	}
	if spec.RootFS != "" {
		if !filepath.IsAbs(spec.RootFS) || strings.ContainsAny(spec.RootFS, ",:\n") {
			return pando.Errorf(pando.EInvalid, "container %s: rootfs %q must be an absolute path without ',' or ':'", spec.ID, spec.RootFS)
		}
	}
	if spec.RootFS != "" && len(spec.Layers) > 0 {
		return pando.Errorf(pando.EInvalid, "container %s: both a rootfs and image layers", spec.ID)
	}
	for _, l := range spec.Layers {
		if !filepath.IsAbs(l) || strings.ContainsAny(l, ",:\n") {
			return pando.Errorf(pando.EInvalid, "container %s: layer %q must be an absolute path without ',' or ':'", spec.ID, l)
		}
	}
	if spec.User != nil && (spec.User.UID >= idBlockSize || spec.User.GID >= idBlockSize) {
		return pando.Errorf(pando.EInvalid, "container %s: user %d:%d is outside the container's %d ids", spec.ID, spec.User.UID, spec.User.GID, idBlockSize)
	}
	if spec.Dir != "" && !filepath.IsAbs(spec.Dir) {
		return pando.Errorf(pando.EInvalid, "container %s: working directory %q is not absolute", spec.ID, spec.Dir)
	}
	for _, e := range spec.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return pando.Errorf(pando.EInvalid, "container %s: environment entry %q is not KEY=VALUE", spec.ID, e)
		}
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Destination) || filepath.Clean(m.Destination) == "/" {
			return pando.Errorf(pando.EInvalid, "container %s: mount %q -> %q: both paths must be absolute and the destination not /", spec.ID, m.Source, m.Destination)
		}
	}
	if spec.MemoryBytes < 0 || spec.PidsLimit < 0 || spec.DiskBytes < 0 {
		return pando.Errorf(pando.EInvalid, "container %s: negative resource limit", spec.ID)
	}
	return nil
}

// retryDestroy keeps destroying c in the background, backing off to a
// minute between attempts, until it succeeds. One retrier per container.
func (b *Backend) retryDestroy(c *Container) {
	b.mu.Lock()
	if b.retrying[c] {
		b.mu.Unlock()
		return
	}
	b.retrying[c] = true
	b.mu.Unlock()
	b.retries.Add(1)
	go func() {
		defer b.retries.Done()
		defer func() {
			b.mu.Lock()
			delete(b.retrying, c)
			b.mu.Unlock()
		}()
		delay := time.Second
		for attempt := 1; ; attempt++ {
			select {
			case <-b.closing: // Close: Cleanup takes over
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.destroyOnce(ctx)
			cancel()
			if err == nil {
				b.log.Info("destroyed container on retry", "container_id", c.id, "attempt", attempt)
				return
			}
			b.log.Warn("destroy container: will retry", "container_id", c.id, "attempt", attempt, "error", err)
		}
	}()
}

// Close stops the background retries of failed Destroys and waits for
// them, and releases the sealed copy of runc (a later Run starts runc from
// its path); call Cleanup afterwards to remove what they left.
func (b *Backend) Close() {
	b.closeOnce.Do(func() { close(b.closing) })
	if b.pool != nil {
		<-b.pool.done
	}
	b.discardPrepared()
	b.closeSpare()
	b.retries.Wait()
	// The shims' socket dir goes with the last shim (one dir per state
	// dir would otherwise pile up in /run); running shims keep it.
	_ = os.Remove(b.shimDir)
	b.sealedMu.Lock()
	defer b.sealedMu.Unlock()
	if b.sealed != nil {
		_ = b.sealed.Close()
		b.sealed = nil
	}
}

// sealRunc makes the sealed copy of runc that `runc run` is executed
// through, or returns nil (runc runs from its path) when that fails.
func sealRunc(runcPath string, log *slog.Logger) *sealedBinary {
	s, err := sealBinary(runcPath)
	if err == nil {
		if err = s.check(context.Background()); err != nil {
			_ = s.Close()
		}
	}
	if err != nil {
		log.Warn("runc runs from its path: each start copies or mounts it again", "runc", runcPath, "error", err)
		return nil
	}
	log.Debug("runc runs from a sealed in-memory copy", "runc", runcPath, "bytes", s.size)
	return s
}

// runCommand returns the command that starts runc with args under
// prlimit's options: through the sealed copy of runc when there is one.
// Call it, and start the command, holding b.sealedMu for reading.
func (b *Backend) runCommand(prlimit []string, args ...string) *exec.Cmd {
	wrapper := append([]string{b.prlimit}, prlimit...)
	wrapper = append(wrapper, "--")
	if b.sealed != nil {
		return b.sealed.command(context.Background(), wrapper, args...)
	}
	return exec.Command(wrapper[0], append(append(wrapper[1:], b.runc), args...)...)
}

func (b *Backend) forget(id string, c *Container) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live[id] == c {
		delete(b.live, id)
	}
}

// command runs a short runc command (kill, delete, list) and returns its
// combined output in the error.
func (b *Backend) command(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.runc, append([]string{"--root", b.root}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("runc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Cleanup removes what a previous run left behind: runc containers under
// StateDir, overlay mounts, bundles, rootfs mount points, shim sockets,
// volumes (their mounts, loop devices and images) and empty cgroups. Call
// it at start-up, before Run, after adopting (Adopt, AdoptVolume) what is
// to be kept: containers not adopted are killed. Volumes and containers of
// this Backend not yet released are kept. The host id blocks of the
// containers it killed, and those of backends whose StateDir is gone, are
// freed once no process runs with their ids (reclaimLeases), and the
// shim socket dirs of such backends removed (sweepShimDirs).
func (b *Backend) Cleanup(ctx context.Context) error {
	var errs []error
	b.mu.Lock()
	live := map[string]bool{}
	for id := range b.live {
		live[id] = true
	}
	b.mu.Unlock()
	out, err := b.command(ctx, "list", "--format", "json")
	if err != nil {
		errs = append(errs, err)
	}
	var listed []struct {
		ID string `json:"id"`
	}
	if len(out) > 0 && err == nil {
		if err := json.Unmarshal(out, &listed); err != nil {
			errs = append(errs, fmt.Errorf("runc list: %w", err))
		}
	}
	ids := map[string]bool{}
	for _, l := range listed {
		ids[l.ID] = true
	}
	// runc list skips state dirs it cannot load; delete those by name too.
	if ents, err := os.ReadDir(b.root); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				ids[e.Name()] = true
			}
		}
	}
	var killed []string
	for id := range ids {
		if !validID(id) || live[id] {
			continue
		}
		killed = append(killed, id)
		b.log.Info("removing leftover container", "container_id", id)
		if _, err := b.command(ctx, "delete", "--force", id); err != nil && !isNotExist(err) {
			errs = append(errs, err)
			continue
		}
		_ = os.RemoveAll(filepath.Join(b.root, id))
	}
	if ents, err := os.ReadDir(b.rootfsDir); err == nil {
		for _, e := range ents {
			if e.Name() == stateDirMarker || live[e.Name()] {
				continue
			}
			if err := removeBundle(filepath.Join(b.rootfsDir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	} else {
		errs = append(errs, fmt.Errorf("read rootfs dir: %w", err))
	}
	if ents, err := os.ReadDir(b.bundles); err == nil {
		for _, e := range ents {
			if live[e.Name()] {
				continue
			}
			if err := removeBundle(filepath.Join(b.bundles, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	} else {
		errs = append(errs, fmt.Errorf("read bundles: %w", err))
	}
	liveSockets := map[string]bool{}
	for id := range live {
		liveSockets[b.shimSocket(id)] = true
	}
	if ents, err := os.ReadDir(b.shimDir); err == nil {
		for _, e := range ents {
			// A leftover container's shim exits once it has nobody to
			// tell the end to (shimLinger).
			if p := filepath.Join(b.shimDir, e.Name()); !liveSockets[p] {
				_ = os.Remove(p)
			}
		}
	}
	_ = os.Remove(b.shimDir) // when no shim is left in it; made again for the next (listenShim)
	if err := b.cleanupVolumes(); err != nil {
		errs = append(errs, err)
	}
	b.cg.removeEmptyUnder(b.cgroupParent)
	b.sweepOrphans()
	b.sweepShimDirs()
	b.reclaimLeases(ctx, killed)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up containers in %s: %w", filepath.Dir(b.root), err)
	}
	return nil
}

// stateDirMarker names, in each backend's dir under RunDir/rootfs, the
// StateDir it belongs to.
const stateDirMarker = ".state-dir"

// sweepOrphans removes the rootfs dirs of backends whose StateDir is gone
// (a deleted data dir, a test's temp dir): no backend would clean them up
// otherwise. Dirs with anything mounted below, or with a rootfs whose
// container still runs, are left alone. The mounts and the host's ids are
// read once for all the dirs (read for each, hundreds of dirs left
// mounted took seconds of every start), and read again for a dir about to
// be removed.
func (b *Backend) sweepOrphans() {
	parent := filepath.Dir(b.rootfsDir)
	ents, err := os.ReadDir(parent)
	if err != nil {
		b.log.Warn("sweep rootfs dirs", "error", err)
		return
	}
	var seen *hostUse
	for _, e := range ents {
		dir := filepath.Join(parent, e.Name())
		if dir == b.rootfsDir {
			continue
		}
		owner, err := os.ReadFile(filepath.Join(dir, stateDirMarker))
		if err != nil {
			continue // not a backend's (or one being created)
		}
		if _, err := os.Stat(string(owner)); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if seen == nil {
			seen = readHostUse()
		}
		if seen.busy(dir) || readHostUse().busy(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			b.log.Warn("remove rootfs dir of a deleted state dir", "dir", dir, "state_dir", string(owner), "error", err)
		}
	}
}

func isNotExist(err error) bool {
	s := err.Error()
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not exist")
}

// removeBundle deletes a bundle (or rootfs) directory after making sure
// nothing is mounted below it: RemoveAll through a bind mount of /usr would
// be a disaster.
func removeBundle(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	mounted, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mounted) > 0 {
		return fmt.Errorf("remove bundle %s: still mounted: %s", dir, strings.Join(mounted, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove bundle %s: %w", dir, err)
	}
	return nil
}

// hostUse is what the host's mounts and processes use, read once: the
// mounts at once, the processes' ids when first needed.
type hostUse struct {
	mounts    []mountInfo
	mountsErr error
	ids       *idSet
}

func readHostUse() *hostUse {
	ms, err := readMountInfo()
	return &hostUse{mounts: ms, mountsErr: err}
}

// busy reports whether anything is mounted at or below dir or a process
// runs with the ids of a container whose rootfs is in dir; true when the
// mounts could not be read.
func (u *hostUse) busy(dir string) bool {
	if u.mountsErr != nil {
		return true
	}
	dir = filepath.Clean(dir)
	for _, m := range u.mounts {
		if m.mountPoint == dir || strings.HasPrefix(m.mountPoint, dir+"/") {
			return true
		}
	}
	return rootfsInUse(dir, func(lo, hi uint32) bool {
		if u.ids == nil {
			u.ids = hostIDsInUse()
		}
		return u.ids.any(lo, hi)
	})
}

// rootfsInUse reports whether a process runs with the ids of a container
// whose rootfs is in dir (each container's dir there is its root's), as
// inUse tells.
func rootfsInUse(dir string, inUse func(lo, hi uint32) bool) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.IsDir() {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != 0 && inUse(st.Uid, st.Uid+idBlockSize-1) {
			return true
		}
	}
	return false
}
