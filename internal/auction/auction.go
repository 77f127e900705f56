// Package auction is Pando's auctioneer: it decides which cell runs each LRP
// instance and task. It is pure (no I/O): given the cells' reported capacity
// and a batch of work it returns a placement plan, scoring cells the way
// Diego's auctioneer does and updating a local copy of the cells' usage as it
// places, so one batch spreads instead of piling onto the emptiest cell.
package auction

import (
	"cmp"
	"slices"
	"sort"
	"strings"

	pando "github.com/pandoplatform/pando"
)

// Placement errors, in Diego's words: the cf CLI shows them to the user.
const (
	// ErrNoCompatibleCell means no (non-draining) cell offers the stack.
	ErrNoCompatibleCell = "found no compatible cell"
	// insufficientPrefix starts the error for work that fits on no cell;
	// the problems (containers, disk, memory) follow, comma separated.
	insufficientPrefix = "insufficient resources: "
)

// Score weights (Diego's defaults).
const (
	startingContainerWeight = 0.25
	sameProcessWeight       = 1000
)

// LRPRequest asks for one LRP instance to be placed.
type LRPRequest struct {
	ProcessGUID string
	Index       int
	MemoryMB    int
	DiskMB      int
	// Stack the instance needs; empty matches every cell (e.g. docker
	// images, which bring their own root filesystem).
	Stack string
}

// LRPResult is where one LRPRequest goes: CellID, or PlacementError when it
// fits nowhere.
type LRPResult struct {
	LRPRequest
	CellID         string
	PlacementError string
}

// TaskRequest asks for one task to be placed.
type TaskRequest struct {
	TaskGUID string
	MemoryMB int
	DiskMB   int
	Stack    string
}

// TaskResult is where one TaskRequest goes.
type TaskResult struct {
	TaskRequest
	CellID         string
	PlacementError string
}

// cell is the auction's working copy of one cell's usage.
type cell struct {
	id, zone   string
	stacks     []string
	totalMem   int
	totalDisk  int
	totalCtrs  int
	usedMem    int
	usedDisk   int
	usedCtrs   int
	starting   int
	perProcess map[string]int
}

func newCells(states []pando.CellState) []*cell {
	cells := make([]*cell, 0, len(states))
	for _, s := range states {
		if s.Draining {
			continue
		}
		c := &cell{
			id: s.ID, zone: s.Zone, stacks: s.Stacks,
			totalMem: s.TotalMemoryMB, totalDisk: s.TotalDiskMB, totalCtrs: s.TotalContainers,
			usedMem: s.UsedMemoryMB, usedDisk: s.UsedDiskMB, usedCtrs: s.UsedContainers,
			starting:   s.StartingContainers,
			perProcess: make(map[string]int, len(s.InstancesPerProcess)),
		}
		for k, v := range s.InstancesPerProcess {
			c.perProcess[k] = v
		}
		cells = append(cells, c)
	}
	// A fixed order makes ties (and so plans) deterministic.
	slices.SortFunc(cells, func(a, b *cell) int { return cmp.Compare(a.id, b.id) })
	return cells
}

func (c *cell) hasStack(stack string) bool {
	return stack == "" || slices.Contains(c.stacks, stack)
}

