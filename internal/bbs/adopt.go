package bbs

import (
	"context"
	"slices"
	"sort"
	"time"

	pando "github.com/pandoplatform/pando"
)

// Re-adoption after a restart. The BBS keeps its state in memory: after a
// server restart the API desires every started app again, and the cells
// that kept running report what they run (CellSynced). An instance a cell
// reports that matches a desired LRP (same process, revision, and an index
// no other instance holds) is adopted instead of started again; a task
// that was in flight before the restart (AwaitCells' task guids) is
// adopted from the cell that runs it, and its completion recorded. So
// that nothing starts twice, the placement of instances waits until the
// cells present before the restart have reported, or until the wait's
// deadline (their presence TTL) has passed.

// AwaitCells holds the placement of new instances until every cell in
// cellIDs (those registered before a restart) has reported its inventory
// with CellSynced, or until timeout has passed. Tasks in taskGUIDs (in
// flight before the restart) may be claimed by the cell that runs them
// until then; the rest are left for the caller to fail (WaitAdopted).
// Without cellIDs nothing is held.
func (b *BBS) AwaitCells(cellIDs, taskGUIDs []string, timeout time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(cellIDs) == 0 {
		return
	}
	b.awaiting = map[string]struct{}{}
	for _, id := range cellIDs {
		b.awaiting[id] = struct{}{}
	}
	b.expected = map[string]struct{}{}
	for _, g := range taskGUIDs {
		b.expected[g] = struct{}{}
	}
	b.holdUntil = b.now().Add(timeout)
	b.adopted = make(chan struct{})
	b.log.Info("waiting for the cells present before the restart to report their work before placing instances",
		"cells", len(cellIDs), "in_flight_tasks", len(taskGUIDs), "timeout", timeout)
	b.wake() // Run arms the deadline
}

// WaitAdopted returns once the wait AwaitCells started is over (at once
// if there is none), or when ctx ends.
func (b *BBS) WaitAdopted(ctx context.Context) error {
	b.mu.Lock()
	ch := b.adopted
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// holdingLocked says whether placement waits for cells to report; a wait
// past its deadline ends here.
func (b *BBS) holdingLocked() bool {
	if len(b.awaiting) == 0 {
		return false
	}
	if !b.now().Before(b.holdUntil) {
		missing := make([]string, 0, len(b.awaiting))
		for id := range b.awaiting {
			missing = append(missing, id)
		}
		sort.Strings(missing)
		b.log.Warn("cells present before the restart did not report in time: their instances are placed afresh",
			"cells", missing)
		b.endHoldLocked()
		return false
	}
	return true
}

func (b *BBS) endHoldLocked() {
	b.awaiting = nil
	b.expected = nil
	b.holdUntil = time.Time{}
	select {
	case <-b.adopted:
	default:
		close(b.adopted)
	}
	b.wake()
}

// holdDeadline is when the current wait for cells ends at the latest.
func (b *BBS) holdDeadline() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.holdUntil, len(b.awaiting) > 0
}

// endHoldIfDue ends a wait whose deadline has passed.
func (b *BBS) endHoldIfDue() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holdingLocked()
}

// CellSynced takes a registered cell's inventory (what it runs, reported
// when it registers with a server that did not know it): instances the
// BBS still wants there are kept or adopted, the others stopped; tasks it
// knows on that cell, or that were in flight before a restart, are kept
// (a completion recorded), the others cancelled on the cell. Once every
// cell AwaitCells waits for has reported, placement resumes.
func (b *BBS) CellSynced(ctx context.Context, cellID string, inv pando.CellInventory) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	e, ok := b.cells[cellID]
	if !ok {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", cellID)
	}
	var adopted, kept, stopped int
	for _, a := range inv.Actuals {
		a.CellID = cellID
		switch b.actualReportLocked(a, true) {
		case reportAdopted:
			adopted++
		case reportStopped:
			stopped++
		default:
			kept++
		}
	}
	var cancels []string
	var tasksAdopted int
	for _, t := range inv.Tasks {
		t.CellID = cellID
		switch b.taskReportLocked(t) {
		case reportAdopted:
			tasksAdopted++
		case reportStopped:
			cancels = append(cancels, t.GUID)
		}
	}
	_, awaited := b.awaiting[cellID]
	delete(b.awaiting, cellID)
	if awaited && len(b.awaiting) == 0 {
		b.log.Info("every cell present before the restart reported: placing the instances still missing")
		b.endHoldLocked()
	}
	b.capacityFreedLocked()
	b.mu.Unlock()
	b.log.Info("cell reported its work", "cell_id", cellID, "instances_adopted", adopted,
		"instances_kept", kept, "instances_stopped", stopped, "tasks_adopted", tasksAdopted,
		"tasks_cancelled", len(cancels))

	for _, guid := range cancels {
		cctx, cancel := context.WithTimeout(ctx, cellCallTimeout)
		if err := e.cell.CancelTask(cctx, guid); err != nil && !pando.IsNotFound(err) {
			b.log.Warn("cancel task the server does not want", "cell_id", cellID, "task_guid", guid, "error", err)
		}
		cancel()
	}
	return nil
}

