package cell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/failurelog"
)

// taskSource is the log source type of a CF task's output, as CF tags it:
// APP/TASK/<name> (the instance id is "0").
func taskSource(t pando.Task) string {
	name := t.Run.Name
	if name == "" {
		name = t.GUID
	}
	return "APP/TASK/" + name
}

// acceptRun accepts a CF task (cf run-task): it checks the request, the
// stack and the cell's capacity, reserves the task's memory, disk and a
// container, and runs it in the background.
func (r *Rep) acceptRun(t pando.Task) error {
	run := t.Run
	switch {
	case run == nil:
		return pando.Errorf(pando.EInvalid, "task %s: no run request", t.GUID)
	case run.Image != "" && r.cfg.Images == nil:
		return pando.Errorf(pando.EInvalid, "cell %s cannot run docker images", r.cfg.ID)
	case run.DropletKey == "" && run.Image == "":
		return pando.Errorf(pando.EInvalid, "task %s: no droplet", t.GUID)
	case strings.TrimSpace(run.Command) == "":
		return pando.Errorf(pando.EInvalid, "task %s: no command", t.GUID)
	}
	tk := &task{t: t, memMB: run.MemoryMB, diskMB: run.DiskMB, began: time.Now()}
	if run.Image == "" {
		stack, rootfs, err := r.rootFS(run.Stack)
		if err != nil {
			return err
		}
		tk.stack, tk.rootfs = stack, rootfs
	}
	if tk.memMB <= 0 {
		tk.memMB = DefaultInstanceMemoryMB
	}
	if tk.diskMB <= 0 {
		tk.diskMB = DefaultInstanceDiskMB
	}

	return r.acceptTask(tk, r.runCFTask)
}

// runCFTask is a CF task's life on the cell: run it, tear it down, release
// its reservation and report the outcome.
func (r *Rep) runCFTask(ctx context.Context, tk *task) {
	defer r.wg.Done()
	defer tk.cancel(nil)
	why := r.execTask(ctx, tk)
	r.parkIfDetached() // its record stays for the next process
	t := tk.t
	t.CellID = r.cfg.ID
	t.State = pando.TaskCompleted
	t.Failed, t.Failure = why != nil, why
	t.UpdatedAt = time.Now()
	r.mu.Lock()
	delete(r.tasks, t.GUID)
	r.unacked[t.GUID] = t // Inventory still shows it until reported
	r.mu.Unlock()
	r.taskEnded(tk)
	r.log.Info("task completed", "task_guid", t.GUID, "app_guid", t.Run.AppGUID, "failed", t.Failed, "failure", failurelog.Of(why))
	// A client following the task's output reads until the newest line
	// the log store holds once the task has ended: its lines go first.
	r.syncLogs()
	r.reportTask(t)
}

// execTask runs the task's command in a container made from the droplet
// and returns why it failed, nil when the command exited 0. The container
// and the task's files are gone when it returns.
func (r *Rep) execTask(ctx context.Context, tk *task) *pando.Failure {
	guid := tk.t.GUID
	dir := filepath.Join(r.cfg.WorkDir, dirTasks, safeName(guid))
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			r.log.Error("remove task dir", "task_guid", guid, "error", err)
		}
	}()
	run := tk.resume // adopted after a restart
	if run == nil {
		var why *pando.Failure
		var release func()
		run, release, why = r.startTask(ctx, tk, dir)
		defer release()
		if why != nil {
			return why
		}
	} else {
		defer r.releaseVolume(run.vol) // after the container's Destroy below
		if run.releaseLayers != nil {
			defer run.releaseLayers()
		}
	}
	ctr, vol := run.ctr, run.vol
	defer func() {
		r.taskLog(tk, "OUT", "Cell %s destroying container for task %s", r.cfg.ID, guid)
		dctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
		defer cancel()
		if err := ctr.Destroy(dctx); err != nil {
			r.log.Error("destroy task container", "task_guid", guid, "error", err)
			return
		}
		r.taskLog(tk, "OUT", "Cell %s successfully destroyed container for task %s", r.cfg.ID, guid)
	}()
	why := r.watchTask(ctx, tk, ctr, vol)
	r.parkIfDetached() // before the deferred Destroy
	run.stdout.Flush()
	run.stderr.Flush()
	return why
}

