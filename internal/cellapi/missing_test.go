package cellapi

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/simcell"
)

// muteReporter passes a cell's reports to the server until muted: from
// then on the ends of instances are lost on the way.
type muteReporter struct {
	pando.CellReporter
	muted atomic.Bool
}

func (m *muteReporter) ActualLRPChanged(ctx context.Context, a pando.ActualLRP) error {
	if m.muted.Load() && a.State == pando.ActualCrashed {
		return nil
	}
	return m.CellReporter.ActualLRPChanged(ctx, a)
}

func (m *muteReporter) ActualLRPRemoved(ctx context.Context, processGUID, instanceGUID string) error {
	if m.muted.Load() {
		return nil
	}
	return m.CellReporter.ActualLRPRemoved(ctx, processGUID, instanceGUID)
}

// Issue 8 follow-up, over the cell API: the sync's epoch mark goes to the
// joined cell and back, so an instance the cell lost without its crash
// reaching the server is replaced by the cell's next sync.
func TestSync_aJoinedCellsSyncHasTheServerReplaceAnInstanceItLost(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const id = "cell-m"
	var reporter *muteReporter
	jc := f.joinSim(t, id, simcell.Config{MemoryMB: 4096, AddrBase: 79}, func(c pando.CellReporter) pando.CellReporter {
		reporter = &muteReporter{CellReporter: c}
		return reporter
	})
	client, cluster, rep := jc.client, jc.cluster, jc.rep
	jc.register()
	if err := f.board.DesireLRP(ctx, cluster.LRP("web", 1, 256)); err != nil {
		t.Fatal(err)
	}
	web := func() pando.ActualLRP {
		as, _ := f.board.ActualLRPs(ctx, "web")
		if len(as) != 1 {
			return pando.ActualLRP{}
		}
		return as[0]
	}
	eventually(t, "web RUNNING on the joined cell", func() bool { return web().State == pando.ActualRunning })
	lost := web()
	if err := rep.SyncOnce(ctx, client); err != nil { // the cell gets its first mark
		t.Fatal(err)
	}

	reporter.muted.Store(true)
	if err := cluster.Backend().Exit("app-"+lost.InstanceGUID, container.ExitStatus{Code: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cell forgot the instance", func() bool {
		inv := rep.Inventory()
		return len(inv.Actuals) == 0 && len(inv.Ending) == 0
	})
	if a := web(); a.InstanceGUID != lost.InstanceGUID || a.State != pando.ActualRunning {
		t.Fatalf("before the sync the server has %+v, want it still believing %s RUNNING", a, lost.InstanceGUID)
	}
	reporter.muted.Store(false)
	if err := rep.SyncOnce(ctx, client); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web replaced and RUNNING", func() bool {
		a := web()
		return a.State == pando.ActualRunning && a.InstanceGUID != lost.InstanceGUID &&
			a.Crash != nil && a.Crash.Kind == pando.FailureLost
	})
	if got := rep.Inventory().Actuals; len(got) != 1 || !slices.ContainsFunc(got, func(a pando.ActualLRP) bool {
		return a.InstanceGUID == web().InstanceGUID
	}) {
		t.Errorf("the cell runs %+v, want the replacement", got)
	}
}
