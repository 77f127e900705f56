package cell

import (
	"context"
	"errors"
	"time"

	"github.com/pandoplatform/pando"
)

// Reannounce reports every instance the cell runs (CLAIMED or RUNNING)
// again, one report each. A cell the server had lost sends its Inventory
// instead, in one report.
func (r *Rep) Reannounce() {
	for _, a := range r.Inventory().Actuals {
		r.reportActual(a)
	}
}

// Inventory is what the cell runs: its CLAIMED and RUNNING instances, its
// running tasks, the completed tasks whose completion the server has
// not acknowledged yet, and the instances whose end it is reporting
// (Ending). A cell sends it when it registers with a server
// that did not know it (restarted, or that had lost the cell): the server
// adopts what it still wants, records the completions and stops the rest,
// so no instance runs twice and no staging is lost.
func (r *Rep) Inventory() pando.CellInventory {
	r.mu.Lock()
	list := make([]*instance, 0, len(r.instances))
	for _, i := range r.instances {
		list = append(list, i)
	}
	var inv pando.CellInventory
	for _, tk := range r.tasks {
		t := tk.t
		t.CellID, t.State = r.cfg.ID, pando.TaskRunning
		inv.Tasks = append(inv.Tasks, t)
	}
	for _, t := range r.unacked {
		inv.Tasks = append(inv.Tasks, t)
	}
	for guid := range r.ending {
		inv.Ending = append(inv.Ending, guid)
	}
	r.mu.Unlock()
	for _, i := range list {
		switch st := i.getState(); st {
		case pando.ActualClaimed, pando.ActualRunning:
			inv.Actuals = append(inv.Actuals, r.actual(i, st))
		}
	}
	return inv
}

// reportTask reports a task's completion until the server acknowledges it
// (a server restarting meanwhile hears it once it is back, or finds it in
// the cell's Inventory), the server refuses it, or the cell shuts down.
func (r *Rep) reportTask(t pando.Task) {
	defer func() {
		r.mu.Lock()
		delete(r.unacked, t.GUID)
		r.mu.Unlock()
	}()
	rep := r.currentReporter()
	if rep == nil {
		r.log.Warn("no reporter: dropping task result", "task_guid", t.GUID)
		return
	}
	for warned := false; ; {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), reportTimeout)
		err := rep.TaskCompleted(ctx, t)
		cancel()
		if err == nil {
			if warned {
				r.log.Info("task completion delivered", "task_guid", t.GUID)
			}
			return
		}
		if pando.ErrorKindOf(err) != pando.EUnavailable && !errors.Is(err, context.DeadlineExceeded) {
			r.log.Error("report task completed", "task_guid", t.GUID, "error", err)
			return
		}
		if !warned {
			r.log.Warn("task completion not delivered: the server is unreachable, retrying", "task_guid", t.GUID, "error", err)
			warned = true
		}
		select {
		case <-r.ctx.Done():
			r.log.Error("task completion not delivered before the cell stopped", "task_guid", t.GUID)
			return
		case <-time.After(time.Second):
		}
	}
}
