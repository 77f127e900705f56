package bbs

import (
	"fmt"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

// targetConvergeCPU is issue 8's bound on one convergence pass over
// 100,000 desired LRPs.
const targetConvergeCPU = time.Second

// steadyState fills a BBS with desired LRPs of one RUNNING instance each,
// spread over cells: what convergence sees on a healthy platform.
func steadyState(b *BBS, nCells, nLRPs int) {
	cells := make([]*fakeCell, nCells)
	for i := range cells {
		cells[i] = newFakeCell(fmt.Sprintf("cell-%04d", i), 1<<20)
		b.cells[cells[i].id] = &cellEntry{cell: cells[i]}
	}
	now := b.now()
	for i := range nLRPs {
		d := pando.DesiredLRP{ProcessGUID: fmt.Sprintf("process-%06d", i), Revision: 1, Instances: 1,
			MemoryMB: 256, DiskMB: 1024, Stack: "cflinuxfs4", UpdatedAt: now}
		b.st.putDesired(d)
		c := cells[i%nCells]
		guid := fmt.Sprintf("instance-%06d", i)
		b.putActualLocked(actualRecord{ActualLRP: pando.ActualLRP{
			ProcessGUID: d.ProcessGUID, Revision: 1, InstanceGUID: guid, CellID: c.id,
			State: pando.ActualRunning, Address: "127.0.0.1", Port: 61000, Since: now, StartedAt: now,
		}, seenEpoch: b.epochs.seq}, false)
		c.instances[guid] = startCall{ProcessGUID: d.ProcessGUID, Revision: 1, InstanceGUID: guid, MemoryMB: 256}
	}
}

// BenchmarkConvergeOnce is one convergence pass over 100,000 desired LRPs
// on 1,000 cells with nothing to repair, reported as CPU per pass beside
// the target.
func BenchmarkConvergeOnce(b *testing.B) {
	h := &harness{ctx: b.Context(), bbs: New(Config{}), clock: newFakeClock()}
	steadyState(h.bbs, 1000, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		h.bbs.ConvergeOnce(h.ctx)
	}
	cpu := (processCPU() - cpu0) / time.Duration(b.N)
	b.ReportMetric(cpu.Seconds(), "cpu_s/pass")
	b.ReportMetric(cpu.Seconds()/targetConvergeCPU.Seconds(), "x_target_cpu")
}
