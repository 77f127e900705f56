package cell

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// downReporter refuses task completions as a restarting server does
// (pando.EUnavailable) until it is brought up.
type downReporter struct {
	*recorder
	mu       sync.Mutex
	up       bool
	refusals int
	refused  chan struct{}
}

func (d *downReporter) TaskCompleted(ctx context.Context, t pando.Task) error {
	d.mu.Lock()
	if !d.up {
		d.refusals++
		d.mu.Unlock()
		select {
		case d.refused <- struct{}{}:
		default:
		}
		return pando.Errorf(pando.EUnavailable, "server restarting")
	}
	d.mu.Unlock()
	return d.recorder.TaskCompleted(ctx, t)
}

func inventoryTask(inv pando.CellInventory, guid string) (pando.Task, bool) {
	for _, t := range inv.Tasks {
		if t.GUID == guid {
			return t, true
		}
	}
	return pando.Task{}, false
}

// A staging's completion is delivered again until the server takes it,
// and the cell's inventory shows the staging running, then completed and
// unacknowledged, then not at all.
func TestReportTask_completionIsDeliveredAgainUntilTheServerTakesIt(t *testing.T) {
	release := make(chan struct{})
	rep, rec, _ := dockerCell(t, func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return pando.StagingResult{}, ctx.Err()
		}
		return pando.StagingResult{Image: "registry.example/web@sha256:abc", StartCommand: "serve"}, nil
	})
	down := &downReporter{recorder: rec, refused: make(chan struct{}, 1)}
	rep.SetReporter(down)
	if err := rep.RunTask(context.Background(), dockerTask("b1")); err != nil {
		t.Fatal(err)
	}
	if got, ok := inventoryTask(rep.Inventory(), "b1"); !ok || got.State != pando.TaskRunning || got.CellID != "cell-docker" || got.Staging == nil {
		t.Fatalf("inventory while staging: %+v (found %v), want b1 RUNNING with its request", got, ok)
	}

	close(release)
	select {
	case <-down.refused:
	case <-time.After(5 * time.Second):
		t.Fatal("the completion was never reported")
	}
	if got, ok := inventoryTask(rep.Inventory(), "b1"); !ok || got.State != pando.TaskCompleted || got.Result == nil {
		t.Fatalf("inventory while the server is down: %+v (found %v), want b1 COMPLETED with its result", got, ok)
	}

	down.mu.Lock()
	down.up = true
	down.mu.Unlock()
	done := rec.wait(t, 10*time.Second, "the completion delivered once the server is back", isTask("b1")).task
	if done.Result == nil || done.Result.Image != "registry.example/web@sha256:abc" {
		t.Errorf("delivered %+v", done)
	}
	eventually(t, 5*time.Second, "the acknowledged completion gone from the inventory", func() bool {
		_, ok := inventoryTask(rep.Inventory(), "b1")
		return !ok
	})
}
