package auction

import (
	"fmt"

	pando "github.com/pandoplatform/pando"
)

// ScaleWorkload is the scale benchmarks' workload: nCells empty cells of
// 256 GB, 1 TB disk and 250 containers in three zones, and procs processes
// of perProc instances (256 MB, 1 GB disk) each, all on one stack. The
// auction benchmark and bench/placement share it so their figures agree.
func ScaleWorkload(nCells, procs, perProc int) ([]pando.CellState, []LRPRequest) {
	cells := make([]pando.CellState, nCells)
	for i := range cells {
		cells[i] = pando.CellState{
			ID:            fmt.Sprintf("cell-%04d", i),
			Zone:          fmt.Sprintf("z%d", i%3),
			Stacks:        []string{"cflinuxfs4"},
			TotalMemoryMB: 256 * 1024, TotalDiskMB: 1024 * 1024, TotalContainers: 250,
			InstancesPerProcess: map[string]int{},
		}
	}
	reqs := make([]LRPRequest, 0, procs*perProc)
	for p := range procs {
		for i := range perProc {
			reqs = append(reqs, LRPRequest{
				ProcessGUID: fmt.Sprintf("process-%05d", p), Index: i,
				MemoryMB: 256, DiskMB: 1024, Stack: "cflinuxfs4",
			})
		}
	}
	return cells, reqs
}
