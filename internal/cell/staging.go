package cell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/archive"
	"github.com/pandoplatform/pando/internal/container"
)

// stagingPids bounds the processes of a staging container (compilers fork
// a lot).
const stagingPids = 4096

// task is a staging task or a CF task running on this cell.
type task struct {
	t      pando.Task
	memMB  int
	diskMB int
	stack  string
	rootfs string
	cancel context.CancelCauseFunc

	// began is when the cell accepted it (a staging's timeout runs
	// from then); resume is set when the cell adopted it after a restart:
	// its container, none for a docker staging (adopttask.go).
	began  time.Time
	resume *resumed

	mu       sync.Mutex
	stopping bool
	grace    time.Duration // SIGTERM to SIGKILL when a CF task is stopped
}

// stop cancels the task with cause; a CF task's process gets grace between
// SIGTERM and SIGKILL (the shortest grace asked for wins). The first cause
// is the one reported.
func (tk *task) stop(cause error, grace time.Duration) {
	tk.mu.Lock()
	if !tk.stopping || grace < tk.grace {
		tk.stopping, tk.grace = true, grace
	}
	tk.mu.Unlock()
	tk.cancel(cause)
}

func (tk *task) stopGrace() time.Duration {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.grace
}

// RunTask accepts a staging task or a CF task (pando.TaskRun) and runs it
// in the background; the result goes to the reporter's TaskCompleted.
func (r *Rep) RunTask(ctx context.Context, t pando.Task) error {
	switch {
	case t.GUID == "":
		return pando.Errorf(pando.EInvalid, "run task: guid is required")
	case t.Kind == pando.TaskRun:
		return r.acceptRun(t)
	case t.Kind != pando.TaskStaging:
		return pando.Errorf(pando.EInvalid, "cell %s cannot run tasks of kind %q", r.cfg.ID, t.Kind)
	case t.Staging == nil:
		return pando.Errorf(pando.EInvalid, "task %s: no staging request", t.GUID)
	}
	req := t.Staging
	tk := &task{t: t, memMB: req.MemoryMB, diskMB: req.DiskMB, began: time.Now()}
	if tk.memMB <= 0 {
		tk.memMB = DefaultStagingMemoryMB
	}
	if tk.diskMB <= 0 {
		tk.diskMB = DefaultStagingDiskMB
	}
	if req.DockerImage != "" {
		if r.cfg.DockerStager == nil {
			return pando.Errorf(pando.EInvalid, "cell %s cannot stage docker images", r.cfg.ID)
		}
		tk.memMB, tk.diskMB = 0, 0 // runs in the rep, not in a container
	} else {
		var err error
		if tk.stack, tk.rootfs, err = r.rootFS(req.Stack); err != nil {
			return err
		}
		if req.PackageKey == "" || req.DropletGUID == "" {
			return pando.Errorf(pando.EInvalid, "task %s: package key and droplet guid are required", t.GUID)
		}
	}

	return r.acceptTask(tk, r.runStaging)
}

// acceptTask reserves tk's memory and disk and runs it in the background,
// unless a task of its GUID already runs (a retried submission).
func (r *Rep) acceptTask(tk *task, run func(context.Context, *task)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.tasks[tk.t.GUID]; ok {
		return nil // already running: a retried submission
	}
	if err := r.reserveLocked(tk.memMB, tk.diskMB); err != nil {
		return err
	}
	tctx, cancel := context.WithCancelCause(r.ctx)
	tk.cancel = cancel
	r.tasks[tk.t.GUID] = tk
	r.wg.Add(1)
	go run(tctx, tk)
	return nil
}

// CancelTask stops a running task; it completes as failed ("cancelled" for
// staging, "task was cancelled" for a CF task, whose process gets
// StopGrace between SIGTERM and SIGKILL).
func (r *Rep) CancelTask(ctx context.Context, guid string) error {
	r.mu.Lock()
	tk, ok := r.tasks[guid]
	r.mu.Unlock()
	if !ok {
		return pando.Errorf(pando.ENotFound, "task %s is not on cell %s", guid, r.cfg.ID)
	}
	tk.stop(errCancelled, r.cfg.StopGrace)
	return nil
}

