package cc

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

// reportingCells is the runtime with cells whose states report their
// stacks' runtimes.
type reportingCells struct {
	pando.Runtime
	states []pando.CellState
}

func (r reportingCells) Cells(context.Context) ([]pando.CellState, error) { return r.states, nil }

// stackRuntimesJSON is a stack's "runtimes" and "cell_runtimes" as JSON.
func stackRuntimesJSON(t *testing.T, stack map[string]any) (runtimes, perCell string) {
	t.Helper()
	a, err := json.Marshal(stack["runtimes"])
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(stack["cell_runtimes"])
	if err != nil {
		t.Fatal(err)
	}
	return string(a), string(b)
}

// Without a local cell (pando api), a stack's runtimes are what its
// cells report: each cell's in cell_runtimes, and in runtimes those
// every reporting cell offers alike; null while none reports them (a
// cell that has not probed yet, an older cell, a lost one).
func TestStacks_withoutALocalCellShowWhatTheCellsReport(t *testing.T) {
	node18, node20 := pando.StackRuntime{Name: "node", Version: "18.19.0"}, pando.StackRuntime{Name: "node", Version: "20.1.2"}
	py := pando.StackRuntime{Name: "python3", Version: "3.11.2"}
	for _, c := range []struct {
		name              string
		states            []pando.CellState
		runtimes, perCell string
	}{
		{"no cell", nil, `null`, `[]`},
		{"an older cell, a lost one", []pando.CellState{{ID: "old", Stacks: []string{"host"}}, {ID: "lost", State: pando.CellLost}}, `null`, `[]`},
		{"one cell", []pando.CellState{
			{ID: "cell-a", Runtimes: map[string][]pando.StackRuntime{"host": {node18, py}}},
			{ID: "old", Stacks: []string{"host"}},
		}, `[{"name":"node","version":"18.19.0"},{"name":"python3","version":"3.11.2"}]`,
			`[{"cell_id":"cell-a","runtimes":[{"name":"node","version":"18.19.0"},{"name":"python3","version":"3.11.2"}]}]`},
		{"cells that differ", []pando.CellState{
			{ID: "cell-b", Runtimes: map[string][]pando.StackRuntime{"host": {node20, py}}},
			{ID: "cell-a", Runtimes: map[string][]pando.StackRuntime{"host": {node18, py}, "bookworm": {}}},
		}, `[{"name":"python3","version":"3.11.2"}]`,
			`[{"cell_id":"cell-a","runtimes":[{"name":"node","version":"18.19.0"},{"name":"python3","version":"3.11.2"}]},` +
				`{"cell_id":"cell-b","runtimes":[{"name":"node","version":"20.1.2"},{"name":"python3","version":"3.11.2"}]}]`},
		{"probed, none found", []pando.CellState{{ID: "cell-a", Runtimes: map[string][]pando.StackRuntime{"host": nil}}},
			`[]`, `[{"cell_id":"cell-a","runtimes":[]}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := ptNew(t, func(cfg *Config) { cfg.Runtime = reportingCells{Runtime: cfg.Runtime, states: c.states} })
			stacks := ptResources(e.ok(e.do("GET", "/v3/stacks", "", nil), http.StatusOK))
			if len(stacks) != 1 {
				t.Fatalf("stacks = %v", stacks)
			}
			for _, st := range []map[string]any{stacks[0], e.ok(e.do("GET", "/v3/stacks/"+stacks[0]["guid"].(string), "", nil), http.StatusOK)} {
				if rts, perCell := stackRuntimesJSON(t, st); rts != c.runtimes || perCell != c.perCell {
					t.Errorf("runtimes %s\nwant     %s\ncell_runtimes %s\nwant          %s", rts, c.runtimes, perCell, c.perCell)
				}
			}
		})
	}
}

// With a local cell (pando server), runtimes stay the server's own;
// cell_runtimes adds what each cell reports.
func TestStacks_withALocalCellKeepItsRuntimes(t *testing.T) {
	e := ptNew(t, func(cfg *Config) {
		cfg.StackRuntimes = &stackprobe.Cache{Stacks: map[string]string{"host": t.TempDir()}} // a bare rootfs: none
		cfg.Runtime = reportingCells{Runtime: cfg.Runtime, states: []pando.CellState{
			{ID: "cell-0", Runtimes: map[string][]pando.StackRuntime{"host": {}}},
			{ID: "cell-a", Runtimes: map[string][]pando.StackRuntime{"host": {{Name: "go", Version: "1.22.5"}}}},
		}}
	})
	stacks := ptResources(e.ok(e.do("GET", "/v3/stacks", "", nil), http.StatusOK))
	rts, perCell := stackRuntimesJSON(t, stacks[0])
	if want := `[{"cell_id":"cell-0","runtimes":[]},{"cell_id":"cell-a","runtimes":[{"name":"go","version":"1.22.5"}]}]`; rts != `[]` || perCell != want {
		t.Errorf("runtimes %s, want []\ncell_runtimes %s\nwant          %s", rts, perCell, want)
	}
}
