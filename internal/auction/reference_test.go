package auction

// The straightforward auction this package had before it was made fast: a
// map of instances per process on every cell, zones rebuilt and every cell
// scored per pick. TestPlaceLRPs_matchesReference checks that the fast
// auction makes exactly its plans.

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	pando "github.com/pandoplatform/pando"
)

// refCell is the auction's working copy of one cell's usage.
type refCell struct {
	id, refZone string
	stacks      []string
	totalMem    int
	totalDisk   int
	totalCtrs   int
	usedMem     int
	usedDisk    int
	usedCtrs    int
	starting    int
	perProcess  map[string]int
	images      map[string]bool
}

func refNewCells(states []pando.CellState) []*refCell {
	cells := make([]*refCell, 0, len(states))
	for _, s := range states {
		if s.Draining {
			continue
		}
		c := &refCell{
			id: s.ID, refZone: s.Zone, stacks: s.Stacks,
			totalMem: s.TotalMemoryMB, totalDisk: s.TotalDiskMB, totalCtrs: s.TotalContainers,
			usedMem: s.UsedMemoryMB, usedDisk: s.UsedDiskMB, usedCtrs: s.UsedContainers,
			starting:   s.StartingContainers,
			perProcess: make(map[string]int, len(s.InstancesPerProcess)),
			images:     map[string]bool{},
		}
		for k, d := range s.Images {
			if k < pando.MaxCellImages {
				c.images[d] = true
			}
		}
		for k, v := range s.InstancesPerProcess {
			c.perProcess[k] = v
		}
		cells = append(cells, c)
	}
	// A fixed order makes ties (and so plans) deterministic.
	slices.SortFunc(cells, func(a, b *refCell) int { return cmp.Compare(a.id, b.id) })
	return cells
}

func (c *refCell) hasStack(stack string) bool {
	return stack == "" || slices.Contains(c.stacks, stack)
}

// lacks lists the resources the cell is short of for the work.
func (c *refCell) lacks(memMB, diskMB int) []string {
	var p []string
	if c.usedCtrs+1 > c.totalCtrs {
		p = append(p, "containers")
	}
	if c.usedDisk+diskMB > c.totalDisk {
		p = append(p, "disk")
	}
	if c.usedMem+memMB > c.totalMem {
		p = append(p, "memory")
	}
	return p
}

func refFraction(used, total int) float64 {
	if total <= 0 {
		return 0
	}
	return float64(used) / float64(total)
}

// score is the cell's cost of taking the work, lower wins: the mean used
// refFraction of memory, disk and containers once it holds the work, plus a
// penalty per container still starting and a large one per instance of the
// same process already there (so instances spread across cells), less a
// little when the cell has the work's image layers.
func (c *refCell) score(memMB, diskMB int, processGUID, image string) float64 {
	s := (refFraction(c.usedMem+memMB, c.totalMem) +
		refFraction(c.usedDisk+diskMB, c.totalDisk) +
		refFraction(c.usedCtrs+1, c.totalCtrs)) / 3
	s += startingContainerWeight * float64(c.starting)
	if processGUID != "" {
		s += sameProcessWeight * float64(c.perProcess[processGUID])
	}
	if image != "" && c.images[image] {
		s -= cachedImageWeight
	}
	return s
}

func (c *refCell) reserve(memMB, diskMB int, processGUID string) {
	c.usedMem += memMB
	c.usedDisk += diskMB
	c.usedCtrs++
	c.starting++
	if processGUID != "" {
		c.perProcess[processGUID]++
	}
}

type refZone struct {
	name      string
	instances int
	cells     []*refCell
}