func (r *Rep) runStaging(ctx context.Context, tk *task) {
	defer r.wg.Done()
	defer tk.cancel(nil)
	req := tk.t.Staging
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultStagingTimeout
	}
	ctx, cancel := context.WithDeadlineCause(ctx, tk.began.Add(timeout), timeoutError{timeout})
	defer cancel()

	res, err := r.stage(ctx, tk)
	r.parkIfDetached() // its record stays for the next process
	t := tk.t
	t.CellID = r.cfg.ID
	t.State = pando.TaskCompleted
	t.UpdatedAt = time.Now()
	if err != nil {
		f := stagingFailure(ctx, err, tk.memMB)
		t.Failed, t.Failure = true, &f
		r.log.Info("staging failed", "task_guid", t.GUID, "app_guid", req.AppGUID, "kind", f.Kind, "exit_code", f.ExitCode, "error", err)
	} else {
		t.Result = &res
	}
	r.mu.Lock()
	delete(r.tasks, t.GUID)
	r.unacked[t.GUID] = t // Inventory still shows it until reported
	r.mu.Unlock()
	r.taskEnded(tk)
	// The API ends the staging log with the outcome when the completion
	// reaches it: the cell's own lines must be in the log store by then.
	r.syncLogs()
	r.reportTask(t)
}

// syncLogs waits, for a bounded time, until the staging or task lines
// emitted so far reached the log store (a joined cell ships them over the
// network).
func (r *Rep) syncLogs() {
	if r.cfg.SyncLogs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), logSyncTimeout)
	defer cancel()
	if err := r.cfg.SyncLogs(ctx); err != nil {
		r.log.Warn("staging log lines not all delivered before the completion", "error", err)
	}
}

func (r *Rep) stagingLog(req *pando.StagingRequest, typ, format string, args ...any) {
	r.stagingLine(req, typ, fmt.Sprintf(format, args...))
}

func (r *Rep) stagingLine(req *pando.StagingRequest, typ, line string) {
	r.emit(req.AppGUID, pando.LogSourceStaging, "0", typ, line)
}

