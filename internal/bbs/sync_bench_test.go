package bbs

import (
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

// BenchmarkSyncRound is one round of the cells' periodic sync on a
// healthy platform: 1,000 cells each send their inventory of 100
// RUNNING instances (100,000 in all), with the epoch mark of its last
// answer, and the BBS answers each (nothing to stop, nothing missing).
// It reports the BBS's CPU per cell's sync and per round (every
// cell once, i.e. per sync period).
func BenchmarkSyncRound(b *testing.B) {
	h := &harness{ctx: b.Context(), bbs: New(Config{}), clock: newFakeClock()}
	const nCells = 1000
	steadyState(h.bbs, nCells, 100_000)
	invs := map[string]*pando.CellInventory{}
	for _, rec := range h.bbs.st.allActuals() {
		inv := invs[rec.CellID]
		if inv == nil {
			inv = &pando.CellInventory{}
			invs[rec.CellID] = inv
		}
		inv.Actuals = append(inv.Actuals, cloneActual(rec.ActualLRP))
	}
	ids := h.bbs.CellIDs()
	if len(ids) != nCells {
		b.Fatalf("%d cells", len(ids))
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		for _, id := range ids {
			ans, err := h.bbs.SyncCell(h.ctx, id, *invs[id])
			if err != nil || len(ans.Actuals)+len(ans.Tasks) != 0 {
				b.Fatalf("sync %s: %+v, %v; want nothing to do", id, ans, err)
			}
			invs[id].Epoch = ans.Epoch
		}
	}
	cpu := (processCPU() - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(cpu.Nanoseconds())/nCells, "cpu_ns/cell")
	b.ReportMetric(cpu.Seconds(), "cpu_s/round")
	b.StopTimer()
	for _, rec := range h.bbs.st.allActuals() {
		if rec.CrashCount != 0 || rec.State != pando.ActualRunning {
			b.Fatalf("instance %+v after the syncs, want every one kept RUNNING", rec.ActualLRP)
		}
	}
}
