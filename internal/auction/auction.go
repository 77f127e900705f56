// Package auction is Pando's auctioneer: it decides which cell runs each LRP
// instance and task. It is pure (no I/O): given the cells' reported capacity
// and a batch of work it returns a placement plan, scoring cells the way
// Diego's auctioneer does and updating a local copy of the cells' usage as it
// places, so one batch spreads instead of piling onto the emptiest cell.
//
// A batch is placed in O(cells) per piece of work without allocating: cells
// are indexed by stack once per batch, and the instances of the process
// being placed are counted per cell in a dense array, refilled only when the
// batch moves on to another process (docs/performance.md has the figures).
package auction

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"

	pando "github.com/pandoplatform/pando"
)

// Placement errors the user sees (the cf CLI shows them). The first words
// are Diego's; what follows says what to fix.
const (
	// ErrNoCompatibleCell starts the error for work whose stack no
	// (non-draining) cell offers: "found no compatible cell: no cell has
	// stack "cflinuxfs4"".
	ErrNoCompatibleCell = "found no compatible cell"
	// ErrNoHealthyCells means there is no cell to place on at all: none is
	// registered, or every one is draining.
	ErrNoHealthyCells = "no healthy cells"
	// insufficientPrefix starts the error for work that fits on no cell;
	// the problems (containers, disk, memory) follow, comma separated.
	insufficientPrefix = "insufficient resources: "
)

// Score weights (Diego's defaults, and Pando's cachedImageWeight).
const (
	startingContainerWeight = 0.25
	sameProcessWeight       = 1000
	// cachedImageWeight is taken off the score of a cell that holds or is
	// pulling the instance's image layers: it decides between cells whose
	// usage differs by less than a tenth (the layer cache itself counts as
	// used disk), loses to a container starting there, and never outweighs
	// the spread of a process's instances (zones are chosen first; a cell
	// without room is no candidate).
	cachedImageWeight = 0.1
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
	// ImageDigest is the docker image's manifest digest ("sha256:...");
	// cells that report it in CellState.Images are preferred, other things
	// about equal (their layers are cached or downloading there).
	ImageDigest string
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
	id        string
	zone      int // index into batch.zones
	stacks    []string
	totalMem  int
	totalDisk int
	totalCtrs int
	usedMem   int
	usedDisk  int
	usedCtrs  int
	starting  int
	images    []string // digests of the images whose layers it has
}

// Resource shortages, as bits; their names sort in bit order.
const (
	shortContainers = 1 << iota
	shortDisk
	shortMemory
)

