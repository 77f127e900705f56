package cc

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

// StackRuntimes tells which language runtimes a stack offers.
type StackRuntimes interface {
	Runtimes(ctx context.Context, stack string) ([]stackprobe.Runtime, error)
}

// cellRuntimes is one cell's report of a stack's runtimes.
type cellRuntimes struct {
	CellID   string               `json:"cell_id"`
	Runtimes []pando.StackRuntime `json:"runtimes"`
}

// cellStates are the cells' states, for the runtimes they report; none
// when the runtime cannot tell (the stacks are listed all the same).
func (a *API) cellStates(ctx context.Context) []pando.CellState {
	states, err := a.rt.Cells(ctx)
	if err != nil {
		a.log.Warn("stacks: list cells for their runtimes", "err", err)
		return nil
	}
	slices.SortFunc(states, func(x, y pando.CellState) int { return strings.Compare(x.ID, y.ID) })
	return states
}

// presentStack is CF's stack resource plus Pando's "runtimes" and
// "cell_runtimes" (the cf CLI ignores both). "cell_runtimes" lists, per
// cell, the language runtimes and versions the stack offers on the cell's
// machine, for the cells that report them (older cells do not).
// "runtimes" are the server's own (its local cell's), or without a local
// cell (pando api) those every reporting cell offers in the same
// version: null when no cell reports them.
func (a *API) presentStack(ctx context.Context, s pando.Stack, cells []pando.CellState) map[string]any {
	perCell := []cellRuntimes{}
	for _, c := range cells {
		if rts, ok := c.Runtimes[s.Name]; ok {
			if rts == nil {
				rts = []pando.StackRuntime{}
			}
			perCell = append(perCell, cellRuntimes{CellID: c.ID, Runtimes: rts})
		}
	}
	var runtimes any
	switch {
	case a.cfg.StackRuntimes != nil:
		rts, err := a.cfg.StackRuntimes.Runtimes(ctx, s.Name)
		if err != nil {
			a.log.Warn("probe stack runtimes", "stack", s.Name, "err", err)
		}
		if rts == nil {
			rts = []stackprobe.Runtime{}
		}
		runtimes = rts
	case len(perCell) > 0:
		runtimes = commonRuntimes(perCell)
	default:
		runtimes = nil
	}
	return map[string]any{
		"runtimes":           runtimes,
		"cell_runtimes":      perCell,
		"guid":               s.GUID,
		"name":               s.Name,
		"description":        s.Description,
		"default":            s.Name == a.cfg.DefaultStack,
		"build_rootfs_image": s.Name,
		"run_rootfs_image":   s.Name,
		"created_at":         ts(s.CreatedAt),
		"updated_at":         ts(s.UpdatedAt),
		"metadata":           metadata(),
		"links":              map[string]any{"self": link(a.url("/v3/stacks/%s", s.GUID))},
	}
}

// commonRuntimes are the runtimes every cell of cells reports, in the
// same version, in the first cell's order.
func commonRuntimes(cells []cellRuntimes) []pando.StackRuntime {
	out := []pando.StackRuntime{}
	for _, r := range cells[0].Runtimes {
		if !slices.ContainsFunc(cells[1:], func(c cellRuntimes) bool { return !slices.Contains(c.Runtimes, r) }) {
			out = append(out, r)
		}
	}
	return out
}

func (a *API) listStacks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	stacks, err := a.store.ListStacks(r.Context(), splitList(q, "names"))
	if err != nil {
		return err
	}
	if d := q.Get("default"); d != "" {
		want := d == "true"
		stacks = slices.DeleteFunc(stacks, func(s pando.Stack) bool { return (s.Name == a.cfg.DefaultStack) != want })
	}
	cells := a.cellStates(r.Context())
	paginate(a, w, r, stacks, func(s pando.Stack) sortable {
		return sortable{name: s.Name, createdAt: s.CreatedAt, updatedAt: s.UpdatedAt}
	}, func(s pando.Stack) any { return a.presentStack(r.Context(), s, cells) })
	return nil
}

func (a *API) getStack(w http.ResponseWriter, r *http.Request) error {
	stacks, err := a.store.ListStacks(r.Context(), nil)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(stacks, func(s pando.Stack) bool { return s.GUID == r.PathValue("guid") })
	if i < 0 {
		return notFound("Stack")
	}
	writeJSON(w, http.StatusOK, a.presentStack(r.Context(), stacks[i], a.cellStates(r.Context())))
	return nil
}