// stage runs one staging to the end and returns the result with the
// droplet uploaded. Its container and directories are gone when it returns.
func (r *Rep) stage(ctx context.Context, tk *task) (pando.StagingResult, error) {
	req := tk.t.Staging
	if req.DockerImage != "" {
		if req.DockerPassword == "" && tk.resume == nil {
			r.recordTask(tk, &resumed{}, nil) // re-run if the cell restarts
		}
		return r.cfg.DockerStager(ctx, *req, func(line string) { r.stagingLine(req, "OUT", line) })
	}
	dir := filepath.Join(r.cfg.WorkDir, dirStaging, safeName(tk.t.GUID))
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			r.log.Error("remove staging dir", "task_guid", tk.t.GUID, "error", err)
		}
	}()
	if run := tk.resume; run != nil { // adopted after a restart
		defer r.releaseVolume(run.vol)
		return r.finishStaging(ctx, tk, dir, run)
	}
	quota := int64(tk.diskMB) << 20
	vcap := archive.DefaultLimits()
	vcap.MaxTotalBytes = quota

	// Downloads (the package, the buildpacks, the build cache) come
	// first, outside the cell's start slots: a slow one holds none.
	r.stagingLog(req, "OUT", "Downloading app package...")
	pkg, err := r.fetch(ctx, req.PackageKey)
	if err != nil {
		return pando.StagingResult{}, fmt.Errorf("download app package: %w", err)
	}
	defer pkg.cleanup()
	r.stagingLog(req, "OUT", "Downloaded app package (%s)", humanSize(pkg.size))
	var order, bdirs []string
	var bmounts []container.Mount
	used := map[string]bool{}
	for k, ref := range req.Buildpacks {
		bdir, err := r.buildpack(ctx, ref)
		if err != nil {
			return pando.StagingResult{}, fmt.Errorf("buildpack %s: %w", ref.Name, err)
		}
		bdirs = append(bdirs, bdir)
		name := buildpackDirName(ref.Name, k, used)
		order = append(order, name)
		bmounts = append(bmounts, container.Mount{Source: bdir, Destination: "/tmp/buildpacks/" + name, ReadOnly: true})
	}
	var cache *localBlob
	if req.BuildCacheKey != "" {
		cache = r.fetchCache(ctx, req, quota)
	}
	if cache != nil {
		defer cache.cleanup()
	}

	// A start slot until the builder runs, from its volume on: stagings
	// go ahead of waiting instance and task starts and have a reserve
	// slot of their own.
	slot, err := r.starts.acquire(ctx, true, func(running, ahead int) {
		r.stagingLog(req, "OUT", "Cell %s is running %d container starts; staging waits for a start slot (%d ahead)", r.cfg.ID, running, ahead)
	})
	if err != nil {
		return pando.StagingResult{}, err
	}
	defer slot()
	// Everything the staging writes, from the package to the droplet,
	// is on this volume: its size is the staging's disk quota.
	vol, err := r.newVolume(ctx, dir, tk.diskMB)
	if err != nil {
		return pando.StagingResult{}, err
	}
	defer r.releaseVolume(vol)
	sub := func(n string) string { return filepath.Join(dir, n) }
	// Filled as root: the backend hands the writable directories over to
	// the container's user (its host uid) when it runs the container.
	for _, d := range []string{"app", "cache", "deps", "output"} {
		if err := os.Mkdir(sub(d), 0o755); err != nil {
			return pando.StagingResult{}, err
		}
	}
	if err := extractZipFile(ctx, pkg.path, pkg.size, sub("app"), vcap); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return pando.StagingResult{}, quotaError{tk.diskMB}
		}
		return pando.StagingResult{}, fmt.Errorf("app package: %w", err)
	}

	mounts := []container.Mount{
		{Source: sub("app"), Destination: "/tmp/app"},
		{Source: sub("cache"), Destination: "/tmp/cache"},
		{Source: sub("deps"), Destination: "/tmp/deps"},
		{Source: sub("output"), Destination: "/tmp/output"},
	}
	if req.BindingFiles != "" && req.DockerImage == "" {
		// Writable so the backend hands the files to vcap.
		if err := writeBindingFiles(sub("bindings"), req.BindingFiles, lrpServices(req.Env)); err != nil {
			return pando.StagingResult{}, err
		}
		mounts = append(mounts, container.Mount{Source: sub("bindings"), Destination: bindingRoot})
	}
	mounts = append(mounts, bmounts...)
	cfStack := tk.stack
	if alias := r.cfg.CFStackNames[tk.stack]; alias != "" {
		cfStack = alias
	}
	egressURL := ""
	if r.cfg.StagingEgress {
		egressURL = stagingEgressURL
	}
	env := stagingEnv(*req, r.cfg.StagingEnv, cfStack, r.cfg.HostAddr, tk.memMB, tk.diskMB, egressURL)
	for _, c := range r.cfg.StagingCaches {
		if c.Ready != nil && !c.Ready() {
			continue
		}
		mounts = append(mounts, container.Mount{Source: c.HostDir, Destination: c.ContainerDir, ReadOnly: true})
		env = append(env, c.Env+"="+c.ContainerDir)
	}
	restoredCache := ""
	if cache != nil && r.restoreCache(ctx, req, *cache, sub("cache"), vcap) {
		var err error
		if restoredCache, err = cacheSignature(sub("cache")); err != nil {
			r.log.Warn("build cache signature", "app_guid", req.AppGUID, "error", err)
		}
	}

	args := []string{lifecyclePath, "builder",
		"--build-dir", "/tmp/app",
		"--buildpacks-dir", "/tmp/buildpacks",
	}
	if len(order) > 0 {
		args = append(args, "--buildpack-order", strings.Join(order, ","))
	}
	if req.SkipDetect {
		args = append(args, "--skip-detect")
	}
	args = append(args,
		"--cache-dir", "/tmp/cache",
		"--deps-dir", "/tmp/deps",
		"--output-droplet", "/tmp/output/droplet.tgz",
		"--output-metadata", "/tmp/output/result.json",
	)
	stdout, stderr := outputWriters(r.logLimits(pando.StagingLogRateLimit, "staging"), func(typ, l string) { r.stagingLine(req, typ, l) })
	spec := container.Spec{
		ID:          containerID("stg", tk.t.GUID),
		RootFS:      tk.rootfs,
		Mounts:      mounts,
		Volume:      vol.Dir(),
		UID:         VcapUID,
		GID:         VcapGID,
		Env:         env,
		Args:        args,
		MemoryBytes: int64(tk.memMB) << 20,
		DiskBytes:   int64(tk.diskMB) << 20,
		PidsLimit:   stagingPids,
		CPUShares:   cpuShares(tk.memMB),
		Stdout:      stdout,
		Stderr:      stderr,
	}
	// The builder starts printing as soon as the container runs, so say
	// everything about the container before it starts.
	r.stagingLog(req, "OUT", "Creating container and staging...")
	ctr, err := r.cfg.Backend.Run(ctx, spec)
	slot()
	if err != nil {
		return pando.StagingResult{}, fmt.Errorf("create staging container: %w", err)
	}
	run := &resumed{ctr: ctr, vol: vol, stdout: stdout, stderr: stderr, restoredCache: restoredCache}
	r.recordTask(tk, run, bdirs)
	return r.finishStaging(ctx, tk, dir, run)
}

