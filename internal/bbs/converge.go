package bbs

import (
	"context"

	pando "github.com/pandoplatform/pando"
)

// ConvergeOnce compares actual with desired state and repairs it: cells whose
// presence expired are removed, missing instances are created and extra ones
// stopped, instances on vanished cells rescheduled, stuck placements retried,
// UNCLAIMED instances auctioned again (including those that found no room
// before), due crash restarts performed, finished evacuations cleaned up,
// and completions not resolved within a ConvergeInterval sent again (those
// unresolved past TaskRetention dropped). Run calls it every
// ConvergeInterval.
func (b *BBS) ConvergeOnce(ctx context.Context) {
	b.mu.Lock()
	now := b.now()
	for id, e := range b.cells {
		if !e.expires.IsZero() && now.After(e.expires) {
			b.unregisterLocked(id, "presence expired")
		}
	}

	desired := map[string]pando.DesiredLRP{}
	for _, d := range b.st.allDesired() {
		desired[d.ProcessGUID] = d
	}
	for _, rec := range b.st.allActuals() {
		if _, still := b.st.actual(rec.InstanceGUID); !still {
			continue // removed by an earlier step of this pass
		}
		d, ok := desired[rec.ProcessGUID]
		if !ok || rec.Revision != d.Revision || rec.Index >= d.Instances {
			b.stopAndRemoveLocked(rec)
			continue
		}
		cell, onCell := b.cells[rec.CellID]
		if rec.evacuating {
			if !onCell || !now.Before(rec.evacuateUntil) {
				b.log.Info("evacuation deadline passed", "cell_id", rec.CellID,
					"process_guid", rec.ProcessGUID, "instance_index", rec.Index)
				b.stopAndRemoveLocked(rec)
			}
			continue
		}
		switch rec.State {
		case pando.ActualUnclaimed:
			switch {
			case rec.CellID == "" || rec.placing:
				// The auction below takes it.
			case !onCell:
				b.rescheduleLocked(rec)
			case now.Sub(rec.placedAt) > b.stuckAfter(d):
				b.log.Warn("instance never claimed, placing again", "cell_id", rec.CellID,
					"process_guid", rec.ProcessGUID, "instance_index", rec.Index)
				b.rescheduleLocked(rec)
			case cell.draining:
				b.rescheduleLocked(rec)
			}
		case pando.ActualClaimed:
			switch {
			case !onCell:
				b.rescheduleLocked(rec)
			case now.Sub(rec.Since) > b.stuckAfter(d):
				b.log.Warn("instance stuck starting, placing again", "cell_id", rec.CellID,
					"process_guid", rec.ProcessGUID, "instance_index", rec.Index)
				b.rescheduleLocked(rec)
			case cell.draining:
				b.rescheduleLocked(rec)
			}
		case pando.ActualRunning:
			switch {
			case !onCell:
				b.rescheduleLocked(rec)
			case cell.draining:
				b.evacuateLocked(rec)
			}
		}
	}
	b.restartDueLocked(now)
	for _, d := range desired {
		b.trimExtraLocked(d)
		b.fillMissingLocked(d)
	}

	for _, t := range b.st.allTasks() {
		switch {
		case t.State == pando.TaskCompleted:
			switch {
			case now.Sub(t.UpdatedAt) > b.cfg.TaskRetention:
				b.log.Warn("completed task never resolved, dropped", "task_guid", t.GUID, "kind", t.Kind)
				b.st.deleteTask(t.GUID)
			case now.Sub(t.completionSentAt) >= b.cfg.ConvergeInterval:
				t.completionSentAt = now
				b.st.putTask(t)
				b.emitTaskLocked(t.Task)
			}
		case t.CellID != "":
			if _, ok := b.cells[t.CellID]; !ok {
				b.completeTaskLocked(t, pando.Task{Failed: true,
					FailureReason: "cell " + t.CellID + " disappeared before completion"})
			}
		}
	}
	stops := b.takeStopsLocked()
	b.mu.Unlock()

	b.runStops(ctx, stops)
	b.placeLRPs(ctx, true)
}