// startTask makes the task's volume and container and records the task
// (recordTask); release frees the volume and the image layers once the
// container is destroyed. On failure, why says why.
func (r *Rep) startTask(ctx context.Context, tk *task, dir string) (run *resumed, release func(), why *pando.Failure) {
	guid := tk.t.GUID
	var releases []func()
	release = func() {
		for _, f := range slices.Backward(releases) {
			f()
		}
	}
	src := taskSource(tk.t)
	stdout, stderr := outputWriters(r.logLimits(tk.t.Run.LogRateLimitBytes, "app instance"), func(typ, line string) {
		r.emit(tk.t.Run.AppGUID, src, "0", typ, line)
	})

	// What the start downloads (the droplet, the image's layers) comes
	// first, outside the cell's start slots: a slow download holds none.
	var files startFiles
	defer func() { files.close() }()
	var err error
	if tk.t.Run.Image != "" {
		var rel func()
		files.layers, rel, err = r.cfg.Images.Pull(ctx, tk.t.Run.Image, tk.t.Run.ImageCredentials, int64(tk.diskMB)<<20)
		if rel != nil {
			releases = append(releases, rel)
		}
	} else {
		files.droplet, err = r.openDroplet(ctx, tk.t.Run.DropletKey, tk.t.Run.DropletSHA256)
	}
	var vol container.Volume
	if err == nil {
		// One of the cell's bounded start slots, from the volume to the
		// running process.
		slot, serr := r.starts.acquire(ctx, false, func(running, ahead int) {
			r.taskLog(tk, "OUT", "Cell %s is running %d container starts: task %s waits for a start slot (%d ahead)", r.cfg.ID, running, guid, ahead)
		})
		if serr != nil {
			return nil, release, taskStopFailure(ctx)
		}
		defer slot()
		r.taskLog(tk, "OUT", "Cell %s creating container for task %s", r.cfg.ID, guid)
		vol, err = r.newVolume(ctx, dir, tk.diskMB)
		if err == nil {
			releases = append(releases, func() { r.releaseVolume(vol) })
		}
	}
	var spec container.Spec
	if err == nil {
		spec, err = r.taskSpec(ctx, tk, vol, files)
	}
	var ctr container.Container
	if err == nil {
		spec.Stdout, spec.Stderr = stdout, stderr
		ctr, err = r.cfg.Backend.Run(ctx, spec)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, release, taskStopFailure(ctx)
		}
		r.log.Error("create task container", "task_guid", guid, "error", err)
		hint := noShellHint(tk.t.Run.Image, err)
		r.taskLog(tk, "ERR", "Cell %s failed to create container for task %s: %v%s", r.cfg.ID, guid, err, parenthesized(hint))
		return nil, release, &pando.Failure{Kind: pando.FailureStartFailed, Detail: err.Error(), Hint: hint}
	}
	r.taskLog(tk, "OUT", "Cell %s successfully created container for task %s", r.cfg.ID, guid)
	run = &resumed{ctr: ctr, vol: vol, stdout: stdout, stderr: stderr}
	r.recordTask(tk, run, nil)
	return run, release, nil
}

