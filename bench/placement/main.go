// Command placement measures Pando's placement at scale, in one process
// and without containers, beside issue 8's targets and anchors:
//
//   - auction: the auctioneer placing 100,000 instances (10,000 processes of
//     10) onto 1,000 cells in three zones, in one batch (target at least
//     20,000 placements/s; Nomad's C1M placed about 3,750/s, kube-scheduler
//     about 900 pods/s);
//
//   - bbs: the same 100,000 instances placed by one convergence pass of the
//     real BBS onto 1,000 in-memory cells, StartLRP calls included;
//
//   - converge: one convergence pass over those 100,000 desired LRPs once
//     they all run (target under 1 s of CPU).
//
//     make bench-placement        # = go run ./bench/placement [-n 3] [-cpuprofile F]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/auction"
	"github.com/pandoplatform/pando/internal/bbs"
)

// Targets and anchors (issue 8).
const (
	targetPlacementsPerSec = 20000
	nomadC1MPerSec         = 3750
	kubeSchedulerPerSec    = 900
	targetConvergeCPU      = time.Second
)

const (
	nCells    = 1000
	nProcs    = 10000
	perProc   = 10
	instances = nProcs * perProc
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("placement", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("n", 3, "rounds of each measurement (the median counts)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 {
		fmt.Fprintln(stderr, "error: -n must be at least 1")
		return 2
	}
	ctx := context.Background()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	var auctionRates, bbsRates []rate
	var convergeCPU []time.Duration
	for range *rounds {
		auctionRates = append(auctionRates, measureAuction())
		placed, cpu, err := measureBBS(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		bbsRates = append(bbsRates, placed)
		convergeCPU = append(convergeCPU, cpu)
	}

	fmt.Fprintf(stdout, "placement: %d instances (%d processes of %d) onto %d cells in 3 zones, median of %d\n\n",
		instances, nProcs, perProc, nCells, *rounds)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measure\twall\tper CPU-second\ttarget\tratio\tvs Nomad C1M\tvs kube-scheduler\tmet\t\n")
	for _, row := range []struct {
		name  string
		rates []rate
	}{{"auction", auctionRates}, {"bbs converge", bbsRates}} {
		wall, cpu := medianOf(row.rates, func(r rate) float64 { return r.wall }), medianOf(row.rates, func(r rate) float64 { return r.cpu })
		fmt.Fprintf(tw, "%s\t%.0f/s\t%.0f/s\t%d/s\t%.1fx\t%.1fx\t%.0fx\t%s\t\n", row.name, wall, cpu, targetPlacementsPerSec,
			cpu/targetPlacementsPerSec, cpu/nomadC1MPerSec, cpu/kubeSchedulerPerSec, met(cpu >= targetPlacementsPerSec))
	}
	cpu := medianDuration(convergeCPU)
	fmt.Fprintf(tw, "converge pass\t\t%s CPU\t< %s\t%.1fx\t\t\t%s\t\n", cpu.Round(time.Millisecond), targetConvergeCPU,
		targetConvergeCPU.Seconds()/cpu.Seconds(), met(cpu < targetConvergeCPU))
	tw.Flush()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(stdout, "\nratios and met: the rate per CPU-second (higher is better), which other load on the machine does not change;\n"+
		"wall time is close to it on an idle machine. converge pass: a steady platform, nothing to repair.\nload average: %s", load)
	return 0
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// rate is a measured throughput: per second of wall time, and per second
// of the process's CPU time (GC included), which is what the machine's
// other load does not change.
type rate struct{ wall, cpu float64 }

// measure runs fn once after a GC, returning its wall and CPU time.
func measure(fn func()) (wall, cpu time.Duration) {
	runtime.GC()
	cpu0, start := processCPU(), time.Now()
	fn()
	return time.Since(start), processCPU() - cpu0
}

// measureAuction times one batch of the auctioneer alone.
func measureAuction() rate {
	cells, reqs := auction.ScaleWorkload(nCells, nProcs, perProc)
	var res []auction.LRPResult
	wall, cpu := measure(func() { res = auction.PlaceLRPs(cells, reqs) })
	for _, r := range res {
		if r.CellID == "" {
			panic("auction left an instance unplaced: " + r.PlacementError)
		}
	}
	return rate{float64(len(reqs)) / wall.Seconds(), float64(len(reqs)) / cpu.Seconds()}
}

// measureBBS desires every LRP before any cell exists (so each instance
// waits UNCLAIMED), registers the cells, and times the convergence pass
// that places and starts them all. Then it reports them RUNNING and
// measures the CPU of one more pass, which finds nothing to do.
func measureBBS(ctx context.Context) (rate, time.Duration, error) {
	b := bbs.New(bbs.Config{})
	states, reqs := auction.ScaleWorkload(nCells, nProcs, perProc)
	for p := range nProcs {
		r := reqs[p*perProc]
		if err := b.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: r.ProcessGUID, Revision: 1, Instances: perProc,
			MemoryMB: r.MemoryMB, DiskMB: r.DiskMB, Stack: r.Stack}); err != nil {
			return rate{}, 0, err
		}
	}
	cells := make([]*memCell, nCells)
	for i, s := range states {
		cells[i] = &memCell{state: s, procs: map[string]int{}}
		b.RegisterCell(cells[i])
	}

	wall, cpu := measure(func() { b.ConvergeOnce(ctx) })
	placed := rate{float64(instances) / wall.Seconds(), float64(instances) / cpu.Seconds()}

	started := 0
	for _, c := range cells {
		c.mu.Lock()
		started += c.started
		c.mu.Unlock()
	}
	if started != instances {
		return rate{}, 0, fmt.Errorf("bbs started %d of %d instances", started, instances)
	}
	all, err := b.ActualLRPs(ctx, "") // every process's
	if err != nil {
		return rate{}, 0, err
	}
	for _, a := range all {
		a.State = pando.ActualRunning
		if err := b.ActualLRPChanged(ctx, a); err != nil {
			return rate{}, 0, err
		}
	}
	// Several passes, so that the garbage they make is collected (and
	// counted) as it would be on a live platform.
	const passes = 5
	_, passCPU := measure(func() {
		for range passes {
			b.ConvergeOnce(ctx)
		}
	})
	return placed, passCPU / passes, nil
}

// memCell is a cell that only keeps count: what the auction reads.
type memCell struct {
	mu      sync.Mutex
	state   pando.CellState
	procs   map[string]int
	started int
}

func (c *memCell) ID() string { return c.state.ID }

func (c *memCell) State(context.Context) (pando.CellState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state
	s.InstancesPerProcess = make(map[string]int, len(c.procs))
	for k, v := range c.procs {
		s.InstancesPerProcess[k] = v
	}
	return s, nil
}

func (c *memCell) StartLRP(_ context.Context, lrp pando.DesiredLRP, _ int, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.UsedMemoryMB += lrp.MemoryMB
	c.state.UsedDiskMB += lrp.DiskMB
	c.state.UsedContainers++
	c.procs[lrp.ProcessGUID]++
	c.started++
	return nil
}

func (c *memCell) StopLRP(context.Context, string, string) error { return nil }
func (c *memCell) RunTask(context.Context, pando.Task) error     { return nil }
func (c *memCell) CancelTask(context.Context, string) error      { return nil }
func (c *memCell) Stats(_ context.Context, guid string) (pando.InstanceStats, error) {
	return pando.InstanceStats{InstanceGUID: guid}, nil
}

func medianOf(rs []rate, f func(rate) float64) float64 {
	s := make([]float64, len(rs))
	for i, r := range rs {
		s[i] = f(r)
	}
	sort.Float64s(s)
	return s[len(s)/2]
}

func medianDuration(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// processCPU is the CPU time (user + system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
