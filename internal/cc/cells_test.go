package cc

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

// fakeCells is a runtime with two cells and one process on them.
type fakeCells struct {
	pando.Runtime
	drained *[]string
}

func (f fakeCells) DrainCell(_ context.Context, id string) error {
	if id != "cell-a" && id != "cell-b" {
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", id)
	}
	*f.drained = append(*f.drained, id)
	return nil
}

// UndrainCell records as undrained:ID.
func (f fakeCells) UndrainCell(_ context.Context, id string) error {
	if id != "cell-a" && id != "cell-b" {
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", id)
	}
	*f.drained = append(*f.drained, "undrained:"+id)
	return nil
}

func (fakeCells) Cells(context.Context) ([]pando.CellState, error) {
	return []pando.CellState{
		{ID: "cell-b", State: pando.CellHealthy, Stacks: []string{"host"}, TotalMemoryMB: 2048, UsedMemoryMB: 512, TotalContainers: 250, UsedContainers: 2,
			TotalDiskMB: 8192, UsedDiskMB: 1536, LayerCacheMB: 1024},
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
		// A crashed instance holds no container on the cell it names.
		{ProcessGUID: "p1", Index: 3, CellID: "cell-b", State: pando.ActualCrashed},
		// An instance of a process no longer desired is left out.
		{ProcessGUID: "gone", Index: 0, CellID: "cell-a", State: pando.ActualRunning},
	}, nil
}

func TestCells_listsCapacityAndInstancesPerCell(t *testing.T) {
	e := ptNew(t, func(c *Config) { c.Runtime = fakeCells{Runtime: c.Runtime, drained: new([]string)} })
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
		t.Errorf("first instance = %v (want index 0 first, unplaced index 2 and crashed index 3 left out)", first)
	}
	if got := fmt.Sprint(b["memory_mb"]); got != "map[total:2048 used:512]" {
		t.Errorf("memory = %s", got)
	}
	if got := fmt.Sprint(b["disk_mb"]); got != "map[layer_cache:1024 total:8192 used:1536]" {
		t.Errorf("disk = %s, want the layer cache shown as part of used", got)
	}
}

func TestCells_drainAsksTheRuntime(t *testing.T) {
	var drained []string
	e := ptNew(t, func(c *Config) { c.Runtime = fakeCells{Runtime: c.Runtime, drained: &drained} })
	body := e.ok(e.do("POST", "/pando/v1/cells/cell-a/drain", "", nil), http.StatusAccepted)
	if body["id"] != "cell-a" || body["state"] != pando.CellDraining || body["draining"] != true {
		t.Errorf("drain answer = %v", body)
	}
	if len(drained) != 1 || drained[0] != "cell-a" {
		t.Errorf("runtime drained %v, want [cell-a]", drained)
	}
	if rec := e.do("POST", "/pando/v1/cells/nope/drain", "", nil); rec.Code != http.StatusNotFound ||
		!strings.Contains(rec.Body.String(), `cell \"nope\" not found`) {
		t.Errorf("unknown cell: %d %s", rec.Code, rec.Body)
	}
	if rec := e.doAs("bearer scopes:cloud_controller.read,cloud_controller.write", "POST", "/pando/v1/cells/cell-b/drain", ""); rec.Code != http.StatusForbidden {
		t.Errorf("non-admin: %d %s", rec.Code, rec.Body)
	}
	if len(drained) != 1 {
		t.Errorf("runtime drained %v after refused requests", drained)
	}
}

func TestCells_undrainAsksTheRuntimeAndAnswersTheCellsState(t *testing.T) {
	var calls []string
	e := ptNew(t, func(c *Config) { c.Runtime = fakeCells{Runtime: c.Runtime, drained: &calls} })
	body := e.ok(e.do("POST", "/pando/v1/cells/cell-b/undrain", "", nil), http.StatusOK)
	if body["id"] != "cell-b" || body["state"] != pando.CellHealthy || body["draining"] != false {
		t.Errorf("undrain answer = %v", body)
	}
	// cell-a still lists draining (it drains itself): the answer says so.
	body = e.ok(e.do("POST", "/pando/v1/cells/cell-a/undrain", "", nil), http.StatusOK)
	if body["state"] != pando.CellDraining || body["draining"] != true {
		t.Errorf("undrain of a cell still draining: answer %v", body)
	}
	if rec := e.do("POST", "/pando/v1/cells/nope/undrain", "", nil); rec.Code != http.StatusNotFound ||
		!strings.Contains(rec.Body.String(), `cell \"nope\" not found`) {
		t.Errorf("unknown cell: %d %s", rec.Code, rec.Body)
	}
	if rec := e.doAs("bearer scopes:cloud_controller.read,cloud_controller.write", "POST", "/pando/v1/cells/cell-b/undrain", ""); rec.Code != http.StatusForbidden {
		t.Errorf("non-admin: %d %s", rec.Code, rec.Body)
	}
	if want := "[undrained:cell-b undrained:cell-a]"; fmt.Sprint(calls) != want {
		t.Errorf("runtime calls %v, want %s", calls, want)
	}
}
