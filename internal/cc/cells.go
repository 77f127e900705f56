package cc

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/pandoplatform/pando"
)

// getCells is GET /pando/v1/cells: each cell's state, capacity, usage and
// the instances it runs, as the runtime reports them.
func (a *API) getCells(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	desired, err := a.rt.DesiredLRPs(ctx)
	if err != nil {
		return fmt.Errorf("list desired LRPs: %w", err)
	}
	actuals, err := a.rt.ActualLRPs(ctx, "")
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	states, err := a.rt.Cells(ctx)
	if err != nil {
		return fmt.Errorf("list cells: %w", err)
	}
	type inst struct {
		AppGUID     string `json:"app_guid"`
		AppName     string `json:"app_name"`
		ProcessGUID string `json:"process_guid"`
		ProcessType string `json:"process_type"`
		Index       int    `json:"index"`
		State       string `json:"state"`
		MemoryMB    int    `json:"memory_in_mb"`
	}
	byGUID := make(map[string]pando.DesiredLRP, len(desired))
	for _, d := range desired {
		byGUID[d.ProcessGUID] = d
	}
	byCell := map[string][]inst{}
	for _, al := range actuals {
		d, ok := byGUID[al.ProcessGUID]
		// A crashed instance keeps the cell it crashed on but holds no
		// container there: it is listed with its process, not the cell.
		if al.CellID == "" || !ok || al.State == pando.ActualCrashed {
			continue
		}
		byCell[al.CellID] = append(byCell[al.CellID], inst{
			AppGUID: d.AppGUID, AppName: d.AppName, ProcessGUID: d.ProcessGUID, ProcessType: d.ProcessType,
			Index: al.Index, State: al.State, MemoryMB: d.MemoryMB,
		})
	}
	sort.Slice(states, func(i, j int) bool { return states[i].ID < states[j].ID })
	out := make([]any, 0, len(states))
	for _, c := range states {
		insts := byCell[c.ID]
		sort.Slice(insts, func(i, j int) bool {
			if insts[i].AppName != insts[j].AppName {
				return insts[i].AppName < insts[j].AppName
			}
			return insts[i].Index < insts[j].Index
		})
		if insts == nil {
			insts = []inst{}
		}
		stacks := c.Stacks
		if stacks == nil {
			stacks = []string{}
		}
		out = append(out, map[string]any{
			"id":        c.ID,
			"zone":      c.Zone,
			"state":     c.State,
			"stacks":    stacks,
			"draining":  c.Draining,
			"memory_mb": map[string]any{"total": c.TotalMemoryMB, "used": c.UsedMemoryMB},
			// used includes layer_cache, the cell's image layers.
			"disk_mb":    map[string]any{"total": c.TotalDiskMB, "used": c.UsedDiskMB, "layer_cache": c.LayerCacheMB},
			"containers": map[string]any{"total": c.TotalContainers, "used": c.UsedContainers, "starting": c.StartingContainers},
			"instances":  insts,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": out})
	return nil
}

// drainCell is POST /pando/v1/cells/{id}/drain: the runtime evacuates the
// cell (each instance is stopped once its replacement runs elsewhere) and
// places nothing new on it. It answers 202 with the cell's state at once;
// the instances leave the cell afterwards (GET /pando/v1/cells shows them).
func (a *API) drainCell(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := a.rt.DrainCell(ctx, id); err != nil {
		if pando.IsNotFound(err) {
			return pando.Errorf(pando.ENotFound, "cell %q not found: it is not registered", id)
		}
		return fmt.Errorf("drain cell %s: %w", id, err)
	}
	return a.writeCellState(w, r, id, http.StatusAccepted, pando.CellDraining)
}

// undrainCell is POST /pando/v1/cells/{id}/undrain: the runtime places work
// on the cell again and moves nothing more off it. It answers 200 with
// the cell's state: still draining when the cell drains itself (SIGTERM,
// SIGUSR1 on its machine).
func (a *API) undrainCell(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := a.rt.UndrainCell(ctx, id); err != nil {
		if pando.IsNotFound(err) {
			return pando.Errorf(pando.ENotFound, "cell %q not found: it is not registered", id)
		}
		return fmt.Errorf("undrain cell %s: %w", id, err)
	}
	return a.writeCellState(w, r, id, http.StatusOK, pando.CellHealthy)
}

// writeCellState answers with cell id's state as the runtime lists it, or
// state when it is not listed.
func (a *API) writeCellState(w http.ResponseWriter, r *http.Request, id string, status int, state string) error {
	states, err := a.rt.Cells(r.Context())
	if err != nil {
		return fmt.Errorf("list cells: %w", err)
	}
	out := map[string]any{"id": id, "state": state, "draining": state == pando.CellDraining}
	for _, c := range states {
		if c.ID == id {
			out["state"], out["draining"] = c.State, c.Draining
		}
	}
	writeJSON(w, status, out)
	return nil
}
