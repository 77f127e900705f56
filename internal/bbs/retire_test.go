package bbs

import (
	"slices"
	"testing"

	pando "github.com/pandoplatform/pando"
)

func TestRestartInstance_replacesOnlyThatIndex(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 2, 256)
	before := h.bbs.ActualLRPs("web")
	for _, a := range before {
		h.report(a, pando.ActualRunning)
	}
	crashed := before[1]

	if err := h.bbs.RestartInstance(h.ctx, "web", 1); err != nil {
		t.Fatalf("RestartInstance: %v", err)
	}
	if stops := c.stopCalls(); !slices.Contains(stops, crashed.InstanceGUID) || slices.Contains(stops, before[0].InstanceGUID) {
		t.Errorf("stops %v: want instance 1 (%s) only", stops, crashed.InstanceGUID)
	}
	after := h.bbs.ActualLRPs("web")
	if len(after) != 2 || after[0].InstanceGUID != before[0].InstanceGUID || after[0].State != pando.ActualRunning {
		t.Fatalf("instance 0 changed: %v", describe(after))
	}
	fresh := after[1]
	if fresh.InstanceGUID == crashed.InstanceGUID || fresh.State != pando.ActualUnclaimed || fresh.CellID != "cell-a" {
		t.Errorf("instance 1 = %+v, want a fresh placed instance", fresh)
	}
	starts := c.startCalls()
	if last := starts[len(starts)-1]; last.Index != 1 || last.InstanceGUID != fresh.InstanceGUID {
		t.Errorf("last start %+v, want index 1 as %s", last, fresh.InstanceGUID)
	}
}

func TestRestartInstance_unknownIndexIsNotFound(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	h.desire("web", 1, 1, 256)
	for _, tc := range []struct {
		guid  string
		index int
	}{{"web", 1}, {"web", -1}, {"nope", 0}} {
		if err := h.bbs.RestartInstance(h.ctx, tc.guid, tc.index); !pando.IsNotFound(err) {
			t.Errorf("RestartInstance(%s, %d) = %v, want not found", tc.guid, tc.index, err)
		}
	}
}
