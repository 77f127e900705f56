package simcell

import (
	"context"
	"fmt"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/cell"
)

func actuals(t testing.TB, b *bbs.BBS, guid string) []pando.ActualLRP {
	t.Helper()
	all, err := b.ActualLRPs(context.Background(), guid)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func running(t testing.TB, b *bbs.BBS, guid string) (n int, all []pando.ActualLRP) {
	t.Helper()
	all = actuals(t, b, guid)
	for _, a := range all {
		if a.State == pando.ActualRunning {
			n++
		}
	}
	return n, all
}

// startCluster runs a BBS and n simulated cells in three zones reporting
// to it, all stopped when the test ends.
func startCluster(t testing.TB, n, memMB int) (*bbs.BBS, *Cluster) {
	t.Helper()
	b, ctx := runBoard(t, bbs.Config{})
	c := newTestCluster(t, ctx, Config{Dir: t.TempDir(), MemoryMB: memMB, Zones: []string{"z1", "z2", "z3"}, Reporter: b})
	if _, err := c.Add(n, nil, b.RegisterCell); err != nil {
		t.Fatal(err)
	}
	return b, c
}

func TestSimulatedCells_placeAndRunThroughTheBBS(t *testing.T) {
	b, c := startCluster(t, 100, 2048)
	zoneOf := map[string]string{}
	for _, r := range c.Cells() {
		s, err := r.State(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		zoneOf[r.ID()] = s.Zone
	}

	const procs, per = 50, 6
	for p := range procs {
		if err := b.DesireLRP(t.Context(), c.LRP(fmt.Sprintf("proc-%02d", p), per, 256)); err != nil {
			t.Fatal(err)
		}
	}
	for p := range procs {
		guid := fmt.Sprintf("proc-%02d", p)
		waitFor(t, guid+" running", time.Minute, func() (bool, string) {
			n, all := running(t, b, guid)
			return n == per, fmt.Sprint(all)
		})
		// Spread: two instances per zone, each on a cell of its own.
		perZone, cells := map[string]int{}, map[string]bool{}
		for _, a := range actuals(t, b, guid) {
			perZone[zoneOf[a.CellID]]++
			cells[a.CellID] = true
		}
		if perZone["z1"] != 2 || perZone["z2"] != 2 || perZone["z3"] != 2 || len(cells) != per {
			t.Errorf("%s: per zone %v on %d cells, want 2 per zone on %d cells", guid, perZone, len(cells), per)
		}
	}
	// The cells agree with the BBS.
	total := 0
	for _, r := range c.Cells() {
		s, _ := r.State(t.Context())
		total += s.UsedContainers
		if s.UsedMemoryMB > s.TotalMemoryMB {
			t.Errorf("cell %s over capacity: %d of %d MB", r.ID(), s.UsedMemoryMB, s.TotalMemoryMB)
		}
	}
	if total != procs*per {
		t.Errorf("cells hold %d containers, want %d", total, procs*per)
	}
}

func TestSimulatedCells_tooBigWaitsForABigEnoughCell(t *testing.T) {
	b, c := startCluster(t, 10, 1024)
	if err := b.DesireLRP(t.Context(), c.LRP("huge", 1, 4096)); err != nil {
		t.Fatal(err)
	}
	if a := actuals(t, b, "huge")[0]; a.State != pando.ActualUnclaimed || a.PlacementError != "insufficient resources: memory" {
		t.Fatalf("instance %+v, want UNCLAIMED for lack of memory", a)
	}

	big, err := c.Add(1, func(cfg *cell.Config) { cfg.TotalMemoryMB = 8192 }, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance running on the new cell", 30*time.Second, func() (bool, string) {
		all := actuals(t, b, "huge")
		return all[0].State == pando.ActualRunning && all[0].CellID == big[0].ID(), fmt.Sprint(all)
	})
}

func TestSimulatedCells_freedCapacityPlacesWaitingWork(t *testing.T) {
	b, c := startCluster(t, 2, 1024)
	if err := b.DesireLRP(t.Context(), c.LRP("first", 4, 512)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first running", 30*time.Second, func() (bool, string) {
		n, all := running(t, b, "first")
		return n == 4, fmt.Sprint(all)
	})
	if err := b.DesireLRP(t.Context(), c.LRP("second", 2, 512)); err != nil {
		t.Fatal(err)
	}
	if a := actuals(t, b, "second")[0]; a.PlacementError != "insufficient resources: memory" {
		t.Fatalf("instance %+v, want no room", a)
	}

	// Scaling the first down frees room on the cells, which report the
	// teardown: the second is placed then, without a convergence pass.
	first := c.LRP("first", 2, 512)
	if err := b.DesireLRP(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second running", 30*time.Second, func() (bool, string) {
		n, all := running(t, b, "second")
		return n == 2, fmt.Sprint(all)
	})
}

// runBoard runs a BBS until the test ends; clusters made afterwards with
// newTestCluster shut down before it stops (cleanups run last first).
func runBoard(t testing.TB, cfg bbs.Config) (*bbs.BBS, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := bbs.New(cfg)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bbs Run: %v", err)
		}
	})
	return b, ctx
}

// newTestCluster makes a cluster (in a temp dir unless cfg names one) that
// shuts down when the test ends.
func newTestCluster(t testing.TB, ctx context.Context, cfg Config) *Cluster {
	t.Helper()
	return NewForTest(t, ctx, cfg)
}
