package simcell

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSimulatedCells_1000 starts 1,000 simulated cells (the real rep,
// fake containers) on one real BBS and, per round, desires 500 processes of
// 10 instances and waits until all 5,000 run (placed, container created,
// droplet extracted, health-checked, reported RUNNING), then removes them.
// It reports instances running per second, end to end, and per second of
// the process's CPU (cells, BBS and GC alike).
func BenchmarkSimulatedCells_1000(b *testing.B) {
	if testing.Short() {
		b.Skip("starts 1,000 cells")
	}
	bb, c := startCluster(b, 1000, 8192)
	const procs, per = 500, 10
	var total, cpu time.Duration
	for round := 0; b.Loop(); round++ {
		start, cpu0 := time.Now(), processCPU()
		for p := range procs {
			d := c.LRP(fmt.Sprintf("r%d-proc-%03d", round, p), per, 256)
			if err := bb.DesireLRP(b.Context(), d); err != nil {
				b.Fatal(err)
			}
		}
		for p := range procs {
			guid := fmt.Sprintf("r%d-proc-%03d", round, p)
			waitFor(b, guid+" running", 5*time.Minute, func() (bool, string) {
				n, all := running(b, bb, guid)
				return n == per, fmt.Sprint(all)
			})
		}
		total += time.Since(start)
		cpu += processCPU() - cpu0
		b.StopTimer()
		for p := range procs {
			if err := bb.RemoveDesiredLRP(b.Context(), fmt.Sprintf("r%d-proc-%03d", round, p)); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, "cells empty", 5*time.Minute, func() (bool, string) {
			for _, r := range c.Cells() {
				if s, _ := r.State(b.Context()); s.UsedContainers > 0 {
					return false, fmt.Sprintf("%s holds %d containers", r.ID(), s.UsedContainers)
				}
			}
			return true, ""
		})
		b.StartTimer()
	}
	n := float64(procs * per * b.N)
	b.ReportMetric(n/total.Seconds(), "instances_running/s")
	b.ReportMetric(n/cpu.Seconds(), "instances_running/cpu_s")
}

// processCPU is the CPU time (user + system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSimulatedCells_1000_syncRound is one round of the periodic
// sync on 1,000 simulated cells running 5,000 instances: each cell takes
// its inventory and syncs with the real BBS in process (one message,
// nothing to stop). It reports the process's CPU (cells' inventories,
// the BBS's answers, and whatever the idle cells do meanwhile) per cell's
// sync and per round.
func BenchmarkSimulatedCells_1000_syncRound(b *testing.B) {
	if testing.Short() {
		b.Skip("starts 1,000 cells")
	}
	bb, c := startCluster(b, 1000, 8192)
	const procs, per = 500, 10
	for p := range procs {
		if err := bb.DesireLRP(b.Context(), c.LRP(fmt.Sprintf("proc-%03d", p), per, 256)); err != nil {
			b.Fatal(err)
		}
	}
	for p := range procs {
		guid := fmt.Sprintf("proc-%03d", p)
		waitFor(b, guid+" running", 5*time.Minute, func() (bool, string) {
			n, all := running(b, bb, guid)
			return n == per, fmt.Sprint(all)
		})
	}
	cells := c.Cells()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		for _, r := range cells {
			if err := r.SyncOnce(b.Context(), bb); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := (processCPU() - cpu0) / time.Duration(b.N)
	b.StopTimer()
	n := 0
	for _, r := range cells {
		n += len(r.Inventory().Actuals)
	}
	if n != procs*per {
		b.Fatalf("%d instances left after the syncs, want all %d", n, procs*per)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(cells)), "cpu_ns/cell")
	b.ReportMetric(cpu.Seconds(), "cpu_s/round")
}
