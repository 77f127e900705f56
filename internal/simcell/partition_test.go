package simcell

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
)

// Issue 8: a cell cut off past its presence TTL keeps running its
// instances while the BBS places them on another cell; when it comes
// back and reports what it runs, the BBS stops each of them on it: the
// containers left are exactly the BBS's instances, one per index.
func TestSimulatedCells_cellBackFromAPartitionStopsWhatWasPlacedElsewhere(t *testing.T) {
	b, ctx := runBoard(t, bbs.Config{CellPresenceTTL: 300 * time.Millisecond})
	c := newTestCluster(t, ctx, Config{Dir: t.TempDir(), MemoryMB: 2048, Reporter: b})
	cells, err := c.Add(2, nil, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	cut, other := cells[0], cells[1]

	const n = 4
	if err := b.DesireLRP(ctx, c.LRP("web", n, 256)); err != nil {
		t.Fatal(err)
	}
	var before []pando.ActualLRP
	waitFor(t, "web running on both cells", 30*time.Second, func() (bool, string) {
		k, all := running(t, b, "web")
		before = all
		return k == n, fmt.Sprint(all)
	})
	var stale []string
	for _, a := range before {
		if a.CellID == cut.ID() {
			stale = append(stale, a.InstanceGUID)
		}
	}
	if len(stale) == 0 {
		t.Fatalf("nothing placed on %s: %v", cut.ID(), before)
	}

	// The cell's presence starts now and is never renewed: it is lost.
	if err := b.HeartbeatCell(cut.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running on the other cell only", 30*time.Second, func() (bool, string) {
		k, all := running(t, b, "web")
		for _, a := range all {
			if a.CellID != other.ID() {
				return false, fmt.Sprint(all)
			}
		}
		return k == n, fmt.Sprint(all)
	})
	kept := cut.Inventory().Actuals
	if len(kept) != len(stale) {
		t.Fatalf("the cut-off cell runs %d instances, want its %d (it never stops them on its own)", len(kept), len(stale))
	}

	// Back: it registers again and reports what it still runs.
	b.RegisterCell(cut)
	if err := b.CellSynced(ctx, cut.ID(), cut.Inventory()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stale instances stopped on the returning cell", 30*time.Second, func() (bool, string) {
		left := cut.Inventory().Actuals
		return len(left) == 0, fmt.Sprint(left)
	})
	_, after := running(t, b, "web")
	var want []string
	for _, a := range after {
		if a.State != pando.ActualRunning || a.CellID != other.ID() {
			t.Errorf("instance %+v, want RUNNING on %s", a, other.ID())
		}
		want = append(want, a.InstanceGUID)
	}
	// Each container is named after its instance (cell.containerID).
	waitFor(t, "one container per index", 30*time.Second, func() (bool, string) {
		ids := c.Backend().IDs()
		if len(ids) != len(want) {
			return false, fmt.Sprintf("containers %v, want those of %v", ids, want)
		}
		for _, g := range want {
			if !slices.ContainsFunc(ids, func(id string) bool { return strings.HasSuffix(id, g) }) {
				return false, fmt.Sprintf("containers %v, want those of %v", ids, want)
			}
		}
		return true, ""
	})
}
