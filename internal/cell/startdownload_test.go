package cell

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// heldDownloads holds the downloads of chosen blobs and images until
// let go, saying when one began.
type heldDownloads struct {
	*memBlobs
	layer string // the one layer of every image
	mu    sync.Mutex
	held  map[string]chan struct{} // by blob key or image
	began map[string]chan struct{}
}

func newHeldDownloads(blobs *memBlobs, keys ...string) *heldDownloads {
	h := &heldDownloads{memBlobs: blobs, held: map[string]chan struct{}{}, began: map[string]chan struct{}{}}
	for _, k := range keys {
		h.held[k], h.began[k] = make(chan struct{}), make(chan struct{})
	}
	return h
}

// wait holds a download of key, if held, until let go or ctx ends.
func (h *heldDownloads) wait(ctx context.Context, key string) error {
	h.mu.Lock()
	held, began := h.held[key], h.began[key]
	h.mu.Unlock()
	if held == nil {
		return nil
	}
	select {
	case <-began:
	default:
		close(began)
	}
	select {
	case <-held:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *heldDownloads) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := h.wait(ctx, key); err != nil {
		return nil, err
	}
	return h.memBlobs.Get(ctx, key)
}

// Pull pulls an image of one empty layer.
func (h *heldDownloads) Pull(ctx context.Context, image string, _ *pando.ImageCredentials, _ int64) ([]string, func(), error) {
	if err := h.wait(ctx, image); err != nil {
		return nil, nil, err
	}
	return []string{h.layer}, func() {}, nil
}

// waitBegun waits until the download of key began.
func (h *heldDownloads) waitBegun(t *testing.T, key string) {
	t.Helper()
	select {
	case <-h.began[key]:
	case <-time.After(10 * time.Second):
		t.Fatalf("the download of %s did not begin", key)
	}
}

func (h *heldDownloads) letGo(key string) { close(h.held[key]) }

