package cell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/container"
)

// Stagings and CF tasks outlive the cell's process too (adopt.go says
// how instances do). Each one whose container runs has a record in
// WorkDir/task-records (written once its container started, removed once
// it is torn down); New adopts its volume and container (AdoptEnded: one
// that exited meanwhile gives its exit status) and finishes it as if the
// cell had never stopped: a staging's droplet and build cache are
// uploaded from its files, a task's outcome is reported. A docker
// staging (no container, no registry password) is staged again. Their
// completion reports wait for ReleaseAdopted: the BBS of a restarted
// server learns of them from the cell's Inventory first.

// dirTaskRecords holds one taskRecord per staging or CF task whose
// container runs.
const dirTaskRecords = "task-records"

// taskRecordVersion is the task records' format; others are not adopted.
const taskRecordVersion = 1

// resumed is the container of a staging or CF task: started by this
// process, or adopted after a restart.
type resumed struct {
	ctr            container.Container
	vol            container.Volume
	stdout, stderr *lineWriter
	releaseLayers  func() // a docker task's image layers
	restoredCache  string // a staging's build cache signature when restored
}

// taskRecord is what the cell keeps on disk of a staging or CF task.
type taskRecord struct {
	Version     int        `json:"version"`
	Task        pando.Task `json:"task"`
	MemoryMB    int        `json:"memory_mb"`
	DiskMB      int        `json:"disk_mb"`
	ContainerID string     `json:"container_id"`
	Dir         string     `json:"dir"`
	// Buildpacks are the extracted buildpacks a staging mounts: kept.
	Buildpacks    []string  `json:"buildpacks,omitempty"`
	RestoredCache string    `json:"restored_cache,omitempty"`
	Began         time.Time `json:"began"`
}

func (r *Rep) taskRecordPath(guid string) string {
	return filepath.Join(r.cfg.WorkDir, dirTaskRecords, safeName(guid)+".json")
}

// taskContainer is a task's container id and directory on this cell.
func (r *Rep) taskContainer(t pando.Task) (id, dir string) {
	if t.Kind == pando.TaskStaging {
		return containerID("stg", t.GUID), filepath.Join(r.cfg.WorkDir, dirStaging, safeName(t.GUID))
	}
	return containerID("task", t.GUID), filepath.Join(r.cfg.WorkDir, dirTasks, safeName(t.GUID))
}

// recordTask writes the record of a task whose container now runs,
// without its registry credentials (they stay sealed in the CCDB: an
// adopted task's layers come from the cell's cache). A cell that cannot
// adopt keeps none. A record not written costs only the task's survival
// of a restart.
func (r *Rep) recordTask(tk *task, run *resumed, buildpacks []string) {
	if r.cfg.Adopter == nil {
		return
	}
	t := tk.t
	if t.Staging != nil {
		s := *t.Staging
		s.DockerUsername, s.DockerPassword = "", ""
		t.Staging = &s
	}
	if t.Run != nil {
		run := *t.Run
		run.ImageCredentials = nil
		t.Run = &run
	}
	id, dir := r.taskContainer(t)
	if t.Staging != nil && t.Staging.DockerImage != "" {
		id, dir = "", "" // no container: staged again
	}
	rec := taskRecord{Version: taskRecordVersion, Task: t, MemoryMB: tk.memMB, DiskMB: tk.diskMB,
		ContainerID: id, Dir: dir, Buildpacks: buildpacks, RestoredCache: run.restoredCache, Began: tk.began}
	data, err := json.Marshal(rec)
	if err == nil {
		// No fsync: the containers do not outlive a reboot either.
		err = atomicfile.WriteFile(r.taskRecordPath(t.GUID), data, 0o600)
	}
	if err != nil {
		r.log.Warn("record task: it does not survive a restart of the cell", "task_guid", t.GUID, "error", err)
	}
}

