package bbs

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	pando "github.com/pandoplatform/pando"
)

// DrainCell evacuates a cell: the auction stops choosing it, each of its
// RUNNING instances gets a replacement elsewhere and is stopped once the
// replacement is RUNNING (or after EvacuationTimeout); instances that were
// not serving yet are moved at once. An instance whose replacement no
// cell can take (none healthy, none with room or the stack) is stopped
// after StrandedStopGrace instead (strandEvacueesLocked). Tasks on the cell run to completion.
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

// UndrainCell ends a drain (pando.Runtime): the auction chooses the cell
// again and convergence moves nothing more off it. Instances already
// marked evacuating stop once their replacements run, as a drain left them.
func (b *BBS) UndrainCell(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	e, ok := b.cells[id]
	if !ok {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", id)
	}
	was := e.draining
	if was {
		e.draining = false
		b.emitCellLocked(pando.EventCellChanged, id, pando.CellHealthy)
		b.capacityFreedLocked()
	}
	b.mu.Unlock()
	if was {
		b.log.Info("cell undrained", "cell_id", id)
		// Work that found no cell may fit now.
		b.wake()
	}
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
		b.newInstanceLocked(rec.ProcessGUID, rec.Revision, rec.Index, rec.CrashCount, rec.Crash, rec.CrashReason)
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

// strandEvacueesLocked handles the evacuating instances of a primary record
// that no cell could take (rec failed its auction): waiting up to
// EvacuationTimeout for a cell that may never come would hold up the
// draining cell (a lone cell's SIGTERM, a drain of the last healthy cell).
// Each one leaves the routing table at once, keeps running
// StrandedStopGrace for its in-flight requests, then stops; the index
// stays UNCLAIMED with its placement error and is placed as soon as a cell
// can take it.
func (b *BBS) strandEvacueesLocked(rec actualRecord, appGUID string) {
	evs := b.st.evacueesOf(rec.ProcessGUID, rec.Index)
	slices.SortFunc(evs, compareRecords)
	for _, ev := range evs {
		b.removeActualLocked(ev)
		msg := fmt.Sprintf("Cell %s is draining: no other cell can take instance %d: stopping it (%s)",
			ev.CellID, ev.Index, rec.PlacementError)
		b.log.Warn("no other cell can take the instance: stopping it", "cell_id", ev.CellID,
			"process_guid", ev.ProcessGUID, "instance_index", ev.Index, "instance_guid", ev.InstanceGUID,
			"reason", rec.PlacementError, "grace", b.cfg.StrandedStopGrace)
		if b.cfg.Logs != nil && appGUID != "" {
			b.cfg.Logs.Emit(pando.LogEnvelope{Timestamp: b.now(), SourceID: appGUID,
				InstanceID: strconv.Itoa(ev.Index), SourceType: pando.LogSourceCell, Type: "ERR", Payload: []byte(msg)})
		}
		e, ok := b.cells[ev.CellID]
		if !ok {
			continue
		}
		gone := cloneActual(ev.ActualLRP)
		gone.PlacementError = rec.PlacementError
		e.stranded = append(e.stranded, gone)
		b.laterStops = append(b.laterStops, laterStop{
			stopOp: stopOp{cell: e.cell, processGUID: ev.ProcessGUID, instanceGUID: ev.InstanceGUID},
			at:     b.now().Add(b.cfg.StrandedStopGrace),
		})
		b.wake() // Run arms the stop's timer
	}
}

// TakeStranded returns, and forgets, the instances of a draining cell that
// are stopped because no other cell could take them (PlacementError says
// why), for the cell to be told.
func (b *BBS) TakeStranded(id string) []pando.ActualLRP {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.cells[id]
	if !ok {
		return nil
	}
	s := e.stranded
	e.stranded = nil
	return s
}
