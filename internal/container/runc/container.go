package runc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pandoplatform/pando/internal/container"
)

// Container is one runc container. Its shim's `runc run` child lives as
// long as the container's process; the runc state and cgroup stay (runc
// run --keep) until Destroy, so the OOM counter can be read after the
// exit.
type Container struct {
	b      *Backend
	id     string
	bundle string
	rootfs string // holds the mount point of the container's root, under RunDir
	cgPath string
	limit  int64
	volume string   // Spec.Volume: holds the writable dirs; "" for none
	lease  *idLease // the container's host ids; nil once released

	overlay bool
	// rwMounts are the caller's writable bind mounts (e.g. the instance's
	// /home/vcap): what the app writes there counts as its disk use.
	rwMounts []string
	owned    bool      // the bundle is ours to remove (not a leftover)
	cmd      *exec.Cmd // the shim, when this Backend started it
	shimPid  int       // the shim of an adopted container
	started  bool      // follow runs: done closes when the process ends
	conn     net.Conn  // to the shim; follow reads it
	nsMu     sync.Mutex
	// sockets makes sockets in the container's network namespace (its
	// thread holds the namespace, so Dial never depends on the pid again).
	sockets *socketMaker
	pid     int // the container's init, as runc reported it

	done   chan struct{} // closed when runc run has exited (or its shim is gone)
	status container.ExitStatus

	destroyMu sync.Mutex
	destroyed bool

	diskMu   sync.Mutex
	disk     uint64
	diskRead time.Time
}

var _ container.Container = (*Container)(nil)

// ID returns the container's id.
func (c *Container) ID() string { return c.id }

func (c *Container) start(ctx context.Context, spec container.Spec) error {
	uid, gid := spec.UID, spec.GID
	if uid == 0 {
		uid = DefaultUID
	}
	if gid == 0 {
		gid = DefaultGID
	}
	if spec.User != nil {
		uid, gid = spec.User.UID, spec.User.GID
	}
	began := time.Now()
	// The ids and namespace Prepare made while the caller got the
	// layers ready, or new ones.
	p := c.b.takePrepared(c.id)
	if p == nil {
		lease, err := c.b.ids.acquire(c.b.stateDir + " " + c.id)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.id, err)
		}
		c.lease = lease
		ns, err := newUserNS(ctx, c.b.unshare, lease, c.b.startTimeout+time.Minute)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.id, err)
		}
		p = &prepared{lease: lease, userns: ns}
	}
	c.lease = p.lease
	lease, userns := p.lease, p.userns
	// Once runc has started the container, its processes hold the
	// namespace.
	defer userns.close()
	nsReady := time.Now()
	d, stack, err := c.b.prepare(spec, uid, gid, lease, userns.path)
	c.overlay = d.overlay
	c.owned = d.created
	if err != nil {
		return fmt.Errorf("prepare container %s: %w", c.id, err)
	}
	// What the caller prepared in writable mounts (a droplet) becomes the
	// container user's.
	for _, m := range spec.Mounts {
		if !m.ReadOnly {
			if err := chownTree(ctx, m.Source, int(lease.host(uid)), int(lease.host(gid))); err != nil {
				return fmt.Errorf("prepare container %s: %w", c.id, err)
			}
		}
	}
	oci := c.b.ociSpec(spec, d, stack, uid, gid, lease, userns.path)
	if d.overlay {
		if err := makeMountPoints(d.rootfs, oci.Mounts); err != nil {
			return fmt.Errorf("prepare container %s: %w", c.id, err)
		}
	}
	cfg, err := json.MarshalIndent(oci, "", "\t")
	if err != nil {
		return fmt.Errorf("container %s: encode config: %w", c.id, err)
	}
	if err := os.WriteFile(d.path("config.json"), cfg, 0o600); err != nil {
		return fmt.Errorf("container %s: write config: %w", c.id, err)
	}

	pidFile := d.path("init.pid")
	if err := writeState(d.dir, containerState{LeaseBase: lease.base, CgPath: c.cgPath, Limit: c.limit,
		Volume: c.volume, RWMounts: c.rwMounts, Overlay: d.overlay, ShimAcks: true}); err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	runcStarted := time.Now()
	c.b.sealedMu.RLock()
	runcCmd := c.b.runCommand([]string{fmt.Sprintf("--nofile=%d:%d", maxOpenFiles, maxOpenFiles)},
		"--root", c.b.root, "--log", d.path("runc.log"), "--log-format", "json",
		"run", "--bundle", d.dir, "--pid-file", pidFile, "--keep", c.id)
	// The shim runs runc and relays the output (shim.go).
	shim, conn, err := c.b.startShim(c.id, d, runcCmd)
	c.b.sealedMu.RUnlock() // the shim has its own descriptor of runc's copy now
	if err != nil {
		close(c.done)
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	c.cmd, c.started, c.conn = shim, true, conn
	go c.follow(conn, true, container.Output{Stdout: spec.Stdout, Stderr: spec.Stderr, Dropped: spec.Dropped})

	pid, err := c.awaitPid(ctx, pidFile)
	c.b.refillSpare() // for the next container
	if err != nil {
		return err
	}
	c.pid = pid
	// Enter the network namespace now, for every later Dial; if the host
	// is short of fds or threads, Dial tries again.
	if _, err := c.socketMaker(); err != nil {
		c.b.log.Warn("enter container network namespace", "container_id", c.id, "error", err)
	}
	// Where a start's time goes (docs/performance.md reads these).
	c.b.log.Debug("container started", "container_id", c.id, "pid", pid, "prepared", !p.made.IsZero(),
		"ids_userns_ms", ms(nsReady.Sub(began)), "bundle_ms", ms(runcStarted.Sub(nsReady)),
		"runc_ms", ms(time.Since(runcStarted)))
	return nil
}