// taskEnded removes the record of a task torn down. An adopted task's
// completion is reported only once the server has had the cell's
// Inventory (ReleaseAdopted): it waits here.
func (r *Rep) taskEnded(tk *task) {
	if err := os.Remove(r.taskRecordPath(tk.t.GUID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("remove task record", "task_guid", tk.t.GUID, "error", err)
	}
	if tk.resume != nil {
		<-r.released
	}
}

// ReleaseAdopted lets the stagings and tasks adopted at New report their
// completion: call it once the BBS has the cell's Inventory (those it did
// not claim then are not its to record). Shutdown releases them too.
func (r *Rep) ReleaseAdopted() {
	r.releaseOnce.Do(func() { close(r.released) })
}

// parseTaskRecord reads a task record and checks it against the cell:
// its container id and paths must be the ones the cell gives that task.
func (r *Rep) parseTaskRecord(data []byte) (taskRecord, error) {
	var rec taskRecord
	if len(data) > maxRecordBytes {
		return rec, fmt.Errorf("record of %d bytes", len(data))
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("decode record: %w", err)
	}
	t := rec.Task
	switch {
	case rec.Version != taskRecordVersion:
		return rec, fmt.Errorf("record version %d, want %d", rec.Version, taskRecordVersion)
	case t.GUID == "":
		return rec, errors.New("record without task guid")
	case t.Kind == pando.TaskStaging && t.Staging == nil:
		return rec, fmt.Errorf("record of task %s: no staging request", t.GUID)
	case t.Kind == pando.TaskRun && t.Run == nil:
		return rec, fmt.Errorf("record of task %s: no run request", t.GUID)
	case t.Kind != pando.TaskStaging && t.Kind != pando.TaskRun:
		return rec, fmt.Errorf("record of task %s: kind %q", t.GUID, t.Kind)
	}
	docker := t.Kind == pando.TaskStaging && t.Staging.DockerImage != ""
	id, dir := r.taskContainer(t)
	if docker {
		id, dir = "", ""
	}
	switch {
	case !docker && (rec.MemoryMB <= 0 || rec.DiskMB <= 0):
		return rec, fmt.Errorf("record of task %s: bad limits", t.GUID)
	case rec.ContainerID != id:
		return rec, fmt.Errorf("record of task %s: container %q is not its own", t.GUID, rec.ContainerID)
	case rec.Dir != dir:
		return rec, fmt.Errorf("record of task %s: directory %q is not its own", t.GUID, rec.Dir)
	}
	base := filepath.Join(r.cfg.WorkDir, dirBuildpacks)
	for _, b := range rec.Buildpacks {
		if filepath.Dir(b) != base || !isSHA256(filepath.Base(b)) {
			return rec, fmt.Errorf("record of task %s: buildpack %q is not the cell's", t.GUID, b)
		}
	}
	return rec, nil
}

// adoptTasks adopts the recorded stagings and tasks and adds the
// directories they use to keep. One that cannot be adopted is dropped:
// the server fails it as interrupted by the restart, and the backend's
// Cleanup removes its container.
func (r *Rep) adoptTasks(ctx context.Context, a Adopter, keep map[string]bool) {
	dir := filepath.Join(r.cfg.WorkDir, dirTaskRecords)
	ents, err := os.ReadDir(dir)
	if err != nil {
		r.log.Warn("read task records: no staging or task is adopted", "error", err)
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") || !e.Type().IsRegular() {
			_ = os.RemoveAll(p)
			continue
		}
		data, err := os.ReadFile(p)
		var rec taskRecord
		if err == nil {
			rec, err = r.parseTaskRecord(data)
		}
		if err == nil {
			err = r.adoptTask(ctx, a, rec)
		}
		if err != nil {
			r.log.Warn("staging or task not adopted: the server fails it as interrupted by the restart",
				"file", e.Name(), "task_guid", rec.Task.GUID, "error", err)
			_ = os.Remove(p)
			continue
		}
		if rec.Dir != "" {
			keep[rec.Dir] = true
		}
		for _, b := range rec.Buildpacks {
			keep[b] = true
		}
	}
}

