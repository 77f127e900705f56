package bbs

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func TestDesireLRP_spreadsInstancesOverCells(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := newFakeCell("cell-a", 4096), newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(a)
	h.bbs.RegisterCell(b)

	h.desire("web", 1, 3, 256)

	na, nb := len(a.startCalls()), len(b.startCalls())
	if na+nb != 3 || na == 0 || nb == 0 {
		t.Fatalf("starts: cell-a %d, cell-b %d; want 3 spread over both", na, nb)
	}
	got := h.actuals("web")
	guids := map[string]bool{}
	for i, a := range got {
		if a.Index != i || a.State != pando.ActualUnclaimed || a.CellID == "" || a.Revision != 1 {
			t.Errorf("instance %d: %+v", i, a)
		}
		guids[a.InstanceGUID] = true
	}
	if len(got) != 3 || len(guids) != 3 {
		t.Fatalf("want 3 instances with distinct guids, got %v", describe(got))
	}
}

func TestDesireLRP_scaleDownStopsHighestIndices(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 3, 256)
	before := h.actuals("web")

	h.desire("web", 1, 1, 256)

	stops := c.stopCalls()
	slices.Sort(stops)
	want := []string{before[1].InstanceGUID, before[2].InstanceGUID}
	slices.Sort(want)
	if !slices.Equal(stops, want) {
		t.Errorf("stopped %v, want indices 1 and 2 %v", stops, want)
	}
	after := h.actuals("web")
	if len(after) != 1 || after[0].InstanceGUID != before[0].InstanceGUID {
		t.Errorf("after scale down: %v", describe(after))
	}

	h.desire("web", 1, 2, 256)
	starts := c.startCalls()
	if last := starts[len(starts)-1]; len(starts) != 4 || last.Index != 1 {
		t.Errorf("scale up started %+v", starts)
	}
}

func TestDesireLRP_revisionChangeReplacesInstances(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 2, 256)
	old := h.actuals("web")

	h.desire("web", 2, 2, 256)

	stops := c.stopCalls()
	if len(stops) != 2 || !slices.Contains(stops, old[0].InstanceGUID) || !slices.Contains(stops, old[1].InstanceGUID) {
		t.Errorf("stops %v, want both old instances", stops)
	}
	starts := c.startCalls()
	if len(starts) != 4 || starts[2].Revision != 2 || starts[3].Revision != 2 {
		t.Errorf("starts %+v, want two more of revision 2", starts)
	}
	for _, a := range h.actuals("web") {
		if a.Revision != 2 || a.InstanceGUID == old[a.Index].InstanceGUID {
			t.Errorf("instance not replaced: %+v", a)
		}
	}
}

func TestDesireLRP_metadataChangeUpdatesInPlace(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 1, 256)
	events := h.subscribe(h.ctx)

	d, _ := h.desiredLRP("web")
	d.Routes = []string{"web.localhost", "www.localhost"}
	if err := h.bbs.DesireLRP(h.ctx, d); err != nil {
		t.Fatal(err)
	}

	e := <-events
	if e.Type != pando.EventDesiredLRPChanged || len(e.Desired.Routes) != 2 {
		t.Errorf("event %+v, want desired_changed with two routes", e)
	}
	if len(c.startCalls()) != 1 || len(c.stopCalls()) != 0 {
		t.Errorf("instances touched: starts %d stops %d", len(c.startCalls()), len(c.stopCalls()))
	}
	got, _ := h.desiredLRP("web")
	if !slices.Equal(got.Routes, d.Routes) {
		t.Errorf("routes %v", got.Routes)
	}
}

func TestRemoveDesiredLRP_stopsAllInstances(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 2, 256)

	if err := h.bbs.RemoveDesiredLRP(h.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if len(c.stopCalls()) != 2 || len(h.actuals("web")) != 0 {
		t.Errorf("stops %v, actuals %v", c.stopCalls(), describe(h.actuals("web")))
	}
	if _, ok := h.desiredLRP("web"); ok {
		t.Error("desired LRP still there")
	}
	if err := h.bbs.RemoveDesiredLRP(h.ctx, "web"); !pando.IsNotFound(err) {
		t.Errorf("second remove: %v, want not found", err)
	}
}

func TestDesireLRP_rejectsInvalid(t *testing.T) {
	h := newHarness(t, Config{})
	for _, d := range []pando.DesiredLRP{{}, {ProcessGUID: "x", Instances: -1}} {
		if err := h.bbs.DesireLRP(h.ctx, d); pando.ErrorKindOf(err) != pando.EInvalid {
			t.Errorf("DesireLRP(%+v) = %v, want invalid", d, err)
		}
	}
}

