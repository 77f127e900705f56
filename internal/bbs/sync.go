package bbs

import (
	"context"
	"fmt"

	pando "github.com/pandoplatform/pando"
)

// The periodic sync (Diego's rep bulk sync), defence in depth for "no
// duplicates remain": stops are retried until confirmed (stops.go) and a
// cell that comes back sends its inventory (adopt.go), but an instance
// the BBS forgot while nothing told the cell (a stop lost with a cell
// that was unregistered and registered again, a BBS restart that missed
// the cell) would run for good. So every cell sends its inventory every
// sync period, in one message; the BBS judges each item by the rules it
// applies to an inventory at registration, and the cell stops what the
// BBS does not want. Only the items to act on are answered.

// SyncCell answers a registered cell's periodic inventory: the
// instances the BBS does not want there (SyncStop, with why), those it
// had lost track of and now counts as their index's (SyncAdopt), and the
// tasks to cancel (SyncStop). The rest is kept, and what the inventory
// says of it is recorded as a report would be (a RUNNING instance whose
// report was lost is RUNNING now). An instance the BBS placed on the
// cell is kept whatever its state (an auction in flight included); a
// task it does not know is kept while it may still be claimed after a
// restart. While the BBS waits for the cells present before a restart
// (AwaitCells), everything is kept and nothing recorded: the inventory
// the cell sends when it registers decides then.
//
// What the BBS holds on the cell that the inventory does not list, and
// that the cell held before the inventory was taken (its Epoch), is lost:
// an instance is replaced as after a crash, a task fails (missing.go).
// The answer carries the epoch mark for the cell's next sync.
func (b *BBS) SyncCell(ctx context.Context, cellID string, inv pando.CellInventory) (pando.CellSyncAnswer, error) {
	var ans pando.CellSyncAnswer
	if err := ctx.Err(); err != nil {
		return ans, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.cells[cellID]; !ok {
		return ans, pando.Errorf(pando.ENotFound, "cell %q is not registered", cellID)
	}
	if b.holdingLocked() {
		return ans, nil
	}
	// listed counts the items that are the BBS's records on the cell:
	// when they are all listed, none is missing (missing.go).
	listed := 0
	for _, a := range inv.Actuals {
		if a.State != pando.ActualClaimed && a.State != pando.ActualRunning {
			continue // an inventory lists no other; a crash is reported as such
		}
		a.CellID = cellID
		rec, ok := b.st.actual(a.InstanceGUID)
		if ok && rec.CellID == cellID {
			listed++
		}
		if ok && unchanged(rec, a) {
			continue // the common case: nothing to record, nothing to answer
		}
		switch out, why := b.applyActualLocked(a, true); out {
		case reportAdopted:
			ans.Actuals = append(ans.Actuals, pando.SyncVerdict{GUID: a.InstanceGUID, Action: pando.SyncAdopt})
		case reportStopped:
			b.log.Info("cell sync: the cell stops an instance the server does not want", "cell_id", cellID,
				"process_guid", a.ProcessGUID, "instance_guid", a.InstanceGUID, "reason", why)
			ans.Actuals = append(ans.Actuals, pando.SyncVerdict{GUID: a.InstanceGUID, Action: pando.SyncStop, Reason: why})
		}
	}
	for _, t := range inv.Tasks {
		t.CellID = cellID
		if why := b.syncTaskLocked(t); why != "" {
			b.log.Info("cell sync: the cell cancels a task the server does not want", "cell_id", cellID,
				"task_guid", t.GUID, "reason", why)
			ans.Tasks = append(ans.Tasks, pando.SyncVerdict{GUID: t.GUID, Action: pando.SyncStop, Reason: why})
		}
	}
	lost := 0
	if mark, ok := b.epochOfLocked(inv.Epoch); ok {
		lost = b.missingLocked(cellID, inv, mark, listed)
	}
	ans.Epoch = b.issueEpochLocked()
	if len(ans.Actuals) > 0 || lost > 0 {
		b.capacityFreedLocked()
		b.wake()
	}
	return ans, nil
}

// unchanged says whether a cell's sync says of an instance what the BBS
// already has on record for it there.
func unchanged(rec actualRecord, a pando.ActualLRP) bool {
	return rec.ProcessGUID == a.ProcessGUID && rec.CellID == a.CellID && rec.State == a.State &&
		rec.Address == a.Address && rec.Port == a.Port && rec.StartedAt.Equal(a.StartedAt)
}

// syncTaskLocked applies a task of a cell's sync as its report at
// registration (taskReportLocked), and says why the cell is to cancel it
// ("" to keep it). A task the BBS already completed (cancelled, or failed
// because the cell did not take it in time) that the cell still runs is
// cancelled too: its outcome would be ignored.
func (b *BBS) syncTaskLocked(t pando.Task) string {
	rec, known := b.st.task(t.GUID)
	switch {
	case known && rec.CellID == t.CellID && rec.State == pando.TaskCompleted && t.State == pando.TaskRunning:
		if rec.FailureReason == TaskCancelledReason {
			return "the task was cancelled"
		}
		return "the server already recorded the task's end: " + rec.FailureReason
	case b.taskReportLocked(t) != reportStopped:
		return ""
	case known:
		return fmt.Sprintf("the task runs on cell %s", rec.CellID)
	default:
		return "the server has no record of this task"
	}
}

// unwantedReasonLocked says why the BBS does not want a reported instance
// (rec, when known, is its record).
func (b *BBS) unwantedReasonLocked(a pando.ActualLRP, rec actualRecord, known bool) string {
	switch {
	case known && rec.ProcessGUID != a.ProcessGUID:
		return "the instance guid belongs to another process"
	case known:
		return fmt.Sprintf("the instance was placed on cell %s instead", rec.CellID)
	}
	d, ok := b.st.desired(a.ProcessGUID)
	switch {
	case !ok:
		return "its process is no longer desired (the app was stopped or deleted)"
	case d.Revision != a.Revision:
		return fmt.Sprintf("it runs revision %d of its process, the desired one is %d", a.Revision, d.Revision)
	case a.Index >= d.Instances:
		return fmt.Sprintf("index %d is beyond the %d desired instances", a.Index, d.Instances)
	}
	return fmt.Sprintf("the server has no record of this instance; index %d is another instance's", a.Index)
}