// What a report on an instance or a task led to.
type reportOutcome int

const (
	reportKept reportOutcome = iota
	reportAdopted
	reportStopped
)

// adoptLocked makes an instance the BBS does not know the instance of its
// index, if it runs the desired revision of its process and no other
// instance holds the index yet (at most an UNCLAIMED record waiting for
// an auction, which it replaces).
func (b *BBS) adoptLocked(a pando.ActualLRP) bool {
	if a.State != pando.ActualClaimed && a.State != pando.ActualRunning {
		return false
	}
	d, ok := b.st.desired(a.ProcessGUID)
	if !ok || d.Revision != a.Revision || a.Index < 0 || a.Index >= d.Instances || a.CellID == "" {
		return false
	}
	if e, ok := b.cells[a.CellID]; !ok || e.draining {
		return false
	}
	var waiting []actualRecord
	for _, rec := range b.st.actualsOf(a.ProcessGUID) {
		if rec.Index != a.Index || rec.evacuating {
			continue
		}
		if rec.State != pando.ActualUnclaimed || rec.CellID != "" || rec.placing {
			return false
		}
		waiting = append(waiting, rec)
	}
	now := b.now()
	rec := actualRecord{ActualLRP: cloneActual(a), placedAt: now, seenEpoch: b.epochs.seq}
	rec.Since = now
	rec.PlacementError = ""
	rec.Crash, rec.CrashReason = nil, ""
	for _, w := range waiting {
		rec.CrashCount = max(rec.CrashCount, w.CrashCount)
		b.removeActualLocked(w)
	}
	if rec.State == pando.ActualRunning && rec.StartedAt.IsZero() {
		rec.StartedAt = now
	}
	b.putActualLocked(rec, true)
	b.log.Info("instance adopted", "cell_id", a.CellID, "process_guid", a.ProcessGUID,
		"revision", a.Revision, "instance_index", a.Index, "instance_guid", a.InstanceGUID, "state", a.State)
	return true
}

// taskReportLocked applies a cell's report that it runs (or has
// completed) a task: a task the BBS has on that cell is kept and its
// completion recorded; one in flight before a restart is adopted; any
// other is to be cancelled on the cell (reportStopped) unless it already
// completed.
func (b *BBS) taskReportLocked(t pando.Task) reportOutcome {
	rec, ok := b.st.task(t.GUID)
	switch {
	case ok && rec.CellID == t.CellID:
		if t.State == pando.TaskCompleted && rec.State != pando.TaskCompleted {
			b.completeTaskLocked(rec, cloneTask(t))
		}
		return reportKept
	case !ok && b.claimTaskLocked(t):
		return reportAdopted
	case t.State == pando.TaskCompleted:
		return reportKept
	}
	b.log.Info("cancelling a task the server did not give the cell", "cell_id", t.CellID, "task_guid", t.GUID)
	return reportStopped
}

// claimTaskLocked adopts a task the BBS does not know from the cell that
// reports it, if it was in flight before the restart (AwaitCells) and is
// well formed: RUNNING there, or COMPLETED with its outcome.
func (b *BBS) claimTaskLocked(t pando.Task) bool {
	if _, ok := b.expected[t.GUID]; !ok || t.CellID == "" {
		return false
	}
	if _, ok := b.cells[t.CellID]; !ok {
		return false
	}
	switch {
	case t.Kind == pando.TaskStaging && t.Staging != nil, t.Kind == pando.TaskRun && t.Run != nil:
	default:
		return false
	}
	delete(b.expected, t.GUID)
	t = cloneTask(t)
	completed := t.State == pando.TaskCompleted
	now := b.now()
	rec := taskRecord{Task: t, seenEpoch: b.epochs.seq}
	rec.State = pando.TaskRunning
	rec.Failed, rec.FailureReason, rec.Failure, rec.FailureCode, rec.Result = false, "", nil, 0, nil
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.UpdatedAt = now
	b.st.putTask(rec)
	b.emitTaskLocked(rec.Task)
	b.log.Info("task adopted", "cell_id", t.CellID, "task_guid", t.GUID, "kind", t.Kind, "completed", completed)
	if completed {
		b.completeTaskLocked(rec, t)
	}
	return true
}

// AwaitingCell says whether placement still waits for the cell's
// inventory (AwaitCells).
func (b *BBS) AwaitingCell(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.awaiting[id]
	return ok && b.holdingLocked()
}

// claimableLaterLocked says whether a task a cell reports, in flight
// before the restart, can be claimed once that awaited cell has
// registered: its report is to be sent again, not dropped.
func (b *BBS) claimableLaterLocked(t pando.Task) bool {
	_, expected := b.expected[t.GUID]
	_, awaited := b.awaiting[t.CellID]
	_, registered := b.cells[t.CellID]
	return expected && awaited && !registered && b.holdingLocked()
}

// CellIDs lists the registered cells' IDs, sorted, without asking them
// anything.
func (b *BBS) CellIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, 0, len(b.cells))
	for id := range b.cells {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
