package simcell

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/container"
)

// forgettingReporter passes the cells' reports on, except those on the
// instances it was told to forget: their end never reaches the BBS (a
// report lost on the way, a cell that forgot to send it).
type forgettingReporter struct {
	pando.CellReporter
	mu      sync.Mutex
	forget  map[string]bool
	dropped []string
}

func (f *forgettingReporter) drops(guid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forget[guid] {
		f.dropped = append(f.dropped, guid)
		return true
	}
	return false
}

func (f *forgettingReporter) droppedOnes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dropped)
}

func (f *forgettingReporter) ActualLRPChanged(ctx context.Context, a pando.ActualLRP) error {
	if f.drops(a.InstanceGUID) {
		return nil
	}
	return f.CellReporter.ActualLRPChanged(ctx, a)
}

func (f *forgettingReporter) ActualLRPRemoved(ctx context.Context, processGUID, instanceGUID string) error {
	if f.drops(instanceGUID) {
		return nil
	}
	return f.CellReporter.ActualLRPRemoved(ctx, processGUID, instanceGUID)
}

// Issue 8 follow-up: of two cells, one loses an instance and its crash
// report never reaches the BBS, so the BBS still believes it RUNNING
// there. The cell's next sync does not list it: the BBS replaces it as a
// lost instance (crash count 1, FailureLost saying why, a CELL line in
// the app's log) and the replacement runs on some cell, within that one
// sync.
func TestSimulatedCells_anInstanceItsCellForgotComesBackWithinOneSync(t *testing.T) {
	boardLogs := &logSink{}
	b, ctx := runBoard(t, bbs.Config{Logs: boardLogs})
	rep := &forgettingReporter{CellReporter: b, forget: map[string]bool{}}
	c := newTestCluster(t, ctx, Config{MemoryMB: 4096, Reporter: rep, AddrBase: 83})
	cells, err := c.Add(2, nil, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DesireLRP(ctx, c.LRP("web", 4, 256)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running", 30*time.Second, func() (bool, string) {
		n, all := running(t, b, "web")
		return n == 4, fmt.Sprint(all)
	})
	// Each cell syncs once: its next sync carries a mark issued after
	// every start.
	for _, r := range cells {
		if err := r.SyncOnce(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	_, all := running(t, b, "web")
	victim := all[0]
	var owner int
	for k, r := range cells {
		if r.ID() == victim.CellID {
			owner = k
		}
	}
	rep.mu.Lock()
	rep.forget[victim.InstanceGUID] = true
	rep.mu.Unlock()
	var ctrID string
	for _, id := range c.Backend().IDs() {
		if strings.HasPrefix(id, "app-") && strings.Contains(id, victim.InstanceGUID) {
			ctrID = id
		}
	}
	if ctrID == "" {
		t.Fatalf("no container for %s in %v", victim.InstanceGUID, c.Backend().IDs())
	}
	if err := c.Backend().Exit(ctrID, container.ExitStatus{Code: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cell forgot the instance", 30*time.Second, func() (bool, string) {
		inv := cells[owner].Inventory()
		listed := slices.ContainsFunc(inv.Actuals, func(a pando.ActualLRP) bool { return a.InstanceGUID == victim.InstanceGUID }) ||
			slices.Contains(inv.Ending, victim.InstanceGUID)
		return !listed && len(rep.droppedOnes()) > 0, fmt.Sprint(inv.Actuals, inv.Ending)
	})
	if a := actualByIndex(t, b, victim.Index); a.InstanceGUID != victim.InstanceGUID || a.State != pando.ActualRunning {
		t.Fatalf("before the sync the BBS has %+v, want it still believing %s RUNNING", a, victim.InstanceGUID)
	}

	if err := cells[owner].SyncOnce(ctx, b); err != nil {
		t.Fatal(err)
	}
	var back pando.ActualLRP
	waitFor(t, "the index running again", 30*time.Second, func() (bool, string) {
		back = actualByIndex(t, b, victim.Index)
		return back.State == pando.ActualRunning && back.InstanceGUID != victim.InstanceGUID, fmt.Sprintf("%+v", back)
	})
	if back.CrashCount != 1 || back.Crash == nil || back.Crash.Kind != pando.FailureLost ||
		back.Crash.Detail != "instance was not reported by its cell "+victim.CellID {
		t.Errorf("replacement %+v, want crash count 1 after a lost instance", back)
	}
	if n, all := running(t, b, "web"); n != 4 {
		t.Errorf("%d running, want 4: %v", n, all)
	}
	if !boardLogs.contains("CELL Cell " + victim.CellID + " no longer reports instance " + victim.InstanceGUID) {
		t.Error("no CELL line in the app's log saying why the instance was replaced")
	}
	// The other cell's sync, and the owner's next, change nothing.
	for _, r := range cells {
		if err := r.SyncOnce(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if a := actualByIndex(t, b, victim.Index); a.InstanceGUID != back.InstanceGUID {
		t.Errorf("after more syncs index %d is %+v, want %s kept", victim.Index, a, back.InstanceGUID)
	}
}

// actualByIndex is web's primary instance of an index.
func actualByIndex(t testing.TB, b *bbs.BBS, index int) pando.ActualLRP {
	t.Helper()
	for _, a := range actuals(t, b, "web") {
		if a.Index == index {
			return a
		}
	}
	t.Fatalf("no instance of index %d", index)
	return pando.ActualLRP{}
}

// The race: cells that sync continuously while the BBS places, starts
// and stops instances on them never have one declared lost: a placement
// in flight during a sync, or accepted after the sync's mark, is not
// judged by it.
func TestSimulatedCells_placementsDuringSyncsAreNeverDeclaredLost(t *testing.T) {
	boardLogs := &logSink{}
	b, ctx := runBoard(t, bbs.Config{Logs: boardLogs})
	c := newTestCluster(t, ctx, Config{MemoryMB: 8192, Reporter: b, AddrBase: 82})
	cells, err := c.Add(2, nil, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	syncer := &countingSyncer{Syncer: b}
	for _, r := range cells {
		go r.RunSync(ctx, syncer, time.Millisecond)
	}
	if err := b.DesireLRP(ctx, c.LRP("web", 10, 64)); err != nil {
		t.Fatal(err)
	}
	for round, n := range []int{30, 5, 40} {
		start := syncer.n.Load()
		if err := b.UpdateDesiredLRP(ctx, "web", pando.DesiredLRPUpdate{Instances: &n}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("round %d: %d running", round, n), 60*time.Second, func() (bool, string) {
			got, all := running(t, b, "web")
			return got == n && len(all) == n, fmt.Sprint(got, " of ", len(all))
		})
		waitFor(t, "more syncs", 30*time.Second, func() (bool, string) {
			return syncer.n.Load() >= start+20, fmt.Sprint(syncer.n.Load() - start)
		})
		for _, a := range actuals(t, b, "web") {
			if a.Crash != nil || a.CrashCount != 0 {
				t.Fatalf("round %d: %s crashed (%+v): a placement was declared lost", round, a.InstanceGUID, a.Crash)
			}
		}
	}
	if boardLogs.contains("no longer reports instance") {
		t.Error("an instance was declared lost")
	}
}

// holdingReporter holds the crash report of one instance until release
// is closed (a report on its way while the cell syncs).
type holdingReporter struct {
	pando.CellReporter
	guid    atomic.Pointer[string]
	held    chan struct{}
	release chan struct{}
}

func (h *holdingReporter) ActualLRPChanged(ctx context.Context, a pando.ActualLRP) error {
	if g := h.guid.Load(); g != nil && a.InstanceGUID == *g && a.State == pando.ActualCrashed {
		close(h.held)
		<-h.release
	}
	return h.CellReporter.ActualLRPChanged(ctx, a)
}

// An instance that crashed and whose crash report is still on its way
// when its cell syncs is listed as ending, not declared lost: the BBS
// records the crash with its own reason once the report arrives.
func TestSimulatedCells_aCrashBeingReportedDuringASyncKeepsItsReason(t *testing.T) {
	b, ctx := runBoard(t, bbs.Config{})
	rep := &holdingReporter{CellReporter: b, held: make(chan struct{}), release: make(chan struct{})}
	c := newTestCluster(t, ctx, Config{MemoryMB: 4096, Reporter: rep, AddrBase: 81})
	cells, err := c.Add(1, nil, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	cell := cells[0]
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(rep.release) }) }
	t.Cleanup(release) // before the cluster's shutdown, on failure too
	if err := b.DesireLRP(ctx, c.LRP("web", 2, 256)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running", 30*time.Second, func() (bool, string) {
		n, all := running(t, b, "web")
		return n == 2, fmt.Sprint(all)
	})
	if err := cell.SyncOnce(ctx, b); err != nil {
		t.Fatal(err)
	}
	victim := actualByIndex(t, b, 0)
	rep.guid.Store(&victim.InstanceGUID)
	if err := c.Backend().Exit("app-"+victim.InstanceGUID, container.ExitStatus{Code: 3}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rep.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the crash was not reported")
	}
	inv := cell.Inventory()
	if !slices.Contains(inv.Ending, victim.InstanceGUID) {
		t.Fatalf("inventory %+v does not list %s as ending", inv, victim.InstanceGUID)
	}
	if err := cell.SyncOnce(ctx, b); err != nil {
		t.Fatal(err)
	}
	if a := actualByIndex(t, b, 0); a.InstanceGUID != victim.InstanceGUID || a.Crash != nil {
		t.Fatalf("after the sync index 0 is %+v, want %s untouched until its report arrives", a, victim.InstanceGUID)
	}
	release()
	waitFor(t, "the crash recorded", 30*time.Second, func() (bool, string) {
		a := actualByIndex(t, b, 0)
		return a.CrashCount == 1 && a.InstanceGUID != victim.InstanceGUID, fmt.Sprintf("%+v", a)
	})
	if a := actualByIndex(t, b, 0); a.Crash == nil || a.Crash.Kind != pando.FailureExited || a.Crash.ExitCode != 3 {
		t.Errorf("index 0 %+v, want the crash's own reason (exited with 3)", a.Crash)
	}
}