// awaitPid polls for the pid file runc writes once the container exists.
// If runc exits without writing it, the start failed and runc's log says
// why.
func (c *Container) awaitPid(ctx context.Context, pidFile string) (int, error) {
	deadline := time.NewTimer(c.b.startTimeout)
	defer deadline.Stop()
	delay := time.Millisecond
	for {
		if data, err := os.ReadFile(pidFile); err == nil && len(data) > 0 {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("container %s: bad pid file %q", c.id, data)
			}
			return pid, nil
		}
		select {
		case <-c.done:
			// runc writes the pid file before it returns; one more look.
			if data, err := os.ReadFile(pidFile); err == nil && len(data) > 0 {
				continue
			}
			return 0, fmt.Errorf("container %s: runc failed to start it (exit %d): %s", c.id, c.status.Code, c.runcError())
		case <-ctx.Done():
			return 0, fmt.Errorf("container %s: start: %w", c.id, ctx.Err())
		case <-deadline.C:
			return 0, fmt.Errorf("container %s: runc did not start it within %s", c.id, c.b.startTimeout)
		case <-time.After(delay):
		}
		// runc takes ~100 ms or more: poll often enough that the wait
		// adds little to it.
		if delay < 5*time.Millisecond {
			delay *= 2
		}
	}
}

// runcError returns the last error runc logged for this container.
func (c *Container) runcError() string {
	f, err := os.Open(c.bundle + "/runc.log")
	if err != nil {
		return "no runc log"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(-64<<10, io.SeekEnd)
	}
	msg := "runc logged no error"
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && (line.Level == "error" || line.Level == "fatal") {
			msg = line.Msg
		}
	}
	return msg
}

// Wait blocks until the container's process exits or ctx ends.
func (c *Container) Wait(ctx context.Context) (container.ExitStatus, error) {
	select {
	case <-c.done:
		return c.status, nil
	case <-ctx.Done():
		return container.ExitStatus{}, fmt.Errorf("wait for container %s: %w", c.id, ctx.Err())
	}
}

