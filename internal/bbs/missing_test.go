package bbs

import (
	"strings"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

// inventoryOf is what a cell that runs the BBS's records on it says in
// its sync, less the instance and task guids in skip.
func inventoryOf(h *harness, cellID, epoch string, taskGUIDs []string, skip ...string) pando.CellInventory {
	h.t.Helper()
	skipped := map[string]bool{}
	for _, g := range skip {
		skipped[g] = true
	}
	inv := pando.CellInventory{Epoch: epoch}
	for _, a := range h.actuals("web") {
		if a.CellID == cellID && !skipped[a.InstanceGUID] && a.State == pando.ActualRunning {
			inv.Actuals = append(inv.Actuals, a)
		}
	}
	for _, g := range taskGUIDs {
		if tk, ok := h.task(g); ok && tk.CellID == cellID && !skipped[g] {
			inv.Tasks = append(inv.Tasks, pando.Task{GUID: g, Kind: tk.Kind, State: pando.TaskRunning})
		}
	}
	return inv
}

func (h *harness) sync(cellID string, inv pando.CellInventory) pando.CellSyncAnswer {
	h.t.Helper()
	ans, err := h.bbs.SyncCell(h.ctx, cellID, inv)
	if err != nil {
		h.t.Fatalf("SyncCell: %v", err)
	}
	return ans
}

// Issue 8 follow-up (Diego's rep bulk sync marks such LRPs missing): a
// cell's sync that no longer lists an instance or a task the BBS placed
// there before the sync's epoch mark has the instance replaced as after
// a lost container (a CRASHED event with FailureLost, a CELL line saying
// why, a new instance placed at once) and the task failed with why. A
// sync without this BBS's mark judges nothing.
func TestSync_replacesAnInstanceAndFailsATaskItsCellNoLongerReports(t *testing.T) {
	logs := &logRecorder{}
	h := newHarness(t, Config{Logs: logs})
	a, b := newFakeCell("cell-a", 4096), newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(a)
	h.bbs.RegisterCell(b)
	if err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", AppGUID: "app-web", Revision: 1,
		Instances: 4, MemoryMB: 256, DiskMB: 256, Stack: "cflinuxfs4"}); err != nil {
		t.Fatal(err)
	}
	h.bbs.dispatch(h.ctx)
	for _, x := range h.actuals("web") {
		h.report(x, pando.ActualRunning)
	}
	if err := h.bbs.DesireTask(h.ctx, stagingTask("build-1", 256)); err != nil {
		t.Fatal(err)
	}
	tk, _ := h.task("build-1")
	if tk.State != pando.TaskRunning || tk.CellID == "" {
		t.Fatalf("task %+v, want RUNNING on a cell", tk)
	}
	cellID := tk.CellID
	var lost pando.ActualLRP
	for _, x := range h.actuals("web") {
		if x.CellID == cellID {
			lost = x
		}
	}
	if lost.InstanceGUID == "" {
		t.Fatalf("no instance on %s: %v", cellID, describe(h.actuals("web")))
	}
	tasks := []string{"build-1"}

	ans := h.sync(cellID, inventoryOf(h, cellID, "", tasks))
	if ans.Epoch == "" || len(ans.Actuals)+len(ans.Tasks) != 0 {
		t.Fatalf("first sync answered %+v, want only an epoch mark", ans)
	}
	mark := ans.Epoch
	// Without a mark, or with another BBS's, nothing is judged.
	for _, other := range []string{"", "another-bbs.1", mark + "0", "garbage"} {
		h.sync(cellID, inventoryOf(h, cellID, other, tasks, lost.InstanceGUID, "build-1"))
		if got := h.actual("web", lost.Index); got.InstanceGUID != lost.InstanceGUID || got.State != pando.ActualRunning {
			t.Fatalf("mark %q: instance %+v, want it kept", other, got)
		}
		if tk, _ := h.task("build-1"); tk.State != pando.TaskRunning {
			t.Fatalf("mark %q: task %+v, want it kept", other, tk)
		}
	}

	events := h.subscribe(h.ctx)
	ans = h.sync(cellID, inventoryOf(h, cellID, mark, tasks, lost.InstanceGUID, "build-1"))
	if len(ans.Actuals)+len(ans.Tasks) != 0 || ans.Epoch == "" || ans.Epoch == mark {
		t.Errorf("answer %+v, want no verdicts and a new mark", ans)
	}
	next := h.actual("web", lost.Index)
	if next.InstanceGUID == lost.InstanceGUID || next.State != pando.ActualUnclaimed || next.CrashCount != 1 ||
		next.Crash == nil || next.Crash.Kind != pando.FailureLost ||
		next.Crash.Detail != "instance was not reported by its cell "+cellID {
		t.Errorf("index %d after the sync: %+v, want a new UNCLAIMED instance after a lost crash", lost.Index, next)
	}
	if n := len(h.actuals("web")); n != 4 {
		t.Errorf("%d instances, want 4: %v", n, describe(h.actuals("web")))
	}
	tk, _ = h.task("build-1")
	if tk.State != pando.TaskCompleted || !tk.Failed ||
		tk.FailureReason != "task was not reported by its cell "+cellID+": the cell no longer runs it" {
		t.Errorf("task %+v, want it failed as not reported", tk)
	}
	deadline := time.After(5 * time.Second)
	for crashed := false; !crashed; {
		select {
		case e := <-events:
			crashed = e.Type == pando.EventActualLRPChanged && e.Actual.InstanceGUID == lost.InstanceGUID &&
				e.Actual.State == pando.ActualCrashed && e.Actual.Crash != nil && e.Actual.Crash.Kind == pando.FailureLost
		case <-deadline:
			t.Fatal("no CRASHED event for the lost instance")
		}
	}
	found := false
	for _, l := range logs.all() {
		found = found || l.SourceID == "app-web" && l.SourceType == pando.LogSourceCell &&
			strings.Contains(string(l.Payload), "Cell "+cellID+" no longer reports instance "+lost.InstanceGUID)
	}
	if !found {
		t.Errorf("no CELL line in the app's log saying why: %v", logs.all())
	}

	h.bbs.dispatch(h.ctx)
	if got := h.actual("web", lost.Index); got.CellID == "" {
		t.Errorf("the replacement %+v was not placed", got)
	}
	started := false
	for _, s := range allStarts(a, b) {
		started = started || s.InstanceGUID == next.InstanceGUID
	}
	if !started {
		t.Errorf("no start of the replacement %s: %v", next.InstanceGUID, allStarts(a, b))
	}
}

