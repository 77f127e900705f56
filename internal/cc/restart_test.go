package cc

// A server restart while builds stage on joined cells: the API on the same
// CCDB, with a fresh BBS the cells report to, records the staging a cell
// claimed and fails only the one nobody claimed.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

func TestRestart_stagingAJoinedCellRanThroughTheRestartIsRecorded(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{hold: true})
	manifest := func(name string) string {
		return "applications:\n- name: " + name + "\n  path: /home/dev/work/app\n  default-route: true\n"
	}
	claimed := e.pushToBuild("claimed", manifest("claimed"), ctStaticApp())
	running := e.nextTask()
	orphan := e.pushToBuild("orphan", manifest("orphan"), ctStaticApp())
	e.nextTask()

	// The restarted server: a new BBS and an API on the same CCDB.
	ctx := context.Background()
	board := bbs.New(bbs.Config{})
	board.RegisterCell(runtimetest.NewCell("cell-j", 8192))
	api, err := New(Config{
		BaseURL: e.base, Domain: "localhost", RouterURL: "http://127.0.0.1:8080",
		TempDir: e.tmp, Store: e.store, Blobs: e.blobs, Runtime: board, Stats: rrStats{board}, Logs: e.logs,
		Auth: ctTokenAuth{e.uaa}, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	inFlight, err := api.InFlight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	board.AwaitCells([]string{"cell-j"}, inFlight, time.Minute)
	if err := api.RestoreApps(ctx); err != nil {
		t.Fatal(err)
	}
	running.CellID, running.State = "cell-j", pando.TaskRunning
	if err := board.CellSynced(ctx, "cell-j", pando.CellInventory{Tasks: []pando.Task{running.Task}}); err != nil {
		t.Fatal(err)
	}
	if err := board.WaitAdopted(ctx); err != nil {
		t.Fatal(err)
	}
	if err := api.FailInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	// The store, not GET: a finished build reads STAGING for a moment.
	build := func(guid string) pando.Build {
		t.Helper()
		b, err := e.store.GetBuild(ctx, guid)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := build(orphan.Build); b.State != pando.BuildFailed ||
		b.Error != "StagingError - Staging error: staging was interrupted by a Pando server restart; push again" {
		t.Errorf("the build no cell claimed: %s %q, want FAILED by the restart", b.State, b.Error)
	}
	if b := build(claimed.Build); b.State != pando.BuildStaging {
		t.Fatalf("the build a cell claimed: %s %q, want STAGING", b.State, b.Error)
	}

	frFollow(t, api)
	info, err := e.blobs.Put(ctx, pando.DropletBlobKey(running.Staging.DropletGUID), strings.NewReader("droplet"))
	if err != nil {
		t.Fatal(err)
	}
	// The cell's completion, as the cell API hands it to the BBS.
	if err := board.TaskCompleted(ctx, pando.Task{GUID: running.GUID, CellID: "cell-j", State: pando.TaskCompleted, Result: &pando.StagingResult{
		DetectedBuildpack: "staticfile_buildpack", BuildpackName: "staticfile_buildpack",
		ProcessTypes: map[string]string{"web": "sh boot.sh"}, DropletSHA256: info.SHA256, DropletSize: info.Size,
	}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := build(claimed.Build)
		if b.State == pando.BuildStaged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claimed build after its completion: %s %q, want STAGED", b.State, b.Error)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := e.expect(e.get("/v3/droplets/"+running.Staging.DropletGUID), http.StatusOK); d["state"] != pando.DropletStaged {
		t.Errorf("droplet %v, want STAGED", d["state"])
	}
}
