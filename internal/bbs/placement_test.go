package bbs

import (
	"testing"

	pando "github.com/pandoplatform/pando"
)

func TestPlacementFailure_placedWhenABiggerCellRegisters(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("small", 256))
	h.run()

	h.desire("web", 1, 1, 512)
	if a := h.actual("web", 0); a.PlacementError != "insufficient resources: memory" || a.CellID != "" {
		t.Fatalf("instance %+v, want UNCLAIMED for lack of memory", a)
	}

	big := newFakeCell("big", 4096)
	h.bbs.RegisterCell(big)
	// No convergence pass: the registration alone places it.
	waitFor(t, "the instance on the new cell", func() bool {
		a := h.actual("web", 0)
		return a.CellID == "big" && a.PlacementError == "" && len(big.startCalls()) == 1
	})
}

func TestPlacementFailure_placedWhenACellFreesCapacity(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 1024)
	h.bbs.RegisterCell(c)
	h.run()
	h.desire("big", 1, 2, 512)
	h.desire("late", 1, 1, 512)
	if a := h.actual("late", 0); a.PlacementError != "insufficient resources: memory" {
		t.Fatalf("instance %+v, want no room", a)
	}

	gone := h.actuals("big")
	if err := h.bbs.RemoveDesiredLRP(h.ctx, "big"); err != nil {
		t.Fatal(err)
	}
	// The cell tears the containers down and says so.
	for _, a := range gone {
		if err := h.bbs.ActualLRPRemoved(h.ctx, "big", a.InstanceGUID); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the waiting instance placed", func() bool {
		a := h.actual("late", 0)
		return a.CellID == "cell-a" && a.PlacementError == ""
	})
}

func TestPlacementFailure_noCellsThenACell(t *testing.T) {
	h := newHarness(t, Config{})
	h.run()
	h.desire("web", 1, 1, 256)
	if a := h.actual("web", 0); a.PlacementError != "no healthy cells" {
		t.Fatalf("instance %+v, want no healthy cells", a)
	}
	h.bbs.RegisterCell(newFakeCell("cell-a", 1024))
	waitFor(t, "the instance placed", func() bool { return h.actual("web", 0).CellID == "cell-a" })
}

func TestPlacementFailure_missingStackNamed(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 1024))
	if err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", Revision: 1, Instances: 1,
		MemoryMB: 256, Stack: "windows"}); err != nil {
		t.Fatal(err)
	}
	if a := h.actual("web", 0); a.PlacementError != `found no compatible cell: no cell has stack "windows"` {
		t.Errorf("placement error %q", a.PlacementError)
	}
}

// Reports that free nothing do not re-auction work that found no room: a
// full platform is not auctioned on every report.
func TestPlacementFailure_retriedOnlyWhenCapacityIsFreed(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 512)
	h.bbs.RegisterCell(c)
	h.bbs.dispatch(h.ctx) // consumes the registration
	h.desire("web", 1, 1, 512)
	h.desire("late", 1, 1, 512)
	auctions := c.stateCalls()

	h.report(h.actual("web", 0), pando.ActualRunning)
	h.bbs.dispatch(h.ctx)
	if n := c.stateCalls(); n != auctions {
		t.Fatalf("a RUNNING report re-auctioned (%d state reads, want %d)", n, auctions)
	}

	web := h.actual("web", 0)
	if err := h.bbs.RemoveDesiredLRP(h.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.ActualLRPRemoved(h.ctx, "web", web.InstanceGUID); err != nil {
		t.Fatal(err)
	}
	h.bbs.dispatch(h.ctx)
	if a := h.actual("late", 0); a.CellID != "cell-a" || c.stateCalls() == auctions {
		t.Errorf("after the cell freed room: %+v", a)
	}
}

// A docker LRP's instances go to the cells that hold or are pulling its
// image's layers (their state names its digest), for the first instance
// and for a scale-up, as long as the spread allows.
func TestPlacement_dockerInstancesFollowTheImageLayers(t *testing.T) {
	const digest = "sha256:5d2b8f1e2a4d6c8b0a9e7f5d3c1b2a4e6f8d0c2b4a6e8f0d2c4b6a8e0f2d4c6b"
	h := newHarness(t, Config{})
	a, b, c := newFakeCell("cell-a", 4096), newFakeCell("cell-b", 4096), newFakeCell("cell-c", 4096)
	b.capacity.Images = []string{"sha256:other", digest}
	c.capacity.Images = []string{digest}
	for _, fc := range []*fakeCell{a, b, c} {
		h.bbs.RegisterCell(fc)
	}
	h.run()
	if err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", Revision: 1, Instances: 1,
		MemoryMB: 256, DiskMB: 256, Image: "registry.example/web@" + digest}); err != nil {
		t.Fatal(err)
	}
	if got := h.actual("web", 0).CellID; got != "cell-b" {
		t.Fatalf("instance 0 on %q, want cell-b (first by id of the cells with the layers)", got)
	}
	three := 3
	if err := h.bbs.UpdateDesiredLRP(h.ctx, "web", pando.DesiredLRPUpdate{Instances: &three}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "instances 1 and 2 placed", func() bool {
		return h.actual("web", 1).CellID != "" && h.actual("web", 2).CellID != ""
	})
	// Instance 1 joins the other cell with the layers; instance 2 goes
	// to the one cell left (the spread wins over the layers).
	if got1, got2 := h.actual("web", 1).CellID, h.actual("web", 2).CellID; got1 != "cell-c" || got2 != "cell-a" {
		t.Errorf("instances 1 and 2 on %q and %q, want cell-c and cell-a", got1, got2)
	}
}
