package cellapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// After a server restart a joined cell's blob calls are answered "try
// again" until it has sent its inventory; the inventory adopts its
// instance and its staging, whose grants come back, so the staging's
// droplet upload and completion go through; other blobs stay refused.
func TestInventory_restoresAdoptedWorkAndItsGrantsAfterARestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for key, body := range map[string]string{"droplets/web": "web droplet", "packages/p1": "package", "droplets/other": "another app's"} {
		if _, err := f.blobs.Put(ctx, key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	f.board.AwaitCells([]string{"cell-a"}, []string{"b1"}, time.Minute)
	if err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "web", Revision: 2, AppGUID: "app1", Instances: 1,
		MemoryMB: 128, DropletKey: "droplets/web"}); err != nil {
		t.Fatal(err)
	}
	c := f.join(t, "cell-a")

	if _, err := c.client.Put(ctx, "droplets/d-b1", strings.NewReader("new droplet")); pando.ErrorKindOf(err) != pando.EUnavailable {
		t.Fatalf("upload before the inventory: %v, want unavailable (try again)", err)
	}

	staging := pando.Task{GUID: "b1", Kind: pando.TaskStaging, State: pando.TaskRunning, Staging: &pando.StagingRequest{
		AppGUID: "app1", BuildGUID: "b1", DropletGUID: "d-b1", PackageKey: "packages/p1"}}
	inv := pando.CellInventory{
		Actuals: []pando.ActualLRP{{ProcessGUID: "web", Revision: 2, Index: 0, InstanceGUID: "i0", State: pando.ActualRunning,
			Address: "127.0.0.2", Port: 61000, Ports: []pando.PortMapping{{ContainerPort: 8080, HostPort: 61000}}}},
		Tasks: []pando.Task{staging},
	}
	if err := c.client.ReportInventory(ctx, inv); err != nil {
		t.Fatalf("ReportInventory: %v", err)
	}
	as, err := f.board.ActualLRPs(ctx, "web")
	if err != nil || len(as) != 1 || as[0].InstanceGUID != "i0" || as[0].CellID != "cell-a" || as[0].State != pando.ActualRunning {
		t.Fatalf("instances after the inventory: %+v %v, want i0 adopted on cell-a", as, err)
	}
	if got, err := f.board.Task(ctx, "b1"); err != nil || got.State != pando.TaskRunning || got.CellID != "cell-a" {
		t.Fatalf("staging after the inventory: %+v %v, want RUNNING on cell-a", got, err)
	}
	for _, key := range []string{"droplets/web", "packages/p1"} {
		rc, err := c.client.Get(ctx, key)
		if err != nil {
			t.Fatalf("read %s of adopted work: %v", key, err)
		}
		rc.Close()
	}
	if _, err := c.client.Put(ctx, "droplets/d-b1", strings.NewReader("new droplet")); err != nil {
		t.Fatalf("upload of the adopted staging's droplet: %v", err)
	}
	if _, err := c.client.Get(ctx, "droplets/other"); pando.ErrorKindOf(err) != pando.EForbidden {
		t.Fatalf("read of a blob no adopted work needs: %v, want forbidden", err)
	}

	staging.State = pando.TaskCompleted
	staging.Result = &pando.StagingResult{DetectedBuildpack: "binary"}
	if err := c.client.TaskCompleted(ctx, staging); err != nil {
		t.Fatal(err)
	}
	if got, err := f.board.Task(ctx, "b1"); err != nil || got.State != pando.TaskCompleted || got.Result == nil {
		t.Fatalf("staging after its completion: %+v %v, want COMPLETED with its result", got, err)
	}
}
