package cc

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/pandoplatform/pando"
)

type fakeCells struct{}

func (fakeCells) CellStates(context.Context) []pando.CellState {
	return []pando.CellState{
		{ID: "cell-b", Stacks: []string{"host"}, TotalMemoryMB: 2048, UsedMemoryMB: 512, TotalContainers: 250, UsedContainers: 2},
		{ID: "cell-a", Stacks: []string{"host"}, Draining: true, TotalMemoryMB: 1024},
	}
}

func (fakeCells) DesiredLRPs() []pando.DesiredLRP {
	return []pando.DesiredLRP{{ProcessGUID: "p1", AppGUID: "a1", AppName: "shop", ProcessType: "web", MemoryMB: 256}}
}

func (fakeCells) ActualLRPs(string) []pando.ActualLRP {
	return []pando.ActualLRP{
		{ProcessGUID: "p1", Index: 1, CellID: "cell-b", State: pando.ActualRunning},
		{ProcessGUID: "p1", Index: 0, CellID: "cell-b", State: pando.ActualClaimed},
		{ProcessGUID: "p1", Index: 2, State: pando.ActualUnclaimed},
	}
}

func TestCells_listsCapacityAndInstancesPerCell(t *testing.T) {
	e := ptNew(t, func(c *Config) { c.Cells = fakeCells{} })
	body := e.ok(e.do("GET", "/pando/v1/cells", "", nil), http.StatusOK)
	cells, _ := body["resources"].([]any)
	if len(cells) != 2 {
		t.Fatalf("cells = %v", body)
	}
	a, b := cells[0].(map[string]any), cells[1].(map[string]any)
	if a["id"] != "cell-a" || a["draining"] != true || len(a["instances"].([]any)) != 0 {
		t.Errorf("cell-a = %v", a)
	}
	insts := b["instances"].([]any)
	if b["id"] != "cell-b" || len(insts) != 2 {
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
