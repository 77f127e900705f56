package cell

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// An http liveness check that gets no answer in time is made again at
// once: one missed answer (a CPU-starved machine) keeps the instance, two
// in a row crash it with CF's reason.
func TestLiveness_oneMissedAnswerIsCheckedAgainTwoCrash(t *testing.T) {
	const (
		answer = iota
		missOnce
		missAlways
	)
	var mode, checks, missed, missedAt atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		m := mode.Load()
		if m == missAlways || (m == missOnce && mode.CompareAndSwap(missOnce, answer)) {
			missed.Add(1)
			missedAt.Store(checks.Load())
			<-r.Context().Done() // no answer until the check gives up
			return
		}
	})
	fb := fake.New(fake.Options{})
	fb.Serve(containerID("app", "inst"), 8080, h)
	blobs, rc := newMemBlobs(), newRecorder()
	putDroplet(t, blobs, "droplets/d")
	r, err := New(Config{ID: "cell-l", Backend: fb, Blobs: blobs, Reporter: rc, WorkDir: t.TempDir(),
		TotalMemoryMB: 1024, TotalDiskMB: 1024, LivenessInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	lrp := pando.DesiredLRP{ProcessGUID: "proc", AppGUID: "app", DropletKey: "droplets/d", MemoryMB: 64, DiskMB: 64,
		StartCommand: "./run", LogRateLimitBytes: -1,
		HealthCheck: pando.HealthCheck{Type: pando.HealthCheckHTTP, Endpoint: "/health", InvocationTimeout: 100 * time.Millisecond}}
	if err := r.StartLRP(context.Background(), lrp, 0, "inst"); err != nil {
		t.Fatal(err)
	}
	rc.wait(t, 10*time.Second, "RUNNING", isState("inst", pando.ActualRunning))

	mode.Store(missOnce)
	eventually(t, 10*time.Second, "the missed answer and five checks after it", func() bool {
		return missed.Load() == 1 && checks.Load() >= missedAt.Load()+5
	})
	for _, st := range rc.states("inst") {
		if st == pando.ActualCrashed {
			t.Fatalf("one missed answer crashed the instance: %v", rc.states("inst"))
		}
	}

	mode.Store(missAlways)
	crashed := rc.wait(t, 10*time.Second, "CRASHED", isState("inst", pando.ActualCrashed)).actual
	if crashed.Crash == nil || crashed.Crash.Kind != pando.FailureUnhealthy ||
		!strings.Contains(crashed.Crash.Detail, "Failed to make HTTP request to '/health' on port 8080: timed out after 100ms") {
		t.Fatalf("crash %+v", crashed.Crash)
	}
	if n := missed.Load(); n < 3 {
		t.Errorf("%d missed answers in all; want the first one and two in a row", n)
	}
}
