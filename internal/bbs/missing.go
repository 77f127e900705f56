package bbs

import (
	"fmt"
	"strconv"
	"strings"

	pando "github.com/pandoplatform/pando"
)

// Missing work (Diego's rep bulk sync marks such actual LRPs missing): an
// instance or a task the BBS holds on a cell that the cell's sync no
// longer lists is lost (it ended and its report never arrived, or the
// cell forgot it); the cell is alive, so nothing else would notice. The
// instance is replaced as after a crash (FailureLost) and the task fails.
//
// A sync must not declare missing what the cell had not received yet
// when it took its inventory (a start or a task in flight). Each sync
// answer carries an epoch mark; the cell sends the mark of the last
// answer it received with its next inventory, taken after that answer
// arrived. A record is judged only if the BBS knew the cell held it
// (seenEpoch) no later than the epoch of that mark: the cell held it
// before the mark was issued, hence before the inventory was taken.
// Without a mark (the cell's first sync, an older cell, a mark of another
// BBS process) nothing is judged.

// syncEpochs are the marks of this BBS's sync answers: prefix names this
// BBS ("<uuid>.": a mark of another process means nothing here), seq is
// the current epoch.
type syncEpochs struct {
	prefix string
	seq    uint64
}

// lostReason is what a lost instance's crash and a lost task's failure
// say.
const lostReason = "instance was not reported by its cell"

// issueEpochLocked returns the mark of the current epoch and starts the
// next one: what the BBS learns from now on is newer than the mark.
func (b *BBS) issueEpochLocked() string {
	mark := b.epochs.prefix + strconv.FormatUint(b.epochs.seq, 10)
	b.epochs.seq++
	return mark
}

// epochOfLocked reads a mark this BBS issued; ok is false for none, a
// malformed one or another BBS's.
func (b *BBS) epochOfLocked(mark string) (uint64, bool) {
	rest, ok := strings.CutPrefix(mark, b.epochs.prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || n == 0 || n >= b.epochs.seq {
		return 0, false
	}
	return n, true
}

// seenOnCellLocked notes that a cell holds an instance (it accepted its
// start), unless the record moved on meanwhile.
func (b *BBS) seenOnCellLocked(instanceGUID, cellID string) {
	rec, ok := b.st.actual(instanceGUID)
	if !ok || rec.CellID != cellID || rec.seenEpoch != 0 {
		return
	}
	rec.seenEpoch = b.epochs.seq
	b.putActualLocked(rec, false)
}

// missingLocked acts on what a cell's sync with epoch mark does not list
// of the instances and tasks the BBS has on it: a lost instance is
// crashed with FailureLost (and so replaced under the crash policy), an
// evacuating one forgotten, a lost task failed. It says how many
// instances it replaced or forgot. onCell is how many of the inventory's
// instances the BBS has on the cell: when that is all of them, none is
// missing and nothing else is looked at (the common case).
func (b *BBS) missingLocked(cellID string, inv pando.CellInventory, mark uint64, onCell int) int {
	lost := 0
	if onCell < b.st.countActualsOnCell(cellID) {
		lost = b.missingActualsLocked(cellID, inv, mark)
	}
	b.missingTasksLocked(cellID, inv, mark)
	return lost
}

func (b *BBS) missingActualsLocked(cellID string, inv pando.CellInventory, mark uint64) int {
	listed := make(map[string]struct{}, len(inv.Actuals)+len(inv.Ending))
	for _, a := range inv.Actuals {
		listed[a.InstanceGUID] = struct{}{}
	}
	for _, g := range inv.Ending {
		listed[g] = struct{}{}
	}
	lost := 0
	for _, rec := range b.st.actualsOnCell(cellID) {
		if _, ok := listed[rec.InstanceGUID]; ok || rec.seenEpoch == 0 || rec.seenEpoch > mark {
			continue
		}
		if _, still := b.st.actual(rec.InstanceGUID); !still || rec.State == pando.ActualCrashed {
			continue // gone meanwhile, or its end was reported
		}
		lost++
		b.log.Warn("cell sync: "+lostReason+", replacing it", "cell_id", cellID, "process_guid", rec.ProcessGUID,
			"instance_index", rec.Index, "instance_guid", rec.InstanceGUID, "state", rec.State,
			"evacuating", rec.evacuating)
		if rec.evacuating {
			// Its replacement is already the index's instance.
			b.removeActualLocked(rec)
			continue
		}
		b.cellLineLocked(rec, fmt.Sprintf("Cell %s no longer reports instance %s: it is lost; starting a replacement",
			cellID, rec.InstanceGUID))
		b.crashLocked(rec, &pando.Failure{Kind: pando.FailureLost, Detail: lostReason + " " + cellID}, "")
	}
	return lost
}

func (b *BBS) missingTasksLocked(cellID string, inv pando.CellInventory, mark uint64) {
	onCell := b.st.tasksOnCell(cellID)
	if len(onCell) == 0 {
		return
	}
	tasks := make(map[string]struct{}, len(inv.Tasks))
	for _, t := range inv.Tasks {
		tasks[t.GUID] = struct{}{}
	}
	for _, rec := range onCell {
		if _, ok := tasks[rec.GUID]; ok || rec.State != pando.TaskRunning || rec.seenEpoch == 0 || rec.seenEpoch > mark {
			continue
		}
		why := fmt.Sprintf("task was not reported by its cell %s: the cell no longer runs it", cellID)
		b.log.Warn("cell sync: task was not reported by its cell, failing it", "cell_id", cellID,
			"task_guid", rec.GUID, "kind", rec.Kind)
		b.completeTaskLocked(rec, pando.Task{Failed: true, FailureReason: why})
	}
}

// cellLineLocked writes a CELL line into the log of the app an instance
// belongs to.
func (b *BBS) cellLineLocked(rec actualRecord, msg string) {
	if b.cfg.Logs == nil {
		return
	}
	d, ok := b.st.desired(rec.ProcessGUID)
	if !ok || d.AppGUID == "" {
		return
	}
	b.cfg.Logs.Emit(pando.LogEnvelope{Timestamp: b.now(), SourceID: d.AppGUID, InstanceID: strconv.Itoa(rec.Index),
		SourceType: pando.LogSourceCell, Type: "ERR", Payload: []byte(msg)})
}