// adoptTask takes over a recorded staging's or task's volume and
// container and resumes its life where the previous process left it.
func (r *Rep) adoptTask(ctx context.Context, a Adopter, rec taskRecord) (err error) {
	t := rec.Task
	tk := &task{t: t, memMB: rec.MemoryMB, diskMB: rec.DiskMB, began: rec.Began}
	run := &resumed{restoredCache: rec.RestoredCache}
	if t.Kind == pando.TaskStaging && t.Staging.DockerImage != "" {
		// No container: the image's config is fetched again.
		if r.cfg.DockerStager == nil {
			return errors.New("the cell cannot stage docker images")
		}
		tk.memMB, tk.diskMB = 0, 0
		r.resumeTask(tk, run)
		return nil
	}
	defer func() {
		if err != nil {
			r.releaseVolume(run.vol)
			if run.releaseLayers != nil {
				run.releaseLayers()
			}
		}
	}()
	for _, b := range rec.Buildpacks {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("buildpack: %w", err)
		}
	}
	if t.Kind == pando.TaskRun && t.Run.Image != "" {
		if r.cfg.Images == nil {
			return errors.New("the cell cannot run docker images")
		}
		// Its layers are in the cell's cache: this holds them again.
		_, release, err := r.cfg.Images.Pull(ctx, t.Run.Image, nil, int64(tk.diskMB)<<20)
		if err != nil {
			return fmt.Errorf("image %s: %w", t.Run.Image, err)
		}
		run.releaseLayers = release
	}
	if run.vol, err = a.AdoptVolume(ctx, rec.Dir); err != nil {
		return err
	}
	var out container.Output
	if t.Kind == pando.TaskStaging {
		req := t.Staging
		run.stdout, run.stderr = outputWriters(r.logLimits(pando.StagingLogRateLimit, "staging"), func(typ, l string) { r.stagingLine(req, typ, l) })
		out.Dropped = func(lines, bytes uint64) {
			r.stagingLog(req, "OUT", "staging: %d log lines (%d bytes) dropped while the cell was not reading them", lines, bytes)
		}
	} else {
		src := taskSource(t)
		run.stdout, run.stderr = outputWriters(r.logLimits(t.Run.LogRateLimitBytes, "app instance"), func(typ, line string) {
			r.emit(t.Run.AppGUID, src, "0", typ, line)
		})
		out.Dropped = func(lines, bytes uint64) {
			r.emit(t.Run.AppGUID, src, "0", "OUT", fmt.Sprintf(
				"app instance: %d log lines (%d bytes) dropped while the cell was not reading them", lines, bytes))
		}
	}
	out.Stdout, out.Stderr = run.stdout, run.stderr
	r.mu.Lock()
	_, dup := r.tasks[t.GUID]
	if err = r.reserveLocked(tk.memMB, tk.diskMB); err == nil && dup {
		err = fmt.Errorf("task %s adopted twice", t.GUID)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if run.ctr, err = a.AdoptEnded(ctx, rec.ContainerID, out); err != nil {
		return err
	}
	r.resumeTask(tk, run)
	return nil
}

// resumeTask goes on with an adopted task in the background.
func (r *Rep) resumeTask(tk *task, run *resumed) {
	t := tk.t
	tk.resume = run
	tctx, cancel := context.WithCancelCause(r.ctx)
	tk.cancel = cancel
	r.mu.Lock()
	r.tasks[t.GUID] = tk
	r.wg.Add(1)
	r.mu.Unlock()
	r.log.Info("task adopted", "task_guid", t.GUID, "kind", t.Kind)
	if t.Kind == pando.TaskStaging && run.ctr == nil {
		r.stagingLog(t.Staging, "OUT", "Cell %s stages the image again after a restart", r.cfg.ID)
		go r.runStaging(tctx, tk)
	} else if t.Kind == pando.TaskStaging {
		r.stagingLog(t.Staging, "OUT", "Cell %s adopted the staging container after a restart", r.cfg.ID)
		go r.runStaging(tctx, tk)
	} else {
		r.taskLog(tk, "OUT", "Cell %s adopted the container of task %s after a restart", r.cfg.ID, t.GUID)
		go r.runCFTask(tctx, tk)
	}
}
