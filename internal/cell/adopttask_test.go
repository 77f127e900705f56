package cell

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

func writeTaskRecord(t *testing.T, wd string, rec taskRecord) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(wd, dirTaskRecords), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wd, dirTaskRecords, safeName(rec.Task.GUID)+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func stagingRecord(wd, guid string) taskRecord {
	return taskRecord{Version: taskRecordVersion, MemoryMB: 256, DiskMB: 512, Began: time.Now().Add(-time.Minute),
		Task: pando.Task{GUID: guid, Kind: pando.TaskStaging, Staging: &pando.StagingRequest{
			AppGUID: "app-" + guid, DropletGUID: "droplet-" + guid, PackageKey: "packages/x", Timeout: time.Hour}},
		ContainerID: containerID("stg", guid), Dir: filepath.Join(wd, dirStaging, safeName(guid))}
}

func taskRunRecord(wd, guid string) taskRecord {
	return taskRecord{Version: taskRecordVersion, MemoryMB: 128, DiskMB: 128, Began: time.Now().Add(-time.Minute),
		Task: pando.Task{GUID: guid, Kind: pando.TaskRun, Run: &pando.RunRequest{
			AppGUID: "app-" + guid, Name: "nap", Command: "sleep 20", DropletKey: "droplets/x", LogRateLimitBytes: -1}},
		ContainerID: containerID("task", guid), Dir: filepath.Join(wd, dirTasks, safeName(guid))}
}

