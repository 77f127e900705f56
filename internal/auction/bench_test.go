package auction

import (
	"syscall"
	"testing"
	"time"
)

// Anchors the auction benchmark is printed beside (issue 8): Pando's
// target, and what Nomad's C1M and kube-scheduler placed per second.
const (
	targetPlacementsPerSec = 20000
	nomadC1MPerSec         = 3750
	kubeSchedulerPerSec    = 900
)

// BenchmarkPlaceLRPs places 100,000 instances (10,000 processes of 10) on
// 1,000 empty cells in 3 zones, in one batch, and reports placements per
// second of wall time and per second of CPU (which other load on a shared
// machine does not change), and the latter beside the target and anchors.
func BenchmarkPlaceLRPs(b *testing.B) {
	cells, reqs := ScaleWorkload(1000, 10000, 10)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		res := PlaceLRPs(cells, reqs)
		if res[len(res)-1].CellID == "" {
			b.Fatalf("not placed: %+v", res[len(res)-1])
		}
	}
	n := float64(len(reqs)) * float64(b.N)
	perCPU := n / (processCPU() - cpu0).Seconds()
	b.ReportMetric(n/b.Elapsed().Seconds(), "placements/s")
	b.ReportMetric(perCPU, "placements/cpu_s")
	b.ReportMetric(perCPU/targetPlacementsPerSec, "x_target")
	b.ReportMetric(perCPU/nomadC1MPerSec, "x_nomad_c1m")
	b.ReportMetric(perCPU/kubeSchedulerPerSec, "x_kube_scheduler")
}

// processCPU is the CPU time (user + system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