func TestPlacementFailure_recordedAndRetriedWhenCapacityAppears(t *testing.T) {
	h := newHarness(t, Config{})
	small := newFakeCell("cell-a", 256)
	h.bbs.RegisterCell(small)

	h.desire("web", 1, 1, 512)

	a := h.actual("web", 0)
	if a.State != pando.ActualUnclaimed || a.PlacementError != "insufficient resources: memory" || a.CellID != "" {
		t.Fatalf("instance %+v, want UNCLAIMED with placement error", a)
	}
	if len(small.startCalls()) != 0 {
		t.Fatal("started on a cell without room")
	}

	small.setCapacity(1024)
	h.bbs.ConvergeOnce(h.ctx)

	a = h.actual("web", 0)
	if a.PlacementError != "" || a.CellID != "cell-a" || len(small.startCalls()) != 1 {
		t.Errorf("after convergence: %+v, starts %d", a, len(small.startCalls()))
	}
}

func TestStartFailure_returnsInstanceToAuction(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	c.startErr = pando.Errorf(pando.EUnavailable, "disk full")
	h.bbs.RegisterCell(c)

	h.desire("web", 1, 1, 256)
	if a := h.actual("web", 0); a.CellID != "" || a.PlacementError == "" {
		t.Fatalf("instance %+v, want back in the auction with a reason", a)
	}

	c.mu.Lock()
	c.startErr = nil
	c.mu.Unlock()
	h.bbs.ConvergeOnce(h.ctx)
	if a := h.actual("web", 0); a.CellID != "cell-a" || len(c.startCalls()) != 1 {
		t.Errorf("not retried: %+v", a)
	}
}

func TestUnregisterCell_reschedulesOnOtherCell(t *testing.T) {
	logs := &logRecorder{}
	h := newHarness(t, Config{Logs: logs})
	a, b := newFakeCell("cell-a", 4096), newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(a)
	h.bbs.RegisterCell(b)
	h.desire("web", 1, 2, 256)
	var onA []string
	for _, in := range h.actuals("web") {
		h.report(in, pando.ActualRunning)
		if in.CellID == "cell-a" {
			onA = append(onA, "Cell cell-a left or restarted: instance "+in.InstanceGUID+
				" is gone with it; starting a replacement")
		}
	}
	h.run()

	h.bbs.UnregisterCell("cell-a")
	var lines []string
	for _, l := range logs.all() {
		if l.SourceType == pando.LogSourceCell {
			lines = append(lines, string(l.Payload))
		}
	}
	if len(onA) == 0 || !slices.Equal(lines, onA) {
		t.Errorf("CELL lines %q, want one per instance cell-a had: %q", lines, onA)
	}

	waitFor(t, "both instances on cell-b", func() bool {
		got := h.actuals("web")
		return len(got) == 2 && got[0].CellID == "cell-b" && got[1].CellID == "cell-b"
	})
	if n := len(b.startCalls()); n != 2 {
		t.Errorf("cell-b starts %d, want 2", n)
	}
	if cells, err := h.bbs.Cells(h.ctx); err != nil || len(cells) != 1 {
		t.Errorf("cells %v, %v", cells, err)
	}
}

func TestConvergeOnce_expiredPresenceReschedules(t *testing.T) {
	logs := &logRecorder{}
	h := newHarness(t, Config{CellPresenceTTL: 15 * time.Second, Logs: logs})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.desire("web", 1, 1, 256)
	h.report(h.actual("web", 0), pando.ActualRunning)
	lost := h.actual("web", 0)
	if err := h.bbs.HeartbeatCell("cell-a"); err != nil {
		t.Fatal(err)
	}
	b := newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(b)

	h.clock.Advance(10 * time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 0); got.CellID != "cell-a" {
		t.Fatalf("moved before the TTL: %+v", got)
	}

	h.clock.Advance(6 * time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 0); got.CellID != "cell-b" || got.State != pando.ActualUnclaimed {
		t.Errorf("after expiry: %+v", got)
	}
	if _, ok := h.bbs.Cell("cell-a"); ok {
		t.Error("expired cell still registered")
	}
	// The app's log says why its instance starts again.
	want := "Cell cell-a is lost (no presence renewal for 15s): instance " + lost.InstanceGUID +
		" is gone with it; starting a replacement"
	var got []string
	for _, l := range logs.all() {
		if l.SourceID == "app-web" && l.SourceType == pando.LogSourceCell && l.InstanceID == "0" {
			got = append(got, string(l.Payload))
		}
	}
	if !slices.Contains(got, want) {
		t.Errorf("the app's CELL lines %q, want %q", got, want)
	}
}

func TestRun_expiredPresenceReplacesAtTheDeadline(t *testing.T) {
	// Convergence is an hour away: only the presence deadline moves it.
	h := newHarness(t, Config{CellPresenceTTL: 15 * time.Second})
	a := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(a)
	h.desire("web", 1, 1, 256)
	h.report(h.actual("web", 0), pando.ActualRunning)
	h.run()
	beat := h.clock.Now()
	if err := h.bbs.HeartbeatCell("cell-a"); err != nil {
		t.Fatal(err)
	}
	b := newFakeCell("cell-b", 4096)
	h.bbs.RegisterCell(b)
	waitFor(t, "the presence timer", func() bool { return h.clock.hasWaiter(beat.Add(15 * time.Second)) })

	h.clock.Advance(15 * time.Second)
	waitFor(t, "the instance placed on cell-b", func() bool { return len(b.startCalls()) == 1 })
	if got := h.actual("web", 0); got.CellID != "cell-b" {
		t.Errorf("after expiry: %+v", got)
	}
	if _, ok := h.bbs.Cell("cell-a"); ok {
		t.Error("expired cell still registered")
	}
}

