package auction

import "testing"

// Anchors the auction benchmark is printed beside (issue 8): Pando's
// target, and what Nomad's C1M and kube-scheduler placed per second.
const (
	targetPlacementsPerSec = 20000
	nomadC1MPerSec         = 3750
	kubeSchedulerPerSec    = 900
)

// BenchmarkPlaceLRPs places 100,000 instances (10,000 processes of 10) on
// 1,000 empty cells in 3 zones, in one batch, and reports placements/s
// beside the target and the anchors.
func BenchmarkPlaceLRPs(b *testing.B) {
	cells, reqs := ScaleWorkload(1000, 10000, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := PlaceLRPs(cells, reqs)
		if res[len(res)-1].CellID == "" {
			b.Fatalf("not placed: %+v", res[len(res)-1])
		}
	}
	perSec := float64(len(reqs)) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "placements/s")
	b.ReportMetric(perSec/targetPlacementsPerSec, "x_target")
	b.ReportMetric(perSec/nomadC1MPerSec, "x_nomad_c1m")
	b.ReportMetric(perSec/kubeSchedulerPerSec, "x_kube_scheduler")
}
