package bbs

import (
	"context"
	"slices"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

// running is what a joined cell reports of an instance it kept running
// through a server restart.
func running(process string, rev, index int, guid, cell string, started time.Time) pando.ActualLRP {
	return pando.ActualLRP{ProcessGUID: process, Revision: rev, Index: index, InstanceGUID: guid, CellID: cell,
		State: pando.ActualRunning, Address: "127.0.0.3", Port: 61000 + index,
		Ports: []pando.PortMapping{{ContainerPort: 8080, HostPort: 61000 + index}}, StartedAt: started}
}

func allStarts(cells ...*fakeCell) []startCall {
	var out []startCall
	for _, c := range cells {
		out = append(out, c.startCalls()...)
	}
	return out
}

// After a restart the BBS adopts the instances a joined cell kept
// running, stops the ones nobody wants any more, and places only the
// missing index, once the cell has reported.
func TestAdopt_restartAdoptsReportedInstancesAndPlacesOnlyMissingOnes(t *testing.T) {
	h := newHarness(t, Config{})
	local, joined := newFakeCell("cell-0", 4096), newFakeCell("cell-j", 4096)
	h.bbs.RegisterCell(local)
	h.bbs.AwaitCells([]string{"cell-j"}, nil, DefaultCellPresenceTTL)

	h.desire("web", 3, 3, 256)
	if s := allStarts(local); len(s) != 0 {
		t.Fatalf("instances started before the known cell reported: %+v", s)
	}
	if !h.bbs.AwaitingCell("cell-j") {
		t.Error("AwaitingCell(cell-j) = false while it has not reported")
	}

	h.bbs.RegisterCell(joined)
	started := h.clock.Now().Add(-time.Hour)
	inv := pando.CellInventory{Actuals: []pando.ActualLRP{
		running("web", 3, 0, "g0", "cell-j", started),
		running("web", 3, 1, "g1", "cell-j", started),
		running("web", 2, 2, "old-rev", "cell-j", started), // the app restarted meanwhile
		running("gone", 1, 0, "gone-0", "cell-j", started), // the app was deleted
	}}
	if err := h.bbs.CellSynced(h.ctx, "cell-j", inv); err != nil {
		t.Fatalf("CellSynced: %v", err)
	}
	if err := h.bbs.WaitAdopted(h.ctx); err != nil {
		t.Fatalf("WaitAdopted: %v", err)
	}
	h.bbs.dispatch(h.ctx)

	for i, guid := range []string{"g0", "g1"} {
		a := h.actual("web", i)
		if a.InstanceGUID != guid || a.State != pando.ActualRunning || a.CellID != "cell-j" ||
			!a.StartedAt.Equal(started) || a.Port != 61000+i {
			t.Errorf("index %d after adoption: %+v, want %s RUNNING on cell-j since %v", i, a, guid, started)
		}
	}
	starts := allStarts(local, joined)
	if len(starts) != 1 || starts[0].Index != 2 || starts[0].Revision != 3 {
		t.Errorf("starts = %+v, want only index 2 of revision 3", starts)
	}
	stops := joined.stopCalls()
	slices.Sort(stops)
	if want := []string{"gone-0", "old-rev"}; !slices.Equal(stops, want) {
		t.Errorf("stopped on cell-j %v, want %v", stops, want)
	}
	if h.bbs.AwaitingCell("cell-j") {
		t.Error("AwaitingCell(cell-j) = true after its inventory")
	}
}

// Placement waits for every cell known before the restart, and no longer
// than the deadline when one never comes back.
func TestAdopt_placementWaitsUntilTheDeadlineForACellThatDoesNotReport(t *testing.T) {
	h := newHarness(t, Config{})
	h.run()
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.bbs.AwaitCells([]string{"cell-a", "cell-b"}, nil, 6*time.Second)
	deadline := h.clock.Now().Add(6 * time.Second)
	h.desire("web", 1, 2, 256)
	if err := h.bbs.CellSynced(h.ctx, "cell-a", pando.CellInventory{Actuals: []pando.ActualLRP{
		running("web", 1, 0, "kept", "cell-a", h.clock.Now()),
	}}); err != nil {
		t.Fatalf("CellSynced: %v", err)
	}
	waitFor(t, "Run to arm the wait's deadline", func() bool { return h.clock.hasWaiter(deadline) })
	h.bbs.dispatch(h.ctx)
	if s := a.startCalls(); len(s) != 0 {
		t.Fatalf("started %+v while cell-b may still report", s)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Millisecond)
	defer cancel()
	if err := h.bbs.WaitAdopted(ctx); err == nil {
		t.Fatal("WaitAdopted returned before the deadline with cell-b missing")
	}

	h.clock.Advance(6 * time.Second)
	if err := h.bbs.WaitAdopted(h.ctx); err != nil {
		t.Fatalf("WaitAdopted: %v", err)
	}
	waitFor(t, "index 1 placed after the deadline", func() bool { return len(a.startCalls()) == 1 })
	if s := a.startCalls(); s[0].Index != 1 {
		t.Errorf("started %+v, want index 1 (index 0 was adopted)", s)
	}
}

// Two cells reporting the same index: the first is adopted, the second
// stopped; an index already placed is not taken over either.
func TestAdopt_noIndexRunsTwice(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := newFakeCell("cell-a", 4096), newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(a)
	h.bbs.RegisterCell(b)
	h.bbs.AwaitCells([]string{"cell-a", "cell-b"}, nil, time.Minute)
	h.desire("web", 1, 1, 256)
	now := h.clock.Now()
	for _, c := range []string{"cell-a", "cell-b"} {
		if err := h.bbs.CellSynced(h.ctx, c, pando.CellInventory{Actuals: []pando.ActualLRP{
			running("web", 1, 0, "on-"+c, c, now),
		}}); err != nil {
			t.Fatalf("CellSynced %s: %v", c, err)
		}
	}
	h.bbs.dispatch(h.ctx)
	if got := h.actuals("web"); len(got) != 1 || got[0].InstanceGUID != "on-cell-a" {
		t.Errorf("instances = %+v, want only on-cell-a", got)
	}
	if stops := b.stopCalls(); !slices.Equal(stops, []string{"on-cell-b"}) {
		t.Errorf("cell-b stops = %v, want on-cell-b", stops)
	}
	if s := allStarts(a, b); len(s) != 0 {
		t.Errorf("started %+v, want nothing", s)
	}

	// Outside a restart's wait, a report on an unknown instance of a
	// placed index stops it, as before.
	if err := h.bbs.ActualLRPChanged(h.ctx, running("web", 1, 0, "stray", "cell-b", now)); err != nil {
		t.Fatal(err)
	}
	h.bbs.dispatch(h.ctx)
	if stops := b.stopCalls(); !slices.Contains(stops, "stray") {
		t.Errorf("cell-b stops = %v, want the stray instance stopped", stops)
	}
}

func adoptedStaging(guid, cell, state string) pando.Task {
	return pando.Task{GUID: guid, Kind: pando.TaskStaging, CellID: cell, State: state,
		Staging: &pando.StagingRequest{AppGUID: "app", BuildGUID: guid, DropletGUID: "d-" + guid, PackageKey: "packages/p"}}
}

// A staging that ran on a joined cell through a restart is adopted from the
// cell's inventory and its completion recorded after the restart; one
// delivered before the inventory is claimed too; work nobody had in flight
// is cancelled on the cell, and claims end with the wait.
func TestAdopt_stagingInFlightCompletesAfterRestart(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-j", 4096)
	h.bbs.AwaitCells([]string{"cell-j"}, []string{"b-running", "b-done", "b-late"}, time.Minute)
	events := h.subscribe(h.ctx)

	// The completion of a staging that ended while the server was down
	// arrives before the cell registered: it is to be sent again.
	done := adoptedStaging("b-done", "cell-j", pando.TaskCompleted)
	done.Result = &pando.StagingResult{DetectedBuildpack: "binary", DropletSHA256: "abc"}
	if err := h.bbs.TaskCompleted(h.ctx, done); pando.ErrorKindOf(err) != pando.EUnavailable {
		t.Fatalf("completion from a cell not registered yet: %v, want unavailable (report again)", err)
	}
	// Registered, before its inventory.
	h.bbs.RegisterCell(c)
	if err := h.bbs.TaskCompleted(h.ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.CellSynced(h.ctx, "cell-j", pando.CellInventory{Tasks: []pando.Task{
		adoptedStaging("b-running", "cell-j", pando.TaskRunning),
		adoptedStaging("not-ours", "cell-j", pando.TaskRunning),
	}}); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.task("b-running"); !ok || got.State != pando.TaskRunning || got.CellID != "cell-j" {
		t.Fatalf("b-running after the inventory: %+v (found %v), want RUNNING on cell-j", got, ok)
	}
	c.mu.Lock()
	cancels := slices.Clone(c.cancels)
	c.mu.Unlock()
	if got := cancels; !slices.Equal(got, []string{"not-ours"}) {
		t.Errorf("cancelled on the cell %v, want not-ours", got)
	}
	if _, ok := h.task("not-ours"); ok {
		t.Error("a task nobody had in flight was adopted")
	}

	result := adoptedStaging("b-running", "cell-j", pando.TaskCompleted)
	result.Result = &pando.StagingResult{DetectedBuildpack: "go", DropletSHA256: "def"}
	if err := h.bbs.TaskCompleted(h.ctx, result); err != nil {
		t.Fatal(err)
	}
	completed := map[string]string{}
	for len(completed) < 2 {
		select {
		case ev := <-events:
			if ev.Type == pando.EventTaskCompleted && ev.Task.Result != nil && !ev.Task.Failed {
				completed[ev.Task.GUID] = ev.Task.Result.DropletSHA256
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("completions seen: %v, want b-done and b-running", completed)
		}
	}
	if completed["b-done"] != "abc" || completed["b-running"] != "def" {
		t.Errorf("completions %v", completed)
	}

	// The wait is over (the only known cell reported): a late claim of
	// in-flight work is refused, so the API fails it as before.
	late := adoptedStaging("b-late", "cell-j", pando.TaskCompleted)
	if err := h.bbs.TaskCompleted(h.ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.task("b-late"); ok {
		t.Error("b-late was claimed after the wait ended")
	}
}