// lacks lists the resources the cell is short of for the work.
func (c *cell) lacks(memMB, diskMB int) []string {
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

func fraction(used, total int) float64 {
	if total <= 0 {
		return 0
	}
	return float64(used) / float64(total)
}

// score is the cell's cost of taking the work, lower wins: the mean used
// fraction of memory, disk and containers once it holds the work, plus a
// penalty per container still starting and a large one per instance of the
// same process already there (so instances spread across cells).
func (c *cell) score(memMB, diskMB int, processGUID string) float64 {
	s := (fraction(c.usedMem+memMB, c.totalMem) +
		fraction(c.usedDisk+diskMB, c.totalDisk) +
		fraction(c.usedCtrs+1, c.totalCtrs)) / 3
	s += startingContainerWeight * float64(c.starting)
	if processGUID != "" {
		s += sameProcessWeight * float64(c.perProcess[processGUID])
	}
	return s
}

func (c *cell) reserve(memMB, diskMB int, processGUID string) {
	c.usedMem += memMB
	c.usedDisk += diskMB
	c.usedCtrs++
	c.starting++
	if processGUID != "" {
		c.perProcess[processGUID]++
	}
}

type zone struct {
	name      string
	instances int
	cells     []*cell
}

// pick chooses the cell for one piece of work, or says why there is none.
// Zones are tried in order of fewest instances of the process (zones tied on
// that count compete together), so instances spread across zones first; the
// best-scoring cell of the first zone group with room wins.
func pick(cells []*cell, processGUID, stack string, memMB, diskMB int) (*cell, string) {
	byZone := map[string]*zone{}
	var zones []*zone
	for _, c := range cells {
		if !c.hasStack(stack) {
			continue
		}
		z := byZone[c.zone]
		if z == nil {
			z = &zone{name: c.zone}
			byZone[c.zone] = z
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
	slices.SortFunc(zones, func(a, b *zone) int {
		return cmp.Or(cmp.Compare(a.instances, b.instances), cmp.Compare(a.name, b.name))
	})

	problems := map[string]bool{}
	var best *cell
	var bestScore float64
	for i, z := range zones {
		for _, c := range z.cells {
			if p := c.lacks(memMB, diskMB); len(p) > 0 {
				for _, r := range p {
					problems[r] = true
				}
				continue
			}
			if s := c.score(memMB, diskMB, processGUID); best == nil || s < bestScore {
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
	return nil, insufficient(problems)
}

func insufficient(problems map[string]bool) string {
	names := make([]string, 0, len(problems))
	for p := range problems {
		names = append(names, p)
	}
	sort.Strings(names)
	return insufficientPrefix + strings.Join(names, ", ")
}

// placementOrder returns the request indices in the order they are placed:
// instance 0 of every process first (so each app gets one instance before
// any gets a second when capacity is short), then larger memory first (big
// pieces are the hardest to fit), otherwise in request order.
func placementOrder(n int, index func(int) int, mem func(int) int) []int {
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

// PlaceLRPs places a batch of LRP instances on cells. Results are in request
// order. Draining cells are never chosen.
func PlaceLRPs(cells []pando.CellState, reqs []LRPRequest) []LRPResult {
	cs := newCells(cells)
	results := make([]LRPResult, len(reqs))
	order := placementOrder(len(reqs),
		func(i int) int { return reqs[i].Index },
		func(i int) int { return reqs[i].MemoryMB })
	for _, i := range order {
		r := reqs[i]
		results[i] = LRPResult{LRPRequest: r}
		c, why := pick(cs, r.ProcessGUID, r.Stack, r.MemoryMB, r.DiskMB)
		if c == nil {
			results[i].PlacementError = why
			continue
		}
		c.reserve(r.MemoryMB, r.DiskMB, r.ProcessGUID)
		results[i].CellID = c.id
	}
	return results
}

// PlaceTasks places a batch of tasks on cells. Results are in request order.
// Draining cells are never chosen.
func PlaceTasks(cells []pando.CellState, reqs []TaskRequest) []TaskResult {
	cs := newCells(cells)
	results := make([]TaskResult, len(reqs))
	order := placementOrder(len(reqs),
		func(int) int { return 0 },
		func(i int) int { return reqs[i].MemoryMB })
	for _, i := range order {
		r := reqs[i]
		results[i] = TaskResult{TaskRequest: r}
		c, why := pick(cs, "", r.Stack, r.MemoryMB, r.DiskMB)
		if c == nil {
			results[i].PlacementError = why
			continue
		}
		c.reserve(r.MemoryMB, r.DiskMB, "")
		results[i].CellID = c.id
	}
	return results
}

// IsInsufficientResources reports whether a placement error means the work
// fit on no cell for lack of capacity (as opposed to a missing stack).
func IsInsufficientResources(placementError string) bool {
	return strings.HasPrefix(placementError, insufficientPrefix)
}