// After a restart, the cell adopts a staging whose container exited
// while nobody watched (its droplet uploaded from its files), a CF task
// still running (completed once it exits), and drops a staging whose
// container is gone (the server fails it); the completions wait for
// ReleaseAdopted, and nothing of them is left after.
func TestNew_adoptsRecordedStagingsAndTasksAndFinishesThem(t *testing.T) {
	wd := t.TempDir()
	staged, napping, lost := stagingRecord(wd, "staged"), taskRunRecord(wd, "napping"), stagingRecord(wd, "lost")
	bp := filepath.Join(wd, dirBuildpacks, strings.Repeat("a", 64))
	otherBP := filepath.Join(wd, dirBuildpacks, strings.Repeat("b", 64))
	staged.Buildpacks = []string{bp}
	mkdirs(t, filepath.Join(staged.Dir, "output"), filepath.Join(staged.Dir, "cache"), filepath.Join(napping.Dir, "home"), lost.Dir, bp, otherBP)
	if err := os.WriteFile(filepath.Join(staged.Dir, "output", "droplet.tgz"), []byte("the droplet"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staged.Dir, "output", "result.json"),
		[]byte(`{"detected_buildpack":"slow","process_types":{"web":"./server"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rec := range []taskRecord{staged, napping, lost} {
		writeTaskRecord(t, wd, rec)
	}
	fb := fake.New(fake.Options{})
	a := &fakeAdopter{backend: fb, outs: map[string]container.Output{},
		running: map[string]bool{staged.ContainerID: true, napping.ContainerID: true},
		ended:   map[string]container.ExitStatus{staged.ContainerID: {Code: 0}}}
	rc, logs, blobs := newRecorder(), newSink(), newMemBlobs()
	r, err := New(Config{ID: "cell-a", Backend: fb, Adopter: a, Blobs: blobs, Reporter: rc, Logs: logs,
		WorkDir: wd, TotalMemoryMB: 4096, TotalDiskMB: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	// What was not adopted is gone; what was, kept.
	for _, p := range []string{lost.Dir, otherBP, filepath.Join(wd, dirTaskRecords, "lost.json")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after New: %v, want it removed", p, err)
		}
	}
	if _, err := os.Stat(bp); err != nil {
		t.Errorf("the adopted staging's buildpack: %v", err)
	}
	// The staging completes on the cell, the task runs: the inventory
	// says so, and nothing is reported before ReleaseAdopted.
	state := func(guid string) string {
		for _, tk := range r.Inventory().Tasks {
			if tk.GUID == guid {
				return tk.State
			}
		}
		return ""
	}
	eventually(t, 5*time.Second, "the adopted staging completed in the inventory", func() bool { return state("staged") == pando.TaskCompleted })
	if got := state("napping"); got != pando.TaskRunning {
		t.Fatalf("adopted task in the inventory: %q, want RUNNING", got)
	}
	if got := state("lost"); got != "" {
		t.Fatalf("the staging not adopted is in the inventory as %q", got)
	}
	if droplet, ok := blobs.get(pando.DropletBlobKey("droplet-staged")); !ok || string(droplet) != "the droplet" {
		t.Fatalf("droplet uploaded: %q %v", droplet, ok)
	}
	logs.wait(t, 5*time.Second, pando.LogSourceStaging, "Uploading complete")
	if s := rc.String(); s != "" {
		t.Fatalf("reports before ReleaseAdopted: %s", s)
	}

	r.ReleaseAdopted()
	ev := rc.wait(t, 5*time.Second, "the staging's completion", isTask("staged"))
	if ev.task.Failed || ev.task.Result == nil || ev.task.Result.DetectedBuildpack != "slow" || ev.task.Result.DropletSize != int64(len("the droplet")) {
		t.Fatalf("staging completion %+v result %+v", ev.task, ev.task.Result)
	}
	a.mu.Lock()
	out := a.outs[napping.ContainerID]
	a.mu.Unlock()
	_, _ = out.Stdout.Write([]byte("napped\n"))
	logs.wait(t, 5*time.Second, "APP/TASK/nap", "napped")
	if err := fb.Exit(napping.ContainerID, container.ExitStatus{Code: 0}); err != nil {
		t.Fatal(err)
	}
	ev = rc.wait(t, 5*time.Second, "the task's completion", isTask("napping"))
	if ev.task.Failed || ev.task.State != pando.TaskCompleted {
		t.Fatalf("task completion %+v", ev.task)
	}
	for _, p := range []string{staged.Dir, napping.Dir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after completion: %v", p, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(wd, dirTaskRecords)); len(ents) != 0 {
		t.Errorf("task records left: %d", len(ents))
	}
	if ids := fb.IDs(); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	if st, _ := r.State(context.Background()); st.UsedContainers != 0 || st.UsedMemoryMB != 0 {
		t.Errorf("cell state after completion: %+v", st)
	}
}

// A cell that adopts records a CF task while its container runs (without
// its registry credentials) and removes the record with the container.
func TestRunTask_recordsTheTaskWhileItsContainerRuns(t *testing.T) {
	wd := t.TempDir()
	fb := fake.New(fake.Options{})
	blobs := newMemBlobs()
	putDroplet(t, blobs, "droplets/d")
	rc := newRecorder()
	r, err := New(Config{ID: "cell-a", Backend: fb, Adopter: &fakeAdopter{backend: fb}, Blobs: blobs, Reporter: rc,
		WorkDir: wd, TotalMemoryMB: 4096, TotalDiskMB: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	task := pando.Task{GUID: "t1", Kind: pando.TaskRun, Run: &pando.RunRequest{AppGUID: "app", Command: "sleep 9",
		DropletKey: "droplets/d", ImageCredentials: &pando.ImageCredentials{Username: "u", Password: "hunter2"}}}
	if err := r.RunTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(wd, dirTaskRecords, "t1.json")
	var data []byte
	eventually(t, 5*time.Second, "the task's record", func() bool {
		data, err = os.ReadFile(path)
		return err == nil
	})
	rec, err := r.parseTaskRecord(data)
	if err != nil {
		t.Fatalf("the record does not parse: %v", err)
	}
	if rec.Task.Run.ImageCredentials != nil || strings.Contains(string(data), "hunter2") {
		t.Fatalf("the record holds the registry credentials: %s", data)
	}
	if rec.ContainerID != "task-t1" || rec.Task.Run.Command != "sleep 9" {
		t.Fatalf("record %+v", rec)
	}
	if err := fb.Exit("task-t1", container.ExitStatus{Code: 0}); err != nil {
		t.Fatal(err)
	}
	rc.wait(t, 5*time.Second, "the task's completion", isTask("t1"))
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("record after completion: %v", err)
	}
}

func TestParseTaskRecord_refusesRecordsNotOfThisCell(t *testing.T) {
	wd := "/data/cell"
	r := &Rep{cfg: Config{WorkDir: wd}}
	encode := func(rec taskRecord, f func(*taskRecord)) []byte {
		f(&rec)
		data, _ := json.Marshal(rec)
		return data
	}
	good := stagingRecord(wd, "s1")
	if _, err := r.parseTaskRecord(encode(good, func(*taskRecord) {})); err != nil {
		t.Fatalf("good record: %v", err)
	}
	if _, err := r.parseTaskRecord(encode(taskRunRecord(wd, "t1"), func(*taskRecord) {})); err != nil {
		t.Fatalf("good task record: %v", err)
	}
	for name, data := range map[string][]byte{
		"version":          encode(good, func(r *taskRecord) { r.Version = 9 }),
		"no guid":          encode(good, func(r *taskRecord) { r.Task.GUID = "" }),
		"docker staging":   encode(good, func(r *taskRecord) { r.Task.Staging.DockerImage = "busybox" }),
		"no request":       encode(good, func(r *taskRecord) { r.Task.Staging = nil }),
		"kind":             encode(good, func(r *taskRecord) { r.Task.Kind = "other" }),
		"limits":           encode(good, func(r *taskRecord) { r.DiskMB = 0 }),
		"other container":  encode(good, func(r *taskRecord) { r.ContainerID = "app-x" }),
		"escaping dir":     encode(good, func(r *taskRecord) { r.Dir = "/data/cell/staging/../../etc" }),
		"foreign buildpck": encode(good, func(r *taskRecord) { r.Buildpacks = []string{"/etc"} }),
		"too big":          make([]byte, maxRecordBytes+1),
	} {
		if _, err := r.parseTaskRecord(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// putDroplet stores a droplet of one file at key.
func putDroplet(t *testing.T, blobs *memBlobs, key string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := []byte("#!/bin/sh\n")
	if err := tw.WriteHeader(&tar.Header{Name: "app/run", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(context.Background(), key, &buf); err != nil {
		t.Fatal(err)
	}
}

// A docker staging (no container: the image's config is fetched in the
// cell) is recorded unless it needs a registry password, and staged again
// by the cell that restarts.
func TestDockerStaging_isStagedAgainAfterARestartUnlessItNeedsAPassword(t *testing.T) {
	wd := t.TempDir()
	fb := fake.New(fake.Options{})
	release := make(chan struct{})
	stages := make(chan string, 4)
	stager := func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
		stages <- req.BuildGUID
		select {
		case <-release:
		case <-ctx.Done():
			return pando.StagingResult{}, ctx.Err()
		}
		return pando.StagingResult{Image: "registry.example/web@sha256:abc", ProcessTypes: map[string]string{"web": "serve"}}, nil
	}
	newCell := func(rc *recorder) *Rep {
		r, err := New(Config{ID: "cell-a", Backend: fb, Adopter: &fakeAdopter{backend: fb}, Blobs: newMemBlobs(),
			Reporter: rc, WorkDir: wd, DockerStager: stager, TotalMemoryMB: 1024, TotalDiskMB: 1024})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := newCell(newRecorder())
	public, private := dockerTask("public"), dockerTask("private")
	public.Staging.DockerUsername, public.Staging.DockerPassword = "", ""
	for _, task := range []pando.Task{public, private} {
		if err := first.RunTask(context.Background(), task); err != nil {
			t.Fatal(err)
		}
		<-stages
	}
	if _, err := os.Stat(filepath.Join(wd, dirTaskRecords, "public.json")); err != nil {
		t.Fatalf("record of the public image's staging: %v", err)
	}
	if _, err := os.Stat(filepath.Join(wd, dirTaskRecords, "private.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("record of the private image's staging: %v, want none", err)
	}
	// The process "dies": its records stay, its goroutines are cut off.
	data, err := os.ReadFile(filepath.Join(wd, dirTaskRecords, "public.json"))
	if err != nil {
		t.Fatal(err)
	}
	first.cancel()
	_ = first.Shutdown(context.Background())
	if err := os.WriteFile(filepath.Join(wd, dirTaskRecords, "public.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}

	rc := newRecorder()
	second := newCell(rc)
	t.Cleanup(func() { _ = second.Shutdown(context.Background()) })
	if got := <-stages; got != "public" {
		t.Fatalf("staged again: %q, want the public image's", got)
	}
	if inv := second.Inventory(); len(inv.Tasks) != 1 || inv.Tasks[0].GUID != "public" {
		t.Fatalf("inventory %+v, want the public image's staging", inv.Tasks)
	}
	close(release)
	second.ReleaseAdopted()
	done := rc.wait(t, 5*time.Second, "the staging's completion", isTask("public")).task
	if done.Failed || done.Result == nil || done.Result.Image != "registry.example/web@sha256:abc" {
		t.Fatalf("completion %+v result %+v", done, done.Result)
	}
}
