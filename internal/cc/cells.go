package cc

import (
	"context"
	"net/http"
	"sort"

	"github.com/pandoplatform/pando"
)

// CellLister is what the API reads to show the cells (`pando cells`).
type CellLister interface {
	CellStates(ctx context.Context) []pando.CellState
	DesiredLRPs() []pando.DesiredLRP
	ActualLRPs(processGUID string) []pando.ActualLRP
}

// getCells is GET /pando/v1/cells: each cell's capacity, usage and the
// instances it runs.
func (a *API) getCells(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Cells == nil {
		writeJSON(w, http.StatusOK, map[string]any{"resources": []any{}})
		return nil
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
	byCell := map[string][]inst{}
	for _, d := range a.cfg.Cells.DesiredLRPs() {
		for _, al := range a.cfg.Cells.ActualLRPs(d.ProcessGUID) {
			if al.CellID == "" {
				continue
			}
			byCell[al.CellID] = append(byCell[al.CellID], inst{
				AppGUID: d.AppGUID, AppName: d.AppName, ProcessGUID: d.ProcessGUID, ProcessType: d.ProcessType,
				Index: al.Index, State: al.State, MemoryMB: d.MemoryMB,
			})
		}
	}
	states := a.cfg.Cells.CellStates(r.Context())
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
			"id":         c.ID,
			"zone":       c.Zone,
			"stacks":     stacks,
			"draining":   c.Draining,
			"memory_mb":  map[string]any{"total": c.TotalMemoryMB, "used": c.UsedMemoryMB},
			"disk_mb":    map[string]any{"total": c.TotalDiskMB, "used": c.UsedDiskMB},
			"containers": map[string]any{"total": c.TotalContainers, "used": c.UsedContainers, "starting": c.StartingContainers},
			"instances":  insts,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": out})
	return nil
}