func (c *Container) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to every process in the container and SIGKILL after
// grace; it returns once the process has exited.
func (c *Container) Stop(ctx context.Context, grace time.Duration) error {
	if c.exited() {
		return nil
	}
	if _, err := c.b.command(ctx, "kill", "--all", c.id, "TERM"); err != nil && !c.exited() {
		c.b.log.Warn("send SIGTERM", "container_id", c.id, "error", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", c.id, ctx.Err())
	case <-t.C:
	}
	return c.kill(ctx)
}

// kill sends SIGKILL to the container's init (which takes its pid
// namespace with it) and waits for the exit. runc kill is a fork and exec,
// which fails when the host is out of fds or pids; it is retried, then the
// container's processes are killed through its cgroup, which needs no new
// process. runc itself is killed only when nothing else worked, since its
// death does not end the container.
func (c *Container) kill(ctx context.Context) error {
	if c.exited() {
		return nil
	}
	var err error
	for attempt, delay := 0, 50*time.Millisecond; attempt < 3; attempt, delay = attempt+1, delay*4 {
		if _, err = c.b.command(ctx, "kill", c.id, "KILL"); err == nil || c.exited() {
			err = nil
			break
		}
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	if err != nil {
		c.b.log.Warn("send SIGKILL with runc; killing through the cgroup", "container_id", c.id, "error", err)
		if n, cgErr := c.b.cg.killAll(c.cgPath); cgErr != nil || n == 0 {
			c.b.log.Warn("kill through cgroup", "container_id", c.id, "killed", n, "error", cgErr)
			c.killShim()
		}
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill container %s: %w", c.id, ctx.Err())
	}
}

// Destroy kills what is left, deletes the runc container and removes the
// bundle. It is safe to call more than once. If it fails, the container
// is not forgotten: the backend keeps it and retries in the background
// until it is gone.
func (c *Container) Destroy(ctx context.Context) error {
	err := c.destroyOnce(ctx)
	if err != nil {
		c.b.retryDestroy(c)
	}
	return err
}

func (c *Container) destroyOnce(ctx context.Context) error {
	c.destroyMu.Lock()
	defer c.destroyMu.Unlock()
	if c.destroyed {
		return nil
	}
	var errs []error
	if c.started && !c.exited() {
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.kill(kctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if c.owned {
		if _, err := c.b.command(ctx, "delete", "--force", c.id); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	c.nsMu.Lock()
	if c.sockets != nil {
		c.sockets.close()
		c.sockets = nil
	}
	c.nsMu.Unlock()
	if c.owned {
		_ = os.Remove(c.b.shimSocket(c.id))
		if err := removeBundle(c.rootfs); err != nil {
			errs = append(errs, err)
		}
		if err := removeBundle(c.bundle); err != nil {
			errs = append(errs, err)
		} else if c.volume != "" {
			// Its home, tmp and overlay layer on the volume.
			if err := os.RemoveAll(filepath.Join(c.volume, "container")); err != nil {
				errs = append(errs, fmt.Errorf("remove container files: %w", err))
			}
		}
		// runc delete removes the cgroups it knows of; a container that
		// runc already forgot (a start that failed half-way) can leave
		// them behind.
		c.b.cg.removeEmptyUnder(c.cgPath)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy container %s: %w", c.id, err)
	}
	// Nothing of the container runs any more: its host ids are free.
	if c.lease != nil {
		if err := c.lease.release(); err != nil {
			return fmt.Errorf("destroy container %s: %w", c.id, err)
		}
		c.lease = nil
	}
	c.destroyed = true
	c.b.forget(c.id, c)
	return nil
}

// Stats reads the container's cgroup figures and its disk use: its
// volume's, or else the size of its writable directories (home, tmp, the
// overlay's upper layer and writable mounts).
func (c *Container) Stats(ctx context.Context) (container.Stats, error) {
	s, err := c.b.cg.stats(c.cgPath)
	if err != nil {
		return container.Stats{}, fmt.Errorf("stats of container %s: %w", c.id, err)
	}
	out := container.Stats{
		CPUNanos:    s.cpuNanos,
		MemoryBytes: s.memory,
		MemoryLimit: s.memoryLimit,
		Pids:        s.pids,
		DiskBytes:   c.diskUsage(ctx),
	}
	if c.limit == 0 {
		out.MemoryLimit = 0
	}
	return out, nil
}

// diskCacheFor is how long a disk walk result is reused: walking is the
// expensive part of Stats.
const diskCacheFor = 5 * time.Second

func (c *Container) diskUsage(ctx context.Context) uint64 {
	if c.volume != "" {
		// Exact and cheap: the filesystem keeps the count.
		u, err := statVolume(c.volume)
		if err != nil {
			return 0
		}
		return u.UsedBytes
	}
	c.diskMu.Lock()
	defer c.diskMu.Unlock()
	if time.Since(c.diskRead) < diskCacheFor {
		return c.disk
	}
	dirs := []string{c.bundle + "/home", c.bundle + "/tmp"}
	if c.overlay {
		dirs = append(dirs, c.bundle+"/overlay/upper")
	}
	dirs = append(dirs, c.rwMounts...)
	c.disk = duDirs(ctx, dirs, maxDiskWalk)
	c.diskRead = time.Now()
	return c.disk
}

// ms is d in milliseconds, for logs.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
