package bbs

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// unreachableStops is a simulated cell whose rep does not answer the
// first stops it is sent (restarting, or its network briefly down).
type unreachableStops struct {
	*runtimetest.Cell
	mu    sync.Mutex
	fails int
	calls int
}

func (c *unreachableStops) StopLRP(ctx context.Context, processGUID, instanceGUID string) error {
	c.mu.Lock()
	c.calls++
	fail := c.fails > 0
	if fail {
		c.fails--
	}
	c.mu.Unlock()
	if fail {
		return pando.Errorf(pando.EUnavailable, "cell %s: connection refused", c.ID())
	}
	return c.Cell.StopLRP(ctx, processGUID, instanceGUID)
}

func (c *unreachableStops) stopCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func (c *fakeCell) failStops(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopErrs = n
}

// laterStopsFor lists the instance guids of the stops the BBS still
// holds for cellID.
func (h *harness) laterStopsFor(cellID string) []string {
	h.bbs.mu.Lock()
	defer h.bbs.mu.Unlock()
	var out []string
	for _, s := range h.bbs.laterStops {
		if s.cell.ID() == cellID {
			out = append(out, s.instanceGUID)
		}
	}
	return out
}

// Issue 8: a cell cut off long enough for its instances to be placed
// elsewhere keeps running them (it is never told to stop on its own);
// when it comes back and reports them, each is stopped on it, even when
// its rep does not answer the first stops, and no index runs twice.
func TestConverge_returningCellIsToldToStopTheInstancesPlacedElsewhere(t *testing.T) {
	h := newHarness(t, Config{CellPresenceTTL: 10 * time.Second})
	a := &unreachableStops{Cell: runtimetest.NewCell("cell-a", 4096), fails: 2}
	b := runtimetest.NewCell("cell-b", 4096)
	a.Reporter, b.Reporter = h.bbs, h.bbs
	h.bbs.RegisterCell(a)
	if err := h.bbs.HeartbeatCell("cell-a"); err != nil {
		t.Fatal(err)
	}
	err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", Revision: 1, Instances: 2,
		MemoryMB: 256, DiskMB: 256, Stack: "host", Routes: []string{"web.localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	olds := h.actuals("web")
	for _, o := range olds {
		if o.State != pando.ActualRunning || o.CellID != "cell-a" {
			t.Fatalf("before the partition: %v", describe(olds))
		}
	}
	h.bbs.RegisterCell(b)

	// cell-a is cut off: a convergence pass past its presence deadline
	// places its instances on cell-b.
	h.clock.Advance(10 * time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	news := h.actuals("web")
	for i, n := range news {
		if n.State != pando.ActualRunning || n.CellID != "cell-b" || !b.Running(n.InstanceGUID) {
			t.Fatalf("after the partition: %v", describe(news))
		}
		if !a.Running(olds[i].InstanceGUID) || a.stopCalls() != 0 {
			t.Fatal("the cut-off cell's instances were stopped while nobody could reach it")
		}
	}

	// Back, it learns it was forgotten and reports what it still runs.
	h.run()
	h.bbs.RegisterCell(a)
	if err := h.bbs.CellSynced(h.ctx, "cell-a", pando.CellInventory{Actuals: olds}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first stops (refused)", func() bool { return a.stopCalls() == 2 })
	waitFor(t, "the retry timer", func() bool { return h.clock.hasWaiter(h.clock.Now().Add(stopRetryMin)) })
	h.clock.Advance(stopRetryMin)
	waitFor(t, "the stale instances stopped on cell-a", func() bool {
		return !a.Running(olds[0].InstanceGUID) && !a.Running(olds[1].InstanceGUID)
	})
	if got := a.stopCalls(); got != 4 {
		t.Errorf("%d stop calls to cell-a, want 2 refused and 2 delivered", got)
	}
	if got := h.laterStopsFor("cell-a"); len(got) != 0 {
		t.Errorf("stops still held for cell-a after it confirmed them: %v", got)
	}
	// One instance per index, the ones placed during the partition.
	got := h.actuals("web")
	if len(got) != 2 || got[0].InstanceGUID != news[0].InstanceGUID || got[1].InstanceGUID != news[1].InstanceGUID {
		t.Errorf("after the return: %v, want %v", describe(got), describe(news))
	}
}

// Stops convergence decides on are delivered even when the cell does not
// answer the first call.
func TestConvergeOnce_stopIsRetriedUntilTheCellConfirms(t *testing.T) {
	tests := []struct {
		name string
		// found sets up an instance convergence must stop on cell-a and
		// returns its guid.
		found func(h *harness, a *fakeCell) string
	}{
		{"stuck instance placed again", func(h *harness, a *fakeCell) string {
			h.desire("web", 1, 1, 256)
			first := h.actual("web", 0)
			h.report(first, pando.ActualClaimed)
			h.clock.Advance(DefaultStartTimeout + DefaultStuckMargin + time.Second)
			return first.InstanceGUID
		}},
		{"evacuation deadline passed", func(h *harness, a *fakeCell) string {
			h.desire("web", 1, 1, 256)
			orig := h.actual("web", 0)
			h.report(orig, pando.ActualRunning)
			h.bbs.RegisterCell(newFakeCell("cell-b", 4096)) // takes the replacement, never runs it
			if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
				h.t.Fatal(err)
			}
			h.clock.Advance(DefaultEvacuationTimeout + time.Second)
			return orig.InstanceGUID
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			a := newFakeCell("cell-a", 4096)
			h.bbs.RegisterCell(a)
			guid := tt.found(h, a)
			h.run()
			a.failStops(1)

			h.bbs.ConvergeOnce(h.ctx)
			if got := a.stopCalls(); !slices.Contains(got, guid) {
				t.Fatalf("no stop for %s: %v", guid, got)
			}
			a.mu.Lock()
			_, stillThere := a.instances[guid]
			a.mu.Unlock()
			if !stillThere {
				t.Fatal("the refused stop stopped the instance")
			}
			waitFor(t, "the retry timer", func() bool { return h.clock.hasWaiter(h.clock.Now().Add(stopRetryMin)) })
			h.clock.Advance(stopRetryMin)
			waitFor(t, "the instance stopped", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				_, ok := a.instances[guid]
				return !ok
			})
			if got := h.laterStopsFor("cell-a"); len(got) != 0 {
				t.Errorf("stops still held after the cell confirmed: %v", got)
			}
		})
	}
}

// A stop is retried with a growing backoff while the cell is registered
// and does not answer; it ends when the cell is gone or reports the
// instance gone.
func TestStops_backOffAndEndWhenTheCellOrTheInstanceIsGone(t *testing.T) {
	for _, end := range []string{"cell unregistered", "instance reported gone"} {
		t.Run(end, func(t *testing.T) {
			h := newHarness(t, Config{})
			a := newFakeCell("cell-a", 4096)
			h.bbs.RegisterCell(a)
			h.desire("web", 1, 2, 256)
			extra := h.actual("web", 1)
			h.run()
			a.failStops(1000)

			h.desire("web", 1, 1, 256) // scale down: index 1 must go
			for attempt := 1; attempt <= 3; attempt++ {
				waitFor(t, "the stop call", func() bool { return len(a.stopCalls()) == attempt })
				delay := stopRetryDelay(attempt)
				waitFor(t, "the retry timer", func() bool { return h.clock.hasWaiter(h.clock.Now().Add(delay)) })
				h.clock.Advance(delay)
			}
			waitFor(t, "the 4th stop call", func() bool { return len(a.stopCalls()) == 4 })
			waitFor(t, "the retry held", func() bool { return len(h.laterStopsFor("cell-a")) == 1 })
			// The cell reports the instance again: stopped again, still
			// one retry held.
			h.report(extra, pando.ActualRunning)
			waitFor(t, "the 5th stop call", func() bool { return len(a.stopCalls()) == 5 })
			if got := h.laterStopsFor("cell-a"); len(got) != 1 {
				t.Fatalf("retries held %v, want one", got)
			}

			switch end {
			case "cell unregistered":
				h.bbs.UnregisterCell("cell-a")
			default:
				if err := h.bbs.ActualLRPRemoved(h.ctx, "web", extra.InstanceGUID); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.laterStopsFor("cell-a"); len(got) != 0 {
				t.Errorf("stops still held: %v", got)
			}
			if _, ok := h.bbs.nextLaterStop(); ok {
				t.Error("a stop timer is still armed")
			}
		})
	}
}

func TestStopRetryDelay(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := stopRetryDelay(i + 1); got != w {
			t.Errorf("stopRetryDelay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := stopRetryDelay(1000); got != stopRetryMax {
		t.Errorf("stopRetryDelay(1000) = %v, want %v", got, stopRetryMax)
	}
}