// refPick chooses the refCell for one piece of work, or says why there is none.
// Zones are tried in order of fewest instances of the process (zones tied on
// that count compete together), so instances spread across zones first; the
// best-scoring refCell of the first refZone group with room wins.
func refPick(cells []*refCell, processGUID, stack string, memMB, diskMB int, image string) (*refCell, string) {
	byZone := map[string]*refZone{}
	var zones []*refZone
	for _, c := range cells {
		if !c.hasStack(stack) {
			continue
		}
		z := byZone[c.refZone]
		if z == nil {
			z = &refZone{name: c.refZone}
			byZone[c.refZone] = z
			zones = append(zones, z)
		}
		z.cells = append(z.cells, c)
		if processGUID != "" {
			z.instances += c.perProcess[processGUID]
		}
	}
	if len(zones) == 0 {
		return nil, ErrNoCompatibleCell
	}
	slices.SortFunc(zones, func(a, b *refZone) int {
		return cmp.Or(cmp.Compare(a.instances, b.instances), cmp.Compare(a.name, b.name))
	})

	problems := map[string]bool{}
	var best *refCell
	var bestScore float64
	for i, z := range zones {
		for _, c := range z.cells {
			if p := c.lacks(memMB, diskMB); len(p) > 0 {
				for _, r := range p {
					problems[r] = true
				}
				continue
			}
			if s := c.score(memMB, diskMB, processGUID, image); best == nil || s < bestScore {
				best, bestScore = c, s
			}
		}
		if i+1 < len(zones) && zones[i+1].instances == z.instances {
			continue
		}
		if best != nil {
			return best, ""
		}
	}
	return nil, refInsufficient(problems)
}

func refInsufficient(problems map[string]bool) string {
	names := make([]string, 0, len(problems))
	for p := range problems {
		names = append(names, p)
	}
	sort.Strings(names)
	return insufficientPrefix + strings.Join(names, ", ")
}

// refPlacementOrder returns the request indices in the order they are placed:
// instance 0 of every process first (so each app gets one instance before
// any gets a second when capacity is short), then larger memory first (big
// pieces are the hardest to fit), otherwise in request order.
func refPlacementOrder(n int, index func(int) int, mem func(int) int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		za, zb := index(a) != 0, index(b) != 0
		if za != zb {
			if !za {
				return -1
			}
			return 1
		}
		return cmp.Compare(mem(b), mem(a))
	})
	return order
}

// refPlaceLRPs places a batch of LRP instances on cells. Results are in request
// order. Draining cells are never chosen.
func refPlaceLRPs(cells []pando.CellState, reqs []LRPRequest) []LRPResult {
	cs := refNewCells(cells)
	results := make([]LRPResult, len(reqs))
	order := refPlacementOrder(len(reqs),
		func(i int) int { return reqs[i].Index },
		func(i int) int { return reqs[i].MemoryMB })
	for _, i := range order {
		r := reqs[i]
		results[i] = LRPResult{LRPRequest: r}
		c, why := refPick(cs, r.ProcessGUID, r.Stack, r.MemoryMB, r.DiskMB, r.ImageDigest)
		if c == nil {
			results[i].PlacementError = why
			continue
		}
		c.reserve(r.MemoryMB, r.DiskMB, r.ProcessGUID)
		results[i].CellID = c.id
	}
	return results
}

// refPlaceTasks places a batch of tasks on cells. Results are in request order.
// Draining cells are never chosen.
func refPlaceTasks(cells []pando.CellState, reqs []TaskRequest) []TaskResult {
	cs := refNewCells(cells)
	results := make([]TaskResult, len(reqs))
	order := refPlacementOrder(len(reqs),
		func(int) int { return 0 },
		func(i int) int { return reqs[i].MemoryMB })
	for _, i := range order {
		r := reqs[i]
		results[i] = TaskResult{TaskRequest: r}
		c, why := refPick(cs, "", r.Stack, r.MemoryMB, r.DiskMB, "")
		if c == nil {
			results[i].PlacementError = why
			continue
		}
		c.reserve(r.MemoryMB, r.DiskMB, "")
		results[i].CellID = c.id
	}
	return results
}

