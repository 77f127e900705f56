package bbs

import (
	"context"

	pando "github.com/pandoplatform/pando"
)

// DrainCell evacuates a cell: the auction stops choosing it, each of its
// RUNNING instances gets a replacement elsewhere and is stopped once the
// replacement is RUNNING (or after EvacuationTimeout); instances that were
// not serving yet are moved at once. Tasks on the cell run to completion.
// The cell stays registered (and draining) until it unregisters.
func (b *BBS) DrainCell(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	e, ok := b.cells[id]
	if !ok {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", id)
	}
	if !e.draining {
		b.emitCellLocked(pando.EventCellChanged, id, pando.CellDraining)
	}
	e.draining = true
	n := 0
	for _, rec := range b.st.allActuals() {
		if rec.CellID == id && !rec.evacuating && b.evacuateLocked(rec) {
			n++
		}
	}
	stops := b.takeStopsLocked()
	b.mu.Unlock()
	b.log.Info("cell draining", "cell_id", id, "instances", n)

	b.runStops(ctx, stops)
	b.placeLRPs(ctx, false)
	return nil
}

// evacuateLocked moves a primary instance off a draining cell and reports
// whether it did anything. A RUNNING instance keeps serving, marked
// evacuating, while its replacement starts; an instance not serving yet is
// simply placed again.
func (b *BBS) evacuateLocked(rec actualRecord) bool {
	switch rec.State {
	case pando.ActualRunning:
		rec.evacuating = true
		rec.evacuateUntil = b.now().Add(b.cfg.EvacuationTimeout)
		b.putActualLocked(rec, false)
		b.newInstanceLocked(rec.ProcessGUID, rec.Revision, rec.Index, rec.CrashCount, rec.CrashReason)
		return true
	case pando.ActualClaimed, pando.ActualUnclaimed:
		b.rescheduleLocked(rec)
		return true
	}
	// CRASHED: its restart goes through the auction, which skips the cell.
	return false
}

// finishEvacuationLocked stops the evacuating instances of an index once its
// primary instance is RUNNING.
func (b *BBS) finishEvacuationLocked(processGUID string, index int) {
	for _, rec := range b.st.actualsOf(processGUID) {
		if rec.Index == index && rec.evacuating {
			b.log.Info("evacuation done", "cell_id", rec.CellID, "process_guid", processGUID,
				"instance_index", index, "instance_guid", rec.InstanceGUID)
			b.stopAndRemoveLocked(rec)
		}
	}
}