// downloadCell is a cell of one start slot whose downloads of keys are
// held; its app containers run until stopped, its builders exit 3, its
// tasks 0.
func downloadCell(t *testing.T, blobs *memBlobs, keys ...string) (*Rep, *heldDownloads, *recorder) {
	t.Helper()
	h := newHeldDownloads(blobs, keys...)
	h.layer = t.TempDir()
	fb := fake.New(fake.Options{Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
		switch {
		case strings.HasPrefix(spec.ID, "stg-"):
			return container.ExitStatus{Code: 3}
		case strings.HasPrefix(spec.ID, "task-"):
			return container.ExitStatus{}
		}
		<-ctx.Done()
		return container.ExitStatus{Code: 143, Signaled: true}
	}})
	rc := newRecorder()
	r, err := New(Config{ID: "cell-dl", Backend: fb, Blobs: h, Images: h, Reporter: rc, Logs: newSink(), WorkDir: t.TempDir(),
		TotalMemoryMB: 8192, TotalDiskMB: 16384, MaxConcurrentStarts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range keys {
			select {
			case <-h.held[k]:
			default:
				h.letGo(k)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r, h, rc
}

func downloadLRP(guid string) pando.DesiredLRP {
	return pando.DesiredLRP{ProcessGUID: guid, AppGUID: "app-" + guid, DropletKey: "droplets/d", MemoryMB: 64, DiskMB: 64,
		StartCommand: "./run", LogRateLimitBytes: -1, HealthCheck: pando.HealthCheck{Type: pando.HealthCheckProcess}}
}

// An instance start whose droplet or image is still downloading holds no
// start slot: with a limit of 1, another start runs meanwhile, and the
// held one runs once its download ends.
func TestStartLRP_aDownloadHoldsNoStartSlot(t *testing.T) {
	for _, tc := range []struct {
		name, held string
		lrp        func(pando.DesiredLRP) pando.DesiredLRP
	}{
		{"droplet", "droplets/slow", func(l pando.DesiredLRP) pando.DesiredLRP { l.DropletKey = "droplets/slow"; return l }},
		{"image", "registry.example/slow@sha256:abc", func(l pando.DesiredLRP) pando.DesiredLRP {
			l.DropletKey, l.Image = "", "registry.example/slow@sha256:abc"
			l.Docker = &pando.ExecutionMetadata{Cmd: []string{"serve"}}
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs := newMemBlobs()
			putDroplet(t, blobs, "droplets/d")
			putDroplet(t, blobs, "droplets/slow")
			r, h, rc := downloadCell(t, blobs, tc.held)
			ctx := context.Background()
			if err := r.StartLRP(ctx, tc.lrp(downloadLRP("slow")), 0, "inst-slow"); err != nil {
				t.Fatal(err)
			}
			h.waitBegun(t, tc.held)
			if tc.name == "image" {
				// A slot was free: its volume is made beside the pull.
				fb := r.cfg.Backend.(*fake.Backend)
				eventually(t, 10*time.Second, "the volume made beside the pull", func() bool { return len(fb.Volumes()) == 1 })
			}
			// (A docker instance's volume may take a slot a moment, beside
			// its pull.)
			eventually(t, 10*time.Second, "no start slot held while downloading", func() bool {
				running, waiting := r.starts.counts()
				return running == 0 && waiting == 0
			})
			if err := r.StartLRP(ctx, downloadLRP("fast"), 0, "inst-fast"); err != nil {
				t.Fatal(err)
			}
			rc.wait(t, 10*time.Second, "the other instance RUNNING", isState("inst-fast", pando.ActualRunning))
			if st := rc.states("inst-slow"); len(st) != 1 || st[0] != pando.ActualClaimed {
				t.Fatalf("the downloading instance reported %v, want only CLAIMED", st)
			}
			h.letGo(tc.held)
			rc.wait(t, 10*time.Second, "the downloaded instance RUNNING", isState("inst-slow", pando.ActualRunning))
			if running, waiting := r.starts.counts(); running != 0 || waiting != 0 {
				t.Errorf("after the starts: %d running, %d waiting", running, waiting)
			}
		})
	}
}

// A staging whose package, buildpack or build cache is still downloading
// holds no start slot, so instance starts go on meanwhile; the staging
// runs its builder once the download ends.
func TestRunTask_aStagingsDownloadHoldsNoStartSlot(t *testing.T) {
	for _, held := range []string{"packages/pushed", "buildpacks/test", "buildcache/pushed"} {
		t.Run(held, func(t *testing.T) {
			blobs := newMemBlobs()
			putDroplet(t, blobs, "droplets/d")
			putDroplet(t, blobs, "buildcache/pushed")
			ctx := context.Background()
			for key, b := range map[string][]byte{
				"buildpacks/test": buildpackZip(t, "true"),
				"packages/pushed": zipOf(t, map[string]string{"index.html": "x"}),
			} {
				if _, err := blobs.Put(ctx, key, strings.NewReader(string(b))); err != nil {
					t.Fatal(err)
				}
			}
			r, h, rc := downloadCell(t, blobs, held)
			if err := r.RunTask(ctx, stagingTask("stg-task", "pushed", time.Minute)); err != nil {
				t.Fatal(err)
			}
			h.waitBegun(t, held)
			if running, waiting := r.starts.counts(); running != 0 || waiting != 0 {
				t.Errorf("while downloading: %d starts running, %d waiting; want none", running, waiting)
			}
			if err := r.StartLRP(ctx, downloadLRP("inst"), 0, "inst"); err != nil {
				t.Fatal(err)
			}
			rc.wait(t, 10*time.Second, "the instance RUNNING", isState("inst", pando.ActualRunning))
			h.letGo(held)
			done := rc.wait(t, 10*time.Second, "the staging's result", isTask("stg-task")).task
			if done.Failure == nil || done.Failure.Kind != pando.FailureExited || done.Failure.ExitCode != 3 {
				t.Errorf("staging failure %+v, want its builder's exit 3 (the builder ran)", done.Failure)
			}
			if running, waiting := r.starts.counts(); running != 0 || waiting != 0 {
				t.Errorf("after the starts: %d running, %d waiting", running, waiting)
			}
		})
	}
}

// A CF task whose droplet is still downloading holds no start slot: an
// instance starts meanwhile, and the task runs once its download ends.
func TestRunTask_aTasksDownloadHoldsNoStartSlot(t *testing.T) {
	blobs := newMemBlobs()
	putDroplet(t, blobs, "droplets/d")
	putDroplet(t, blobs, "droplets/slow")
	r, h, rc := downloadCell(t, blobs, "droplets/slow")
	ctx := context.Background()
	task := pando.Task{GUID: "t1", Kind: pando.TaskRun, Run: &pando.RunRequest{AppGUID: "app", Command: "./run",
		DropletKey: "droplets/slow", MemoryMB: 64, DiskMB: 64, LogRateLimitBytes: -1}}
	if err := r.RunTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	h.waitBegun(t, "droplets/slow")
	if running, waiting := r.starts.counts(); running != 0 || waiting != 0 {
		t.Errorf("while downloading: %d starts running, %d waiting; want none", running, waiting)
	}
	if err := r.StartLRP(ctx, downloadLRP("inst"), 0, "inst"); err != nil {
		t.Fatal(err)
	}
	rc.wait(t, 10*time.Second, "the instance RUNNING", isState("inst", pando.ActualRunning))
	h.letGo("droplets/slow")
	done := rc.wait(t, 10*time.Second, "the task's result", isTask("t1")).task
	if done.Failed {
		t.Errorf("task failed: %+v", done.Failure)
	}
}
