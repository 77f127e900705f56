package stackprobe

import (
	"slices"

	"github.com/pandoplatform/pando"
)

// Reported is what the cache knows of its stacks' runtimes without
// probing, as a cell reports them (pando.CellState.Runtimes): the stacks
// probed so far, an empty list for one where none were found; nil when
// none is probed yet.
func (c *Cache) Reported() map[string][]pando.StackRuntime {
	var out map[string][]pando.StackRuntime
	for name := range c.Stacks {
		rts, ok := c.Known(name)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string][]pando.StackRuntime{}
		}
		list := make([]pando.StackRuntime, 0, len(rts))
		for _, r := range rts {
			list = append(list, pando.StackRuntime{Name: r.Name, Version: r.Version})
		}
		out[name] = list
	}
	return out
}

// maxReportedStacks bounds the stacks of a cell's report that are kept.
const maxReportedStacks = 64

// CleanReport keeps of another machine's report (a joined cell's state)
// only what this package would report: the stacks the cell offers
// (stacks), at most maxReportedStacks of them, each with known runtime
// names, once each, in their usual order, with dotted numeric versions.
// The rest is dropped.
func CleanReport(stacks []string, rep map[string][]pando.StackRuntime) map[string][]pando.StackRuntime {
	if rep == nil {
		return nil
	}
	out := map[string][]pando.StackRuntime{}
	for name, rts := range rep {
		if len(out) == maxReportedStacks || !slices.Contains(stacks, name) {
			continue
		}
		found := map[string]string{}
		for _, r := range rts {
			if slices.Contains(order, r.Name) && found[r.Name] == "" && len(r.Version) <= 64 && r.Version != "" && validVersion.MatchString(r.Version) {
				found[r.Name] = r.Version
			}
		}
		list := []pando.StackRuntime{}
		for _, r := range sorted(found) {
			list = append(list, pando.StackRuntime{Name: r.Name, Version: r.Version})
		}
		out[name] = list
	}
	return out
}
