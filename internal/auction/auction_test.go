package auction

import (
	"fmt"
	"slices"
	"testing"

	pando "github.com/pandoplatform/pando"
)

// cellSpec builds a CellState tersely: 4 GB, 16 GB disk, 10 containers unless
// the case says otherwise.
func cellSpec(id string, opts ...func(*pando.CellState)) pando.CellState {
	c := pando.CellState{
		ID: id, Stacks: []string{"cflinuxfs4"},
		TotalMemoryMB: 4096, TotalDiskMB: 16384, TotalContainers: 10,
		InstancesPerProcess: map[string]int{},
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func used(memMB, diskMB, ctrs int) func(*pando.CellState) {
	return func(c *pando.CellState) { c.UsedMemoryMB, c.UsedDiskMB, c.UsedContainers = memMB, diskMB, ctrs }
}
func total(memMB, diskMB, ctrs int) func(*pando.CellState) {
	return func(c *pando.CellState) { c.TotalMemoryMB, c.TotalDiskMB, c.TotalContainers = memMB, diskMB, ctrs }
}
func running(process string, n int) func(*pando.CellState) {
	return func(c *pando.CellState) { c.InstancesPerProcess[process] = n }
}
func starting(n int) func(*pando.CellState) {
	return func(c *pando.CellState) { c.StartingContainers = n }
}
func inZone(z string) func(*pando.CellState)    { return func(c *pando.CellState) { c.Zone = z } }
func stacks(s ...string) func(*pando.CellState) { return func(c *pando.CellState) { c.Stacks = s } }
func draining() func(*pando.CellState)          { return func(c *pando.CellState) { c.Draining = true } }

func lrp(process string, index, memMB int) LRPRequest {
	return LRPRequest{ProcessGUID: process, Index: index, MemoryMB: memMB, DiskMB: 256, Stack: "cflinuxfs4"}
}

// lrpPlan records a placement plan as lines the test compares, the way
// nomad's scheduler harness records plans.
func lrpPlan(results []LRPResult) []string {
	var out []string
	for _, r := range results {
		if r.PlacementError != "" {
			out = append(out, fmt.Sprintf("%s/%d !! %s", r.ProcessGUID, r.Index, r.PlacementError))
			continue
		}
		out = append(out, fmt.Sprintf("%s/%d -> %s", r.ProcessGUID, r.Index, r.CellID))
	}
	return out
}

func TestPlaceLRPs(t *testing.T) {
	tests := []struct {
		name  string
		cells []pando.CellState
		reqs  []LRPRequest
		want  []string
	}{
		{
			name:  "spreads instances of one process over equal cells",
			cells: []pando.CellState{cellSpec("a"), cellSpec("b")},
			reqs:  []LRPRequest{lrp("web", 0, 256), lrp("web", 1, 256), lrp("web", 2, 256)},
			want:  []string{"web/0 -> a", "web/1 -> b", "web/2 -> a"},
		},
		{
			name: "same-process penalty beats a much emptier cell",
			cells: []pando.CellState{
				cellSpec("a", running("web", 1), used(256, 256, 1)),
				cellSpec("b", used(3000, 8000, 8)),
			},
			reqs: []LRPRequest{lrp("web", 1, 256)},
			want: []string{"web/1 -> b"},
		},
		{
			name:  "an absurd instance count reported by a cell costs nothing and loses",
			cells: []pando.CellState{cellSpec("a", running("web", 1<<40)), cellSpec("b", used(3000, 8000, 8))},
			reqs:  []LRPRequest{lrp("web", 1, 256)},
			want:  []string{"web/1 -> b"},
		},
		{
			name:  "lower usage wins between cells without the process",
			cells: []pando.CellState{cellSpec("a", used(2048, 8192, 5)), cellSpec("b", used(1024, 4096, 2))},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{"web/0 -> b"},
		},
		{
			name:  "starting containers weigh against a cell",
			cells: []pando.CellState{cellSpec("a", starting(2)), cellSpec("b", used(1024, 4096, 3))},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{"web/0 -> b"},
		},
		{
			// The big cell stays the emptier all along: only the penalty
			// of the starts the batch gives it spreads a burst of one
			// instance each of many apps.
			name:  "each instance a batch places counts as starting on its cell",
			cells: []pando.CellState{cellSpec("big", total(65536, 262144, 250)), cellSpec("small")},
			reqs:  []LRPRequest{lrp("p1", 0, 256), lrp("p2", 0, 256), lrp("p3", 0, 256), lrp("p4", 0, 256)},
			want:  []string{"p1/0 -> big", "p2/0 -> small", "p3/0 -> big", "p4/0 -> small"},
		},
		{
			name:  "a cell busy starting loses to a fuller one",
			cells: []pando.CellState{cellSpec("a", starting(40)), cellSpec("b", used(3000, 12000, 9))},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{"web/0 -> b"},
		},
		{
			name:  "fits nowhere for memory",
			cells: []pando.CellState{cellSpec("a", used(3800, 0, 1)), cellSpec("b", used(4000, 0, 1))},
			reqs:  []LRPRequest{lrp("web", 0, 512)},
			want:  []string{"web/0 !! insufficient resources: memory"},
		},
		{
			name: "problems are collected across cells",
			cells: []pando.CellState{
				cellSpec("a", used(4000, 0, 1)),
				cellSpec("b", used(0, 16300, 1)),
				cellSpec("c", used(0, 0, 10)),
			},
			reqs: []LRPRequest{lrp("web", 0, 512)},
			want: []string{"web/0 !! insufficient resources: containers, disk, memory"},
		},
		{
			name:  "only cells with the stack are considered",
			cells: []pando.CellState{cellSpec("a", stacks("windows")), cellSpec("b", used(3000, 0, 5))},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{"web/0 -> b"},
		},
		{
			name:  "no cell with the stack",
			cells: []pando.CellState{cellSpec("a", stacks("windows")), cellSpec("b", stacks("windows"))},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{`web/0 !! found no compatible cell: no cell has stack "cflinuxfs4"`},
		},
		{
			name:  "an empty stack matches any cell",
			cells: []pando.CellState{cellSpec("a", stacks())},
			reqs:  []LRPRequest{{ProcessGUID: "docker", MemoryMB: 256}},
			want:  []string{"docker/0 -> a"},
		},
		{
			name:  "draining cells are skipped",
			cells: []pando.CellState{cellSpec("a", draining()), cellSpec("b", used(3000, 0, 5))},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{"web/0 -> b"},
		},
		{
			name:  "only draining cells",
			cells: []pando.CellState{cellSpec("a", draining())},
			reqs:  []LRPRequest{lrp("web", 0, 256)},
			want:  []string{"web/0 !! no healthy cells: every cell is draining"},
		},
		{
			name: "no cells at all",
			reqs: []LRPRequest{lrp("web", 0, 256)},
			want: []string{"web/0 !! no healthy cells"},
		},
		{
			name:  "a batch updates usage as it places",
			cells: []pando.CellState{cellSpec("a", total(1024, 16384, 10)), cellSpec("b", total(1024, 16384, 10))},
			reqs: []LRPRequest{
				lrp("p1", 0, 512), lrp("p2", 0, 512), lrp("p3", 0, 512), lrp("p4", 0, 512), lrp("p5", 0, 512),
			},
			want: []string{
				"p1/0 -> a", "p2/0 -> b", "p3/0 -> a", "p4/0 -> b",
				"p5/0 !! insufficient resources: memory",
			},
		},
		{
			name: "zones with fewer instances of the process win first",
			cells: []pando.CellState{
				cellSpec("a", inZone("z1"), running("web", 1), used(256, 256, 1)),
				cellSpec("b", inZone("z1")),
				cellSpec("c", inZone("z2"), used(3000, 8000, 8)),
			},
			reqs: []LRPRequest{lrp("web", 1, 256), lrp("web", 2, 256)},
			// web/1 goes to z2 although b is emptier; then the zones are
			// tied (one each) and b's score is best.
			want: []string{"web/1 -> c", "web/2 -> b"},
		},
		{
			name: "a full zone falls through to the next",
			cells: []pando.CellState{
				cellSpec("a", inZone("z1"), running("web", 2), used(512, 512, 2)),
				cellSpec("c", inZone("z2"), used(4000, 0, 1)),
			},
			reqs: []LRPRequest{lrp("web", 2, 256)},
			want: []string{"web/2 -> a"},
		},
		{
			name:  "instance 0 of each process is placed before second instances",
			cells: []pando.CellState{cellSpec("a", total(1024, 16384, 10))},
			reqs:  []LRPRequest{lrp("web", 1, 512), lrp("api", 0, 512), lrp("web", 0, 512)},
			want: []string{
				"web/1 !! insufficient resources: memory", "api/0 -> a", "web/0 -> a",
			},
		},
		{
			name:  "larger instances are placed first",
			cells: []pando.CellState{cellSpec("a", total(1024, 16384, 10))},
			reqs:  []LRPRequest{lrp("small", 1, 256), lrp("big", 1, 1024)},
			want:  []string{"small/1 !! insufficient resources: memory", "big/1 -> a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lrpPlan(PlaceLRPs(tt.cells, tt.reqs))
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestPlaceLRPs_spreadsOverZonesBeforeCells(t *testing.T) {
	// Zone z1 has four empty cells, z2 and z3 one each: scores alone would
	// put four of six instances in z1.
	cells := []pando.CellState{
		cellSpec("a", inZone("z1")), cellSpec("b", inZone("z1")), cellSpec("c", inZone("z1")), cellSpec("d", inZone("z1")),
		cellSpec("e", inZone("z2")), cellSpec("f", inZone("z3")),
	}
	var reqs []LRPRequest
	for i := range 6 {
		reqs = append(reqs, lrp("web", i, 256))
	}
	perZone := map[string]int{}
	zoneOf := map[string]string{"a": "z1", "b": "z1", "c": "z1", "d": "z1", "e": "z2", "f": "z3"}
	for _, r := range PlaceLRPs(cells, reqs) {
		perZone[zoneOf[r.CellID]]++
	}
	if perZone["z1"] != 2 || perZone["z2"] != 2 || perZone["z3"] != 2 {
		t.Errorf("instances per zone %v, want 2 in each", perZone)
	}
	// Within z1 its two instances still go to two cells.
	got := lrpPlan(PlaceLRPs(cells, reqs))
	want := []string{"web/0 -> a", "web/1 -> e", "web/2 -> f", "web/3 -> b", "web/4 -> e", "web/5 -> f"}
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n got  %q\n want %q", got, want)
	}
}

func TestPlaceLRPs_doesNotModifyInput(t *testing.T) {
	cells := []pando.CellState{cellSpec("a")}
	PlaceLRPs(cells, []LRPRequest{lrp("web", 0, 256), lrp("web", 1, 256)})
	if cells[0].UsedMemoryMB != 0 || cells[0].InstancesPerProcess["web"] != 0 {
		t.Errorf("input cell changed: %+v", cells[0])
	}
}

func TestPlaceTasks(t *testing.T) {
	task := func(guid string, memMB int) TaskRequest {
		return TaskRequest{TaskGUID: guid, MemoryMB: memMB, DiskMB: 1024, Stack: "cflinuxfs4"}
	}
	plan := func(results []TaskResult) []string {
		var out []string
		for _, r := range results {
			if r.PlacementError != "" {
				out = append(out, r.TaskGUID+" !! "+r.PlacementError)
			} else {
				out = append(out, r.TaskGUID+" -> "+r.CellID)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		cells []pando.CellState
		reqs  []TaskRequest
		want  []string
	}{
		{
			name:  "spreads by usage",
			cells: []pando.CellState{cellSpec("a"), cellSpec("b")},
			reqs:  []TaskRequest{task("t1", 1024), task("t2", 1024), task("t3", 1024)},
			want:  []string{"t1 -> a", "t2 -> b", "t3 -> a"},
		},
		{
			name:  "no process penalty for tasks",
			cells: []pando.CellState{cellSpec("a", running("web", 3)), cellSpec("b", used(2048, 8192, 5))},
			reqs:  []TaskRequest{task("t1", 256)},
			want:  []string{"t1 -> a"},
		},
		{
			name:  "insufficient memory",
			cells: []pando.CellState{cellSpec("a")},
			reqs:  []TaskRequest{task("huge", 8192)},
			want:  []string{"huge !! insufficient resources: memory"},
		},
		{
			name:  "stack missing",
			cells: []pando.CellState{cellSpec("a", stacks("other"))},
			reqs:  []TaskRequest{task("t1", 256)},
			want:  []string{`t1 !! found no compatible cell: no cell has stack "cflinuxfs4"`},
		},
		{
			name:  "draining skipped",
			cells: []pando.CellState{cellSpec("a", draining()), cellSpec("b", used(3000, 0, 1))},
			reqs:  []TaskRequest{task("t1", 256)},
			want:  []string{"t1 -> b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(PlaceTasks(tt.cells, tt.reqs))
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestIsInsufficientResources(t *testing.T) {
	if !IsInsufficientResources("insufficient resources: memory") {
		t.Error("memory error not recognised")
	}
	if IsInsufficientResources(ErrNoCompatibleCell) {
		t.Error("stack error taken for a resource error")
	}
}