func extractZipFile(ctx context.Context, path string, size int64, dest string, lim archive.Limits) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return archive.ExtractZip(ctx, f, size, dest, lim)
}

// fetchCache downloads the app's build cache (at most maxBytes), or says
// why it goes without one: nil then.
func (r *Rep) fetchCache(ctx context.Context, req *pando.StagingRequest, maxBytes int64) *localBlob {
	ok, err := r.cfg.Blobs.Exists(ctx, req.BuildCacheKey)
	if err != nil || !ok {
		if err != nil {
			r.log.Warn("build cache", "app_guid", req.AppGUID, "error", err)
		}
		return nil
	}
	r.stagingLog(req, "OUT", "Downloading build artifacts cache...")
	b, err := r.fetchMax(ctx, req.BuildCacheKey, maxBytes)
	if err != nil {
		r.log.Warn("download build cache", "app_guid", req.AppGUID, "error", err)
		r.stagingLog(req, "ERR", "Failed to restore build artifacts cache; staging without it")
		return nil
	}
	return &b
}

// restoreCache fills dir from the app's downloaded build cache. Failure
// leaves an empty cache: staging goes on, only slower.
func (r *Rep) restoreCache(ctx context.Context, req *pando.StagingRequest, cache localBlob, dir string, lim archive.Limits) bool {
	f, err := os.Open(cache.path)
	if err == nil {
		err = archive.ExtractTgz(ctx, f, dir, lim)
		f.Close()
	}
	if err != nil {
		r.log.Warn("restore build cache", "app_guid", req.AppGUID, "error", err)
		r.stagingLog(req, "ERR", "Failed to restore build artifacts cache; staging without it")
		if err := emptyDir(dir); err != nil {
			r.log.Error("empty build cache dir", "error", err)
		}
		return false
	}
	r.stagingLog(req, "OUT", "Downloaded build artifacts cache")
	return true
}

var badBuildpackChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// buildpackDirName names a buildpack's directory under /tmp/buildpacks:
// its name (the builder reports it as the buildpack name) made safe for a
// path and a comma-separated flag, unique within the staging.
func buildpackDirName(name string, index int, used map[string]bool) string {
	n := badBuildpackChars.ReplaceAllString(name, "_")
	if n == "" || n == "." || n == ".." {
		n = "buildpack" + strconv.Itoa(index)
	}
	base := n
	for k := 2; used[n]; k++ {
		n = base + "-" + strconv.Itoa(k)
	}
	used[n] = true
	return n
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
