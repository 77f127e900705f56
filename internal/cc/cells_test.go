package cc

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/pandoplatform/pando"
)

// fakeCells is a runtime with two cells and one process on them.
type fakeCells struct{ pando.Runtime }

func (fakeCells) Cells(context.Context) ([]pando.CellState, error) {
	return []pando.CellState{
		{ID: "cell-b", State: pando.CellHealthy, Stacks: []string{"host"}, TotalMemoryMB: 2048, UsedMemoryMB: 512, TotalContainers: 250, UsedContainers: 2},
		{ID: "cell-a", State: pando.CellDraining, Stacks: []string{"host"}, Draining: true, TotalMemoryMB: 1024},
	}, nil
}

func (fakeCells) DesiredLRPs(context.Context) ([]pando.DesiredLRP, error) {
	return []pando.DesiredLRP{{ProcessGUID: "p1", AppGUID: "a1", AppName: "shop", ProcessType: "web", MemoryMB: 256}}, nil
}

func (fakeCells) ActualLRPs(_ context.Context, processGUID string) ([]pando.ActualLRP, error) {
	if processGUID != "" {
		return nil, fmt.Errorf("the cells view reads every process's instances at once, not %s's", processGUID)
	}
	return []pando.ActualLRP{
		{ProcessGUID: "p1", Index: 1, CellID: "cell-b", State: pando.ActualRunning},
		{ProcessGUID: "p1", Index: 0, CellID: "cell-b", State: pando.ActualClaimed},
		{ProcessGUID: "p1", Index: 2, State: pando.ActualUnclaimed},
		// An instance of a process no longer desired is left out.
		{ProcessGUID: "gone", Index: 0, CellID: "cell-a", State: pando.ActualRunning},
	}, nil
}

func TestCells_listsCapacityAndInstancesPerCell(t *testing.T) {
	e := ptNew(t, func(c *Config) { c.Runtime = fakeCells{Runtime: c.Runtime} })
	body := e.ok(e.do("GET", "/pando/v1/cells", "", nil), http.StatusOK)
	cells, _ := body["resources"].([]any)
	if len(cells) != 2 {
		t.Fatalf("cells = %v", body)
	}
	a, b := cells[0].(map[string]any), cells[1].(map[string]any)
	if a["id"] != "cell-a" || a["draining"] != true || a["state"] != "draining" || len(a["instances"].([]any)) != 0 {
		t.Errorf("cell-a = %v", a)
	}
	insts := b["instances"].([]any)
	if b["id"] != "cell-b" || b["state"] != "healthy" || len(insts) != 2 {
		t.Fatalf("cell-b = %v", b)
	}
	first := insts[0].(map[string]any)
	if first["app_name"] != "shop" || first["index"] != float64(0) || first["state"] != pando.ActualClaimed {
		t.Errorf("first instance = %v (want index 0 first, unplaced index 2 left out)", first)
	}
	if got := fmt.Sprint(b["memory_mb"]); got != "map[total:2048 used:512]" {
		t.Errorf("memory = %s", got)
	}
}
