package cell

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// A detached cell leaves its work to the next process: a stop asked of
// it afterwards stops nothing, and an instance whose container ends
// afterwards keeps its container (destroyed by no one), record and
// files, with no report; new work is refused.
func TestDetach_leavesInstancesTheirContainersAndRecords(t *testing.T) {
	wd := t.TempDir()
	ended := make(chan string, 4) // containers whose process ended
	fb := fake.New(fake.Options{Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
		<-ctx.Done()
		ended <- spec.ID
		return container.ExitStatus{Code: 143, Signaled: true}
	}})
	blobs, rc := newMemBlobs(), newRecorder()
	putDroplet(t, blobs, "droplets/d")
	r, err := New(Config{ID: "cell-d", Backend: fb, Blobs: blobs, Reporter: rc, WorkDir: wd,
		TotalMemoryMB: 1024, TotalDiskMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	lrp := pando.DesiredLRP{ProcessGUID: "proc", AppGUID: "app", DropletKey: "droplets/d", MemoryMB: 64, DiskMB: 64,
		StartCommand: "./run", LogRateLimitBytes: -1, HealthCheck: pando.HealthCheck{Type: pando.HealthCheckProcess}}
	ctx := context.Background()
	for i, g := range []string{"a", "b"} {
		if err := r.StartLRP(ctx, lrp, i, g); err != nil {
			t.Fatal(err)
		}
		rc.wait(t, 10*time.Second, g+" RUNNING", isState(g, pando.ActualRunning))
	}
	for _, g := range []string{"a", "b"} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(r.recordPath(g)); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("no record of %s: %v", g, err)
			}
		}
	}

	if n, tasks := r.Detach(); n != 2 || tasks != 0 {
		t.Fatalf("Detach left %d instances and %d tasks, want 2 and 0", n, tasks)
	}
	if err := r.StartLRP(ctx, lrp, 2, "c"); pando.ErrorKindOf(err) != pando.EUnavailable {
		t.Errorf("StartLRP after Detach: %v, want unavailable", err)
	}
	if err := r.StopLRP(ctx, "proc", "a"); err != nil {
		t.Fatal(err)
	}
	if err := fb.Exit(containerID("app", "b"), container.ExitStatus{Code: 3}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.parked.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 2 instances' goroutines parked", r.parked.Load())
		}
	}
	if ids := fb.IDs(); len(ids) != 2 {
		t.Errorf("containers %v after Detach, want both (destroyed by no one)", ids)
	}
	if id := <-ended; id != containerID("app", "b") || len(ended) != 0 {
		t.Errorf("containers ended: %s and %d more, want only b's (which exited)", id, len(ended))
	}
	for _, g := range []string{"a", "b"} {
		if _, err := os.Stat(r.recordPath(g)); err != nil {
			t.Errorf("record of %s after Detach: %v", g, err)
		}
		if states := rc.states(g); len(states) != 2 { // CLAIMED, RUNNING
			t.Errorf("reports of %s: %v, want none after Detach", g, states)
		}
		rc.mu.Lock()
		removed := slices.ContainsFunc(rc.events, isRemoved(g))
		rc.mu.Unlock()
		if removed {
			t.Errorf("%s reported removed after Detach", g)
		}
	}
}
