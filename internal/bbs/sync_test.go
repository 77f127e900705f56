package bbs

import (
	"strings"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func verdicts(vs []pando.SyncVerdict) map[string]pando.SyncVerdict {
	out := map[string]pando.SyncVerdict{}
	for _, v := range vs {
		out[v.GUID] = v
	}
	return out
}

// Issue 8 (defence in depth): a cell's periodic sync gets, per item it
// runs, what the BBS wants of it by the rules of an inventory at
// registration: its own instances are kept (one merely starting, still
// UNCLAIMED on the BBS's side, included), instances it forgot are to be
// stopped with why, and tasks it does not know are cancelled.
func TestSync_answersWhatToStopAndKeepsWhatTheBBSPlacedThere(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 2, 2, 256)
	h.bbs.dispatch(h.ctx)
	placed := h.actuals("web")
	if len(placed) != 2 || placed[0].CellID != "cell-a" || placed[1].CellID != "cell-a" {
		t.Fatalf("placed %v, want 2 on cell-a", describe(placed))
	}
	if err := h.bbs.DesireTask(h.ctx, stagingTask("build-1", 256)); err != nil {
		t.Fatal(err)
	}
	started := h.clock.Now().Add(-time.Minute)
	starting := running("web", 2, placed[0].Index, placed[0].InstanceGUID, "cell-a", time.Time{})
	starting.State, starting.Address, starting.Port, starting.Ports = pando.ActualClaimed, "", 0, nil
	inv := pando.CellInventory{
		Actuals: []pando.ActualLRP{
			starting, // its CLAIMED report is still on its way
			running("web", 2, placed[1].Index, placed[1].InstanceGUID, "cell-a", started),
			running("web", 1, 0, "old-rev", "cell-a", started),
			running("web", 2, 5, "beyond", "cell-a", started),
			running("web", 2, 0, "dup", "cell-a", started),
			running("gone", 1, 0, "gone-0", "cell-a", started),
		},
		Tasks: []pando.Task{
			{GUID: "build-1", Kind: pando.TaskStaging, State: pando.TaskRunning},
			{GUID: "stray", Kind: pando.TaskStaging, State: pando.TaskRunning},
			{GUID: "done-long-ago", Kind: pando.TaskStaging, State: pando.TaskCompleted},
		},
	}
	ans, err := h.bbs.SyncCell(h.ctx, "cell-a", inv)
	if err != nil {
		t.Fatalf("SyncCell: %v", err)
	}
	got := verdicts(ans.Actuals)
	for guid, why := range map[string]string{
		"old-rev": "revision 1", "beyond": "beyond the 2 desired", "dup": "another instance's", "gone-0": "no longer desired",
	} {
		v, ok := got[guid]
		if !ok || v.Action != pando.SyncStop || !strings.Contains(v.Reason, why) {
			t.Errorf("%s: verdict %+v, want stop saying %q", guid, v, why)
		}
	}
	if len(got) != 4 {
		t.Errorf("verdicts %+v: the BBS's own instances are kept, not listed", ans.Actuals)
	}
	tasks := verdicts(ans.Tasks)
	if v := tasks["stray"]; v.Action != pando.SyncStop || len(tasks) != 1 {
		t.Errorf("task verdicts %+v, want only stray cancelled", ans.Tasks)
	}
	// The kept instances' states are recorded; the BBS queued no stop
	// of its own (the cell stops what it was told to).
	if a := h.actual("web", placed[1].Index); a.State != pando.ActualRunning {
		t.Errorf("instance reported RUNNING by the sync is %s", a.State)
	}
	if a := h.actual("web", placed[0].Index); a.InstanceGUID != placed[0].InstanceGUID || a.State != pando.ActualClaimed {
		t.Errorf("starting instance %+v, want it kept CLAIMED", a)
	}
	h.bbs.dispatch(h.ctx)
	if s := c.stopCalls(); len(s) != 0 {
		t.Errorf("BBS stops %v: the cell stops them itself", s)
	}
}

// An instance the BBS lost track of whose index only waits for a cell
// (UNCLAIMED, no auction in flight) is adopted, as at registration; the
// sync of a cell the BBS does not know is refused, and during the wait
// for the cells after a restart everything is kept.
func TestSync_adoptsALostInstanceRefusesUnknownCellsAndKeepsAllWhileAwaitingCells(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 1, 8192) // fits no cell: waits UNCLAIMED
	if as := h.actuals("web"); len(as) != 1 || as[0].CellID != "" {
		t.Fatalf("actuals %v, want one unplaced", describe(as))
	}
	inv := pando.CellInventory{Actuals: []pando.ActualLRP{running("web", 1, 0, "lost", "cell-a", h.clock.Now())}}
	ans, err := h.bbs.SyncCell(h.ctx, "cell-a", inv)
	if err != nil {
		t.Fatal(err)
	}
	if v := verdicts(ans.Actuals)["lost"]; v.Action != pando.SyncAdopt {
		t.Fatalf("verdict %+v, want adopt", ans.Actuals)
	}
	if as := h.actuals("web"); len(as) != 1 || as[0].InstanceGUID != "lost" || as[0].State != pando.ActualRunning {
		t.Errorf("actuals %v, want the adopted instance only", describe(as))
	}

	if _, err := h.bbs.SyncCell(h.ctx, "cell-x", inv); !pando.IsNotFound(err) {
		t.Errorf("sync of an unregistered cell: %v, want not found", err)
	}

	h.bbs.AwaitCells([]string{"cell-b"}, nil, time.Minute)
	stray := pando.CellInventory{Actuals: []pando.ActualLRP{running("gone", 1, 0, "g", "cell-a", h.clock.Now())}}
	if ans, err := h.bbs.SyncCell(h.ctx, "cell-a", stray); err != nil || len(ans.Actuals) != 0 {
		t.Errorf("sync while awaiting cells: %+v, %v; want all kept", ans, err)
	}
}