func (c *cell) lacks(memMB, diskMB int) int {
	var p int
	if c.usedCtrs+1 > c.totalCtrs {
		p |= shortContainers
	}
	if c.usedDisk+diskMB > c.totalDisk {
		p |= shortDisk
	}
	if c.usedMem+memMB > c.totalMem {
		p |= shortMemory
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
// same process already there (so instances spread across cells), less a
// little when the cell has the work's image layers.
func (c *cell) score(memMB, diskMB, sameProcess int, image string) float64 {
	s := (fraction(c.usedMem+memMB, c.totalMem) +
		fraction(c.usedDisk+diskMB, c.totalDisk) +
		fraction(c.usedCtrs+1, c.totalCtrs)) / 3
	s += startingContainerWeight * float64(c.starting)
	s += sameProcessWeight * float64(sameProcess)
	if image != "" && slices.Contains(c.images, image) {
		s -= cachedImageWeight
	}
	return s
}

// batch is one auction round's state: the cells' usage as placements
// reserve it, and the indexes that keep each pick free of maps and
// allocations.
type batch struct {
	cells    []cell // non-draining, sorted by id
	draining int
	zones    []string // sorted; cell.zone indexes it
	byStack  map[string][]int32

	// procs interns the batch's process guids; placed[p] lists where
	// process p has instances: what the cells reported, then one entry per
	// instance the batch places.
	procs  map[string]int32
	placed [][]onCell
	// count[c] is the number of instances of process cur on cell c.
	count []int
	cur   int32

	// Per-zone scratch of one pick.
	zoneSeen  []bool
	zoneInst  []int
	zoneBest  []int32
	zoneScore []float64
	order     []int
}

// onCell is n instances of a process on cell c.
type onCell struct {
	c int32
	n int
}

// newBatch prepares a round on the cells for work of the given processes.
func newBatch(states []pando.CellState, procGUIDs iter.Seq[string]) *batch {
	b := &batch{byStack: map[string][]int32{}, procs: map[string]int32{}, cur: -1}
	for g := range procGUIDs {
		if _, ok := b.procs[g]; !ok && g != "" {
			b.procs[g] = int32(len(b.procs))
		}
	}
	b.placed = make([][]onCell, len(b.procs))

	live := make([]*pando.CellState, 0, len(states))
	zoneSet := map[string]bool{}
	for i := range states {
		if states[i].Draining {
			b.draining++
			continue
		}
		live = append(live, &states[i])
		zoneSet[states[i].Zone] = true
	}
	// A fixed order makes ties (and so plans) deterministic.
	slices.SortFunc(live, func(x, y *pando.CellState) int { return cmp.Compare(x.ID, y.ID) })
	for z := range zoneSet {
		b.zones = append(b.zones, z)
	}
	slices.Sort(b.zones)

	b.cells = make([]cell, len(live))
	for i, s := range live {
		zi, _ := slices.BinarySearch(b.zones, s.Zone)
		b.cells[i] = cell{
			id: s.ID, zone: zi, stacks: s.Stacks,
			totalMem: s.TotalMemoryMB, totalDisk: s.TotalDiskMB, totalCtrs: s.TotalContainers,
			usedMem: s.UsedMemoryMB, usedDisk: s.UsedDiskMB, usedCtrs: s.UsedContainers,
			starting: s.StartingContainers,
			images:   s.Images[:min(len(s.Images), pando.MaxCellImages)],
		}
		for g, n := range s.InstancesPerProcess {
			if p, ok := b.procs[g]; ok && n != 0 {
				b.placed[p] = append(b.placed[p], onCell{int32(i), n})
			}
		}
	}
	b.count = make([]int, len(b.cells))
	nz := len(b.zones)
	b.zoneSeen, b.zoneInst = make([]bool, nz), make([]int, nz)
	b.zoneBest, b.zoneScore = make([]int32, nz), make([]float64, nz)
	b.order = make([]int, 0, nz)
	return b
}

// candidates are the cells that offer the stack, in id order.
func (b *batch) candidates(stack string) []int32 {
	if c, ok := b.byStack[stack]; ok {
		return c
	}
	var c []int32
	for i := range b.cells {
		if stack == "" || slices.Contains(b.cells[i].stacks, stack) {
			c = append(c, int32(i))
		}
	}
	b.byStack[stack] = c
	return c
}

// focus makes count describe process p (-1: none).
func (b *batch) focus(p int32) {
	if p == b.cur {
		return
	}
	if b.cur >= 0 {
		for _, o := range b.placed[b.cur] {
			b.count[o.c] = 0
		}
	}
	if p >= 0 {
		for _, o := range b.placed[p] {
			b.count[o.c] += o.n
		}
	}
	b.cur = p
}

// pick chooses the cell for one piece of work, or says why there is none.
// Zones are tried in order of fewest instances of the process (zones tied on
// that count compete together), so instances spread across zones first; the
// best-scoring cell of the first zone group with room wins.
func (b *batch) pick(proc int32, stack string, memMB, diskMB int, image string) (int32, string) {
	cands := b.candidates(stack)
	if len(cands) == 0 {
		return -1, b.noCell(stack)
	}
	b.focus(proc)
	clear(b.zoneSeen)
	clear(b.zoneInst)
	problems := 0
	for _, ci := range cands {
		c := &b.cells[ci]
		n := b.count[ci]
		z := c.zone
		if !b.zoneSeen[z] {
			b.zoneSeen[z], b.zoneBest[z] = true, -1
		}
		b.zoneInst[z] += n
		if p := c.lacks(memMB, diskMB); p != 0 {
			problems |= p
			continue
		}
		if s := c.score(memMB, diskMB, n, image); b.zoneBest[z] < 0 || s < b.zoneScore[z] {
			b.zoneBest[z], b.zoneScore[z] = ci, s
		}
	}
	order := b.order[:0]
	for z, seen := range b.zoneSeen {
		if seen {
			order = append(order, z)
		}
	}
	// Zones are few: sort by instances, then name (their index).
	slices.SortFunc(order, func(x, y int) int {
		return cmp.Or(cmp.Compare(b.zoneInst[x], b.zoneInst[y]), cmp.Compare(x, y))
	})
	best, bestScore := int32(-1), 0.0
	for k, z := range order {
		if zb := b.zoneBest[z]; zb >= 0 && (best < 0 || b.zoneScore[z] < bestScore) {
			best, bestScore = zb, b.zoneScore[z]
		}
		if k+1 < len(order) && b.zoneInst[order[k+1]] == b.zoneInst[z] {
			continue
		}
		if best >= 0 {
			return best, ""
		}
	}
	return -1, insufficient(problems)
}

func (b *batch) noCell(stack string) string {
	switch {
	case len(b.cells) == 0 && b.draining > 0:
		return ErrNoHealthyCells + ": every cell is draining"
	case len(b.cells) == 0:
		return ErrNoHealthyCells
	}
	return fmt.Sprintf("%s: no cell has stack %q", ErrNoCompatibleCell, stack)
}

func (b *batch) reserve(ci, proc int32, memMB, diskMB int) {
	c := &b.cells[ci]
	c.usedMem += memMB
	c.usedDisk += diskMB
	c.usedCtrs++
	c.starting++
	if proc >= 0 {
		b.focus(proc)
		b.placed[proc] = append(b.placed[proc], onCell{ci, 1})
		b.count[ci]++
	}
}

func insufficient(problems int) string {
	names := make([]string, 0, 3)
	for bit, name := range []string{"containers", "disk", "memory"} {
		if problems&(1<<bit) != 0 {
			names = append(names, name)
		}
	}
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
	b := newBatch(cells, func(yield func(string) bool) {
		for i := range reqs {
			if !yield(reqs[i].ProcessGUID) {
				return
			}
		}
	})
	results := make([]LRPResult, len(reqs))
	order := placementOrder(len(reqs),
		func(i int) int { return reqs[i].Index },
		func(i int) int { return reqs[i].MemoryMB })
	for _, i := range order {
		r := reqs[i]
		results[i] = LRPResult{LRPRequest: r}
		proc := int32(-1)
		if r.ProcessGUID != "" {
			proc = b.procs[r.ProcessGUID]
		}
		c, why := b.pick(proc, r.Stack, r.MemoryMB, r.DiskMB, r.ImageDigest)
		if c < 0 {
			results[i].PlacementError = why
			continue
		}
		b.reserve(c, proc, r.MemoryMB, r.DiskMB)
		results[i].CellID = b.cells[c].id
	}
	return results
}

// PlaceTasks places a batch of tasks on cells. Results are in request order.
// Draining cells are never chosen.
func PlaceTasks(cells []pando.CellState, reqs []TaskRequest) []TaskResult {
	b := newBatch(cells, slices.Values([]string(nil)))
	results := make([]TaskResult, len(reqs))
	order := placementOrder(len(reqs),
		func(int) int { return 0 },
		func(i int) int { return reqs[i].MemoryMB })
	for _, i := range order {
		r := reqs[i]
		results[i] = TaskResult{TaskRequest: r}
		c, why := b.pick(-1, r.Stack, r.MemoryMB, r.DiskMB, "")
		if c < 0 {
			results[i].PlacementError = why
			continue
		}
		b.reserve(c, -1, r.MemoryMB, r.DiskMB)
		results[i].CellID = b.cells[c].id
	}
	return results
}

// IsInsufficientResources reports whether a placement error means the work
// fit on no cell for lack of capacity (as opposed to a missing stack).
func IsInsufficientResources(placementError string) bool {
	return strings.HasPrefix(placementError, insufficientPrefix)
}
