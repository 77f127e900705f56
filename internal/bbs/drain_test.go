package bbs

import (
	"slices"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func TestDrainCell_keepsInstancesUntilReplacementsRun(t *testing.T) {
	h := newHarness(t, Config{})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.desire("web", 1, 1, 256)
	orig := h.actual("web", 0)
	h.report(orig, pando.ActualRunning)
	b := newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(b)
	h.run()

	if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	starts := b.startCalls()
	if len(starts) != 1 || starts[0].Index != 0 {
		t.Fatalf("replacement starts on cell-b: %+v", starts)
	}
	// The original still serves while the replacement starts.
	if got := h.actual("web", 0); got.InstanceGUID != orig.InstanceGUID || got.State != pando.ActualRunning {
		t.Fatalf("visible instance %+v, want the running original", got)
	}
	if len(a.stopCalls()) != 0 {
		t.Fatal("original stopped before its replacement runs")
	}

	repl := pando.ActualLRP{ProcessGUID: "web", Index: 0, InstanceGUID: starts[0].InstanceGUID, CellID: "cell-b"}
	h.report(repl, pando.ActualRunning)

	waitFor(t, "original stopped", func() bool { return slices.Contains(a.stopCalls(), orig.InstanceGUID) })
	if got := h.actuals("web"); len(got) != 1 || got[0].InstanceGUID != repl.InstanceGUID {
		t.Errorf("after evacuation: %v", describe(got))
	}

	// New work avoids the draining cell.
	h.desire("api", 1, 1, 256)
	if got := h.actual("api", 0); got.CellID != "cell-b" {
		t.Errorf("placed on %s", got.CellID)
	}
}

func TestDrainCell_deadlineStopsOriginals(t *testing.T) {
	h := newHarness(t, Config{})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.desire("web", 1, 1, 256)
	orig := h.actual("web", 0)
	h.report(orig, pando.ActualRunning)

	// No other cell: the replacement cannot be placed.
	if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	if got := h.actual("web", 0); got.InstanceGUID != orig.InstanceGUID {
		t.Fatalf("visible %+v", got)
	}

	h.clock.Advance(DefaultEvacuationTimeout + time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	if !slices.Contains(a.stopCalls(), orig.InstanceGUID) {
		t.Errorf("original not stopped after the deadline: %v", a.stopCalls())
	}
	got := h.actual("web", 0)
	if got.InstanceGUID == orig.InstanceGUID || got.PlacementError != "found no compatible cell" {
		t.Errorf("replacement %+v", got)
	}
}

func TestDrainCell_unknownCell(t *testing.T) {
	h := newHarness(t, Config{})
	if err := h.bbs.DrainCell(h.ctx, "nope"); !pando.IsNotFound(err) {
		t.Errorf("got %v", err)
	}
}
