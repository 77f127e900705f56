package bbs

import (
	"context"
	"time"

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
	b.expireCellsLocked(now)

	// Writes during the pass are watched, so that processes it did not
	// change and that are in shape skip the trim-and-fill step: on a
	// healthy platform a pass is then one walk over the records.
	watch := &writeWatch{state: b.st, touched: map[string]struct{}{}}
	b.st = watch

	all := b.st.allActuals() // by process, then index
	// Both lists are sorted by process guid: they are walked side by side.
	shapes := b.st.desiredShapes()
	si := 0
	shapeOf := func(guid string) (desiredShape, bool) {
		for si < len(shapes) && shapes[si].ProcessGUID < guid {
			si++
		}
		if si < len(shapes) && shapes[si].ProcessGUID == guid {
			return shapes[si], true
		}
		return desiredShape{}, false
	}
	for _, rec := range all {
		if _, still := b.st.actual(rec.InstanceGUID); !still {
			continue // removed by an earlier step of this pass
		}
		d, ok := shapeOf(rec.ProcessGUID)
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
			case now.Sub(rec.placedAt) > b.stuckAfter(d.StartTimeout):
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
			case rec.Details == "" && now.Sub(later(rec.Since, rec.startingAt)) > b.stuckAfter(d.StartTimeout):
				// While the cell says it holds the start back (Details:
				// waiting for a start slot), the wait is not a stuck start.
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
	j := 0
	for _, d := range shapes {
		for j < len(all) && all[j].ProcessGUID < d.ProcessGUID {
			j++
		}
		k := j
		for k < len(all) && all[k].ProcessGUID == d.ProcessGUID {
			k++
		}
		group := all[j:k]
		j = k
		if _, changed := watch.touched[d.ProcessGUID]; !changed && inShape(group, d) {
			continue
		}
		if full, ok := b.st.desired(d.ProcessGUID); ok {
			b.trimExtraLocked(full)
			b.fillMissingLocked(full)
		}
	}
	b.st = watch.state

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
	stops := append(b.takeStopsLocked(), b.takeDueLaterStopsLocked(now)...)
	b.mu.Unlock()

	b.runStops(ctx, stops)
	b.placeLRPs(ctx, true)
}

// inShape reports whether a process's records (sorted by index) are
// exactly one primary instance of the desired revision per desired index:
// nothing to trim, nothing to fill.
func inShape(recs []actualRecord, d desiredShape) bool {
	if len(recs) != d.Instances {
		return false
	}
	for i, rec := range recs {
		if rec.Index != i || rec.evacuating || rec.Revision != d.Revision {
			return false
		}
	}
	return true
}

// writeWatch is the state as a convergence pass sees it: it notes the
// processes whose actual records the pass writes.
type writeWatch struct {
	state
	touched map[string]struct{}
}

func (w *writeWatch) putActual(a actualRecord) {
	w.touched[a.ProcessGUID] = struct{}{}
	w.state.putActual(a)
}

func (w *writeWatch) deleteActual(instanceGUID string) {
	if a, ok := w.state.actual(instanceGUID); ok {
		w.touched[a.ProcessGUID] = struct{}{}
	}
	w.state.deleteActual(instanceGUID)
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