func TestConvergeOnce_restartsStuckClaimed(t *testing.T) {
	h := newHarness(t, Config{StuckMargin: time.Minute})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 1, 256)
	first := h.actual("web", 0)
	h.report(first, pando.ActualClaimed)

	h.clock.Advance(DefaultStartTimeout + time.Minute)
	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 0); got.InstanceGUID != first.InstanceGUID {
		t.Fatal("replaced before start timeout + margin")
	}

	h.clock.Advance(time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	got := h.actual("web", 0)
	if got.InstanceGUID == first.InstanceGUID || len(c.startCalls()) != 2 {
		t.Errorf("stuck instance not replaced: %+v", got)
	}
	if !slices.Contains(c.stopCalls(), first.InstanceGUID) {
		t.Errorf("stuck instance not stopped: %v", c.stopCalls())
	}
}

// An instance its cell holds back (waiting for a start slot, in its
// Details) is not stuck however long it waits; its start timeout runs
// from when it stops waiting.
func TestConvergeOnce_anInstanceWaitingForAStartSlotIsNotStuck(t *testing.T) {
	h := newHarness(t, Config{StuckMargin: time.Minute})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 1, 256)
	first := h.actual("web", 0)
	h.report(first, pando.ActualClaimed)
	waiting := pando.ActualLRP{ProcessGUID: "web", InstanceGUID: first.InstanceGUID, CellID: "cell-a",
		State: pando.ActualClaimed, Details: "waiting for a start slot on cell cell-a (40 ahead)"}
	if err := h.bbs.ActualLRPChanged(h.ctx, waiting); err != nil {
		t.Fatal(err)
	}
	if got := h.actual("web", 0); got.Details != waiting.Details {
		t.Errorf("details %q, want the cell's %q", got.Details, waiting.Details)
	}
	h.clock.Advance(10 * (DefaultStartTimeout + time.Minute))
	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 0); got.InstanceGUID != first.InstanceGUID {
		t.Fatal("replaced while its cell said it waits for a start slot")
	}

	h.report(first, pando.ActualClaimed) // its start begins
	if got := h.actual("web", 0); got.Details != "" {
		t.Errorf("details %q once the start began, want none", got.Details)
	}
	h.clock.Advance(DefaultStartTimeout + time.Minute)
	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 0); got.InstanceGUID != first.InstanceGUID {
		t.Fatal("replaced before start timeout + margin from the start")
	}
	h.clock.Advance(time.Second)
	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 0); got.InstanceGUID == first.InstanceGUID {
		t.Error("stuck after its start began, but not replaced")
	}
}

func TestConvergeOnce_createsMissingAndStopsUndesired(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 2, 256)
	gone := h.actual("web", 1)
	// The cell lost the instance.
	if err := h.bbs.ActualLRPRemoved(h.ctx, "web", gone.InstanceGUID); err != nil {
		t.Fatal(err)
	}
	if n := len(h.actuals("web")); n != 1 {
		t.Fatalf("%d instances after removal", n)
	}

	h.bbs.ConvergeOnce(h.ctx)
	if got := h.actual("web", 1); got.InstanceGUID == gone.InstanceGUID || got.CellID != "cell-a" {
		t.Errorf("missing index not restarted: %+v", got)
	}
}

func TestActualLRPChanged_stopsUndesiredInstance(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.run()

	h.report(pando.ActualLRP{ProcessGUID: "gone", InstanceGUID: "stale-guid", CellID: "cell-a"}, pando.ActualRunning)

	waitFor(t, "stop of the stale instance", func() bool { return slices.Contains(c.stopCalls(), "stale-guid") })
	if len(h.actuals("gone")) != 0 {
		t.Error("stale report created state")
	}
}

func TestCells_stateOfEachCell(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	h.bbs.RegisterCell(newFakeCell("cell-b", 2048))
	mute := newFakeCell("cell-c", 1024)
	mute.stateErr = errors.New("connection refused")
	h.bbs.RegisterCell(mute)
	if err := h.bbs.DrainCell(h.ctx, "cell-b"); err != nil {
		t.Fatal(err)
	}
	cells, err := h.bbs.Cells(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cells {
		got = append(got, fmt.Sprintf("%s %s %d", c.ID, c.State, c.TotalMemoryMB))
	}
	want := []string{"cell-a healthy 4096", "cell-b draining 2048", "cell-c lost 0"}
	if !slices.Equal(got, want) {
		t.Errorf("cells %v, want %v", got, want)
	}
}