// randomWorkload makes cells of mixed sizes, zones, stacks and usage (some
// draining, some running instances already) and a batch that overfills
// them, so plans hit every rule: spreading, zones, ties, shortages.
func randomWorkload(r *rand.Rand) ([]pando.CellState, []LRPRequest) {
	stackNames := []string{"cflinuxfs4", "bookworm"}
	procs := 1 + r.IntN(12)
	cells := make([]pando.CellState, r.IntN(40))
	for i := range cells {
		c := pando.CellState{
			ID:            fmt.Sprintf("c%02d", r.IntN(100)) + fmt.Sprint(i),
			Zone:          []string{"", "z1", "z2", "z3"}[r.IntN(4)],
			Stacks:        stackNames[:1+r.IntN(2)],
			TotalMemoryMB: 1024 * (1 + r.IntN(8)), TotalDiskMB: 2048 * (1 + r.IntN(8)),
			TotalContainers:     2 + r.IntN(20),
			StartingContainers:  r.IntN(3),
			Draining:            r.IntN(10) == 0,
			InstancesPerProcess: map[string]int{},
		}
		if r.IntN(3) == 0 {
			c.Stacks = stackNames[1:]
		}
		for range r.IntN(3) {
			c.Images = append(c.Images, fmt.Sprintf("sha256:i%d", r.IntN(4)))
		}
		for range r.IntN(4) {
			c.InstancesPerProcess[fmt.Sprintf("p%d", r.IntN(procs))]++
			c.UsedContainers++
			c.UsedMemoryMB += 256
			c.UsedDiskMB += 512
		}
		cells[i] = c
	}
	var reqs []LRPRequest
	for p := range procs {
		mem := 128 * (1 + r.IntN(16))
		stack := []string{"", "cflinuxfs4", "bookworm", "windows"}[r.IntN(4)]
		image := []string{"", "sha256:i0", "sha256:i1", "sha256:i2", "sha256:i3"}[r.IntN(5)]
		for i := range 1 + r.IntN(15) {
			reqs = append(reqs, LRPRequest{ProcessGUID: fmt.Sprintf("p%d", p), Index: i,
				MemoryMB: mem, DiskMB: 256 * (1 + r.IntN(4)), Stack: stack, ImageDigest: image})
		}
	}
	r.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return cells, reqs
}

func TestPlaceLRPs_matchesReference(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 8))
		cells, reqs := randomWorkload(r)
		got, want := PlaceLRPs(cells, reqs), refPlaceLRPs(cells, reqs)
		for i := range got {
			g, w := got[i], want[i]
			sameErr := g.PlacementError == w.PlacementError ||
				(w.PlacementError == ErrNoCompatibleCell &&
					(strings.HasPrefix(g.PlacementError, ErrNoCompatibleCell+": no cell has stack") ||
						strings.HasPrefix(g.PlacementError, ErrNoHealthyCells)))
			if g.CellID != w.CellID || !sameErr {
				t.Fatalf("seed %d, request %d (%+v):\n got  %q %q\n want %q %q",
					seed, i, reqs[i], g.CellID, g.PlacementError, w.CellID, w.PlacementError)
			}
		}
	}
}

func TestPlaceTasks_matchesReference(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 9))
		cells, lrps := randomWorkload(r)
		reqs := make([]TaskRequest, len(lrps))
		for i, l := range lrps {
			reqs[i] = TaskRequest{TaskGUID: fmt.Sprint(i), MemoryMB: l.MemoryMB, DiskMB: l.DiskMB, Stack: l.Stack}
		}
		got, want := PlaceTasks(cells, reqs), refPlaceTasks(cells, reqs)
		for i := range got {
			if got[i].CellID != want[i].CellID || (got[i].PlacementError == "") != (want[i].PlacementError == "") {
				t.Fatalf("seed %d, task %d: got %q %q, want %q %q", seed, i,
					got[i].CellID, got[i].PlacementError, want[i].CellID, want[i].PlacementError)
			}
		}
	}
}