// The race: a placement whose start is still in flight during a sync, or
// that the cell accepted after the mark the sync carries was issued, is
// not declared missing (the cell's inventory may predate it); an
// instance the cell lists as ending (its end being reported) neither.
// Once the cell has a mark issued after the start, an inventory that
// lacks the instance makes it lost.
func TestSync_neverDeclaresMissingAPlacementInFlightOrNewerThanItsMark(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	gate := make(chan struct{})
	c.startGate = gate
	h.bbs.RegisterCell(c)
	empty := func(mark string) pando.CellInventory { return pando.CellInventory{Epoch: mark} }
	m1 := h.sync("cell-a", empty("")).Epoch

	placed := make(chan error, 1)
	go func() { // DesireLRP places the instance and waits for its start
		placed <- h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", Revision: 1, Instances: 1,
			MemoryMB: 256, DiskMB: 256, Stack: "cflinuxfs4"})
	}()
	waitFor(t, "the instance placed, its start in flight", func() bool {
		as := h.actuals("web")
		return len(as) == 1 && as[0].CellID == "cell-a"
	})
	inFlight := h.actual("web", 0)
	m2 := h.sync("cell-a", empty(m1)).Epoch
	if got := h.actual("web", 0); got.InstanceGUID != inFlight.InstanceGUID {
		t.Fatalf("a start in flight was declared missing: %+v", got)
	}
	if s := c.startCalls(); len(s) != 0 {
		t.Fatalf("starts %v before the gate opened", s)
	}
	close(gate)
	if err := <-placed; err != nil {
		t.Fatal(err)
	}
	if s := c.startCalls(); len(s) != 1 || s[0].InstanceGUID != inFlight.InstanceGUID {
		t.Fatalf("starts %v", s)
	}
	// The start was accepted after m2 was issued: an inventory taken
	// after m2 arrived may still predate it.
	m3 := h.sync("cell-a", empty(m2)).Epoch
	if got := h.actual("web", 0); got.InstanceGUID != inFlight.InstanceGUID {
		t.Fatalf("a start accepted after the mark was declared missing: %+v", got)
	}
	// Ending: the cell is reporting its end.
	ending := empty(m3)
	ending.Ending = []string{inFlight.InstanceGUID}
	m4 := h.sync("cell-a", ending).Epoch
	if got := h.actual("web", 0); got.InstanceGUID != inFlight.InstanceGUID {
		t.Fatalf("an instance the cell lists as ending was declared missing: %+v", got)
	}
	h.sync("cell-a", empty(m4))
	if got := h.actual("web", 0); got.InstanceGUID == inFlight.InstanceGUID || got.Crash == nil ||
		got.Crash.Kind != pando.FailureLost {
		t.Errorf("instance %+v: missing from a sync marked after its start, want it replaced as lost", got)
	}
}

// A task the cell accepted after the mark a sync carries is not judged
// by that sync, only by the next.
func TestSync_neverDeclaresMissingATaskAcceptedAfterItsMark(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	m := h.sync("cell-a", pando.CellInventory{}).Epoch
	if err := h.bbs.DesireTask(h.ctx, stagingTask("build-1", 256)); err != nil {
		t.Fatal(err)
	}
	// Accepted after m: not judged by a sync carrying m.
	m2 := h.sync("cell-a", pando.CellInventory{Epoch: m}).Epoch
	if tk, _ := h.task("build-1"); tk.State != pando.TaskRunning {
		t.Fatalf("task %+v, want RUNNING", tk)
	}
	h.sync("cell-a", pando.CellInventory{Epoch: m2})
	if tk, _ := h.task("build-1"); tk.State != pando.TaskCompleted || !strings.Contains(tk.FailureReason, "not reported by its cell") {
		t.Errorf("task %+v, want it failed as not reported", tk)
	}
}
