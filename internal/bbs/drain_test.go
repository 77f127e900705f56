package bbs

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func TestDrainCell_keepsInstancesUntilReplacementsRun(t *testing.T) {
	h := newHarness(t, Config{})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.desire("web", 1, 1, 256)
	orig := h.actual("web", 0)
	h.report(orig, pando.ActualRunning)
	b := newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(b)
	h.run()

	if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	starts := b.startCalls()
	if len(starts) != 1 || starts[0].Index != 0 {
		t.Fatalf("replacement starts on cell-b: %+v", starts)
	}
	// The original still serves while the replacement starts.
	if got := h.actual("web", 0); got.InstanceGUID != orig.InstanceGUID || got.State != pando.ActualRunning {
		t.Fatalf("visible instance %+v, want the running original", got)
	}
	if len(a.stopCalls()) != 0 {
		t.Fatal("original stopped before its replacement runs")
	}

	repl := pando.ActualLRP{ProcessGUID: "web", Index: 0, InstanceGUID: starts[0].InstanceGUID, CellID: "cell-b"}
	h.report(repl, pando.ActualRunning)

	waitFor(t, "original stopped", func() bool { return slices.Contains(a.stopCalls(), orig.InstanceGUID) })
	if got := h.actuals("web"); len(got) != 1 || got[0].InstanceGUID != repl.InstanceGUID {
		t.Errorf("after evacuation: %v", describe(got))
	}

	// New work avoids the draining cell.
	h.desire("api", 1, 1, 256)
	if got := h.actual("api", 0); got.CellID != "cell-b" {
		t.Errorf("placed on %s", got.CellID)
	}
}

func TestDrainCell_deadlineStopsOriginals(t *testing.T) {
	h := newHarness(t, Config{})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.desire("web", 1, 1, 256)
	orig := h.actual("web", 0)
	h.report(orig, pando.ActualRunning)
	// cell-b takes the replacement but never runs it.
	b := newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(b)

	if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	if len(b.startCalls()) != 1 {
		t.Fatalf("replacement starts on cell-b: %+v", b.startCalls())
	}
	if got := h.actual("web", 0); got.InstanceGUID != orig.InstanceGUID {
		t.Fatalf("visible %+v", got)
	}

	h.clock.Advance(DefaultEvacuationTimeout - time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	if slices.Contains(a.stopCalls(), orig.InstanceGUID) {
		t.Fatal("original stopped before the deadline while its replacement starts")
	}
	h.clock.Advance(2 * time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	if !slices.Contains(a.stopCalls(), orig.InstanceGUID) {
		t.Errorf("original not stopped after the deadline: %v", a.stopCalls())
	}
}

// logRecorder is a pando.LogSink that keeps what it is given.
type logRecorder struct {
	mu    sync.Mutex
	lines []pando.LogEnvelope
}

func (l *logRecorder) Emit(e pando.LogEnvelope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, e)
}

func (l *logRecorder) all() []pando.LogEnvelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func TestDrainCell_stopsInstancesNoOtherCellCanTake(t *testing.T) {
	tests := []struct {
		name   string
		others func(h *harness)
		reason string
	}{
		{"lone cell", func(h *harness) {}, "no healthy cells: every cell is draining"},
		{"other cell full", func(h *harness) { h.bbs.RegisterCell(newFakeCell("cell-b", 128)) }, "insufficient resources: memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logRecorder{}
			h := newHarness(t, Config{Logs: logs})
			a := newFakeCell("cell-a", 4096)
			h.bbs.RegisterCell(a)
			err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", AppGUID: "app-1", Revision: 1,
				Instances: 2, MemoryMB: 256, DiskMB: 256, Stack: "cflinuxfs4", Routes: []string{"web.localhost"}})
			if err != nil {
				t.Fatal(err)
			}
			origs := h.actuals("web")
			for _, o := range origs {
				h.report(o, pando.ActualRunning)
			}
			tt.others(h)
			h.run()
			events := h.subscribe(h.ctx)

			if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
				t.Fatal(err)
			}
			// The originals leave the routing table at once: each index
			// shows its replacement, UNCLAIMED with the reason.
			for _, got := range h.actuals("web") {
				if got.State != pando.ActualUnclaimed || !strings.HasPrefix(got.PlacementError, tt.reason) {
					t.Errorf("index %d: %+v, want UNCLAIMED with %q", got.Index, got, tt.reason)
				}
			}
			removed := map[string]bool{}
			for len(removed) < len(origs) {
				select {
				case ev := <-events:
					if ev.Type == pando.EventActualLRPRemoved {
						removed[ev.Actual.InstanceGUID] = true
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("removal events for the originals: got %v", removed)
				}
			}
			// Their in-flight requests get the grace, then they stop.
			if len(a.stopCalls()) != 0 {
				t.Fatalf("stopped before the grace: %v", a.stopCalls())
			}
			waitFor(t, "the stop timer", func() bool {
				return h.clock.hasWaiter(h.clock.Now().Add(DefaultStrandedStopGrace))
			})
			h.clock.Advance(DefaultStrandedStopGrace)
			waitFor(t, "originals stopped", func() bool {
				return slices.Contains(a.stopCalls(), origs[0].InstanceGUID) &&
					slices.Contains(a.stopCalls(), origs[1].InstanceGUID)
			})
			var said []string
			for _, l := range logs.all() {
				if l.SourceID == "app-1" && l.SourceType == pando.LogSourceCell {
					said = append(said, l.InstanceID+" "+string(l.Payload))
				}
			}
			if len(said) != 2 || !strings.Contains(said[0], "no other cell can take instance") ||
				!strings.Contains(said[0], tt.reason) {
				t.Errorf("CELL lines %q", said)
			}

			// A cell that comes takes the work.
			c := newFakeCell("cell-c", 4096)
			h.bbs.RegisterCell(c)
			waitFor(t, "replacements placed on cell-c", func() bool { return len(c.startCalls()) == 2 })
		})
	}
}

func TestDrainCell_unknownCell(t *testing.T) {
	h := newHarness(t, Config{})
	if err := h.bbs.DrainCell(h.ctx, "nope"); !pando.IsNotFound(err) {
		t.Errorf("got %v", err)
	}
}

// An undrained cell takes new work again, and what waited for a cell
// because every one was draining is placed on it.
func TestUndrainCell_takesWorkAgain(t *testing.T) {
	h := newHarness(t, Config{})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.run() // places what an undrain lets in, as after a cell registers
	if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	h.desire("web", 1, 1, 256)
	if got := h.actual("web", 0); got.CellID != "" || got.PlacementError == "" {
		t.Fatalf("placed while the only cell drains: %+v", got)
	}
	if err := h.bbs.UndrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	states, err := h.bbs.Cells(h.ctx)
	if err != nil || len(states) != 1 || states[0].Draining || states[0].State != pando.CellHealthy {
		t.Fatalf("cells after undrain: %+v, %v", states, err)
	}
	waitFor(t, "waiting instance placed on the undrained cell", func() bool { return len(a.startCalls()) == 1 })
	// Undraining again does nothing; an unknown cell is not found.
	if err := h.bbs.UndrainCell(h.ctx, "cell-a"); err != nil {
		t.Errorf("undrain again: %v", err)
	}
	if err := h.bbs.UndrainCell(h.ctx, "nope"); !pando.IsNotFound(err) {
		t.Errorf("undrain unknown: %v", err)
	}
}