// watchTask waits for the task's process to exit, stopping it when the
// task is cancelled, and returns why it failed (nil for exit status 0).
func (r *Rep) watchTask(ctx context.Context, tk *task, ctr container.Container, vol container.Volume) *pando.Failure {
	src := taskSource(tk.t)
	waitCtx, waitCancel := context.WithCancel(context.Background())
	defer waitCancel()
	exited := make(chan waitResult, 1)
	go func() {
		st, err := ctr.Wait(waitCtx)
		exited <- waitResult{st, err}
	}()
	stop := func(grace time.Duration) {
		r.parkIfDetached()
		sctx, cancel := context.WithTimeout(context.Background(), grace+destroyTimeout)
		defer cancel()
		if err := ctr.Stop(sctx, grace); err != nil {
			r.log.Warn("stop task container", "task_guid", tk.t.GUID, "error", err)
		}
	}
	for {
		select {
		case w := <-exited:
			if w.err != nil {
				return &pando.Failure{Kind: pando.FailureLost, Detail: w.err.Error()}
			}
			r.emit(tk.t.Run.AppGUID, src, "0", "OUT", fmt.Sprintf("Exit status %d", w.st.Code))
			if w.st.Code == 0 && !w.st.OOMKilled {
				return nil
			}
			f := &pando.Failure{Kind: pando.FailureExited, ExitCode: w.st.Code}
			if w.st.OOMKilled {
				f.Kind = pando.FailureOOM
				r.taskLog(tk, "ERR", "Cell %s: task %s was killed: out of memory (limit %d MB)", r.cfg.ID, tk.t.GUID, tk.memMB)
			} else if volumeFull(vol) {
				f.Kind, f.LimitMB = pando.FailureDiskFull, tk.diskMB
				r.taskLog(tk, "ERR", "Cell %s: task %s exited with its disk full (quota %d MB)", r.cfg.ID, tk.t.GUID, tk.diskMB)
			}
			return f
		case <-ctx.Done():
			r.taskLog(tk, "OUT", "Cell %s stopping task %s", r.cfg.ID, tk.t.GUID)
			stop(tk.stopGrace())
			return taskStopFailure(ctx)
		}
	}
}

// taskStopFailure is why a task stopped before its end failed.
func taskStopFailure(ctx context.Context) *pando.Failure {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errCancelled):
		return &pando.Failure{Kind: pando.FailureCancelled}
	case errors.Is(cause, errShutdown):
		return &pando.Failure{Kind: pando.FailureCellShutdown}
	}
	return &pando.Failure{Kind: pando.FailureStopped, Detail: cause.Error()}
}

// taskSpec prepares the task's files on its volume (the droplet extracted
// at /home/vcap, as for an instance) and its container spec: the launcher
// runs the command as vcap with the task's limits, no ports and no health
// check. A docker app's task runs the command under sh -c in the image's
// layers, as the image's user, in its WORKDIR, with its ENV under the
// task's. Either gets the app's service binding files when it asked for
// them, as its instances do.
func (r *Rep) taskSpec(ctx context.Context, tk *task, vol container.Volume, files startFiles) (container.Spec, error) {
	run := tk.t.Run
	env := r.taskEnv(*run, tk.t.GUID, tk.memMB, tk.diskMB)
	services := lrpServices(run.Env)
	if run.Image != "" {
		return imageContainerSpec(imageRun{
			id: containerID("task", tk.t.GUID), image: run.Image, meta: run.Docker, command: run.Command,
			layers: files.layers, volume: vol, env: env, memMB: tk.memMB, diskMB: tk.diskMB,
			bindingFiles: run.BindingFiles, services: services,
		})
	}
	// Extracted as root: the backend hands the directory over to the
	// container's user when it runs the container.
	home := filepath.Join(vol.Dir(), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return container.Spec{}, err
	}
	if err := extractDroplet(ctx, files.droplet, home, tk.diskMB); err != nil {
		return container.Spec{}, err
	}
	bindings, err := bindingMounts(vol.Dir(), run.BindingFiles, services)
	if err != nil {
		return container.Spec{}, err
	}
	return container.Spec{
		ID:          containerID("task", tk.t.GUID),
		RootFS:      tk.rootfs,
		Mounts:      append([]container.Mount{{Source: home, Destination: "/home/vcap"}}, bindings...),
		Volume:      vol.Dir(),
		UID:         VcapUID,
		GID:         VcapGID,
		Env:         env,
		Dir:         "/home/vcap/app",
		Args:        []string{lifecyclePath, "launcher", "--app-dir", "/home/vcap/app", "--", run.Command},
		MemoryBytes: int64(tk.memMB) << 20,
		DiskBytes:   int64(tk.diskMB) << 20,
		PidsLimit:   instancePids,
		CPUShares:   cpuShares(tk.memMB),
	}, nil
}

// taskLog emits a CELL line for the task (as CF's rep does) and logs it.
func (r *Rep) taskLog(tk *task, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.emit(tk.t.Run.AppGUID, pando.LogSourceCell, "0", typ, msg)
	r.log.Debug(msg, "task_guid", tk.t.GUID)
}
