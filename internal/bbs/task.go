package bbs

import (
	"context"
	"fmt"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/auction"
	"github.com/pandoplatform/pando/internal/failurelog"
)

// Failure reasons the API shows for tasks.
const (
	TaskCancelledReason = "task was cancelled"
)

// DesireTask accepts a task (staging, or a CF task run from a droplet) and
// places it with the memory, disk and stack its request names: PENDING,
// then RUNNING once a cell took it, then COMPLETED; each change is a
// task_changed event. A task that fits on no cell, or that its cell
// refuses, completes at once as failed with the reason (e.g. "insufficient
// resources: memory"), which is an EventTaskCompleted like any other
// completion.
func (b *BBS) DesireTask(ctx context.Context, t pando.Task) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.GUID == "" {
		return pando.Errorf(pando.EInvalid, "task has no guid")
	}
	t = cloneTask(t)
	t.State = pando.TaskPending
	t.CellID = ""
	t.Failed, t.FailureReason, t.Failure, t.FailureCode, t.Result = false, "", nil, 0, nil
	if t.Kind == "" {
		t.Kind = pando.TaskRun
		if t.Staging != nil {
			t.Kind = pando.TaskStaging
		}
	}
	switch {
	case t.Kind == pando.TaskStaging && t.Staging == nil:
		return pando.Errorf(pando.EInvalid, "staging task %s has no staging request", t.GUID)
	case t.Kind == pando.TaskRun && t.Run == nil:
		return pando.Errorf(pando.EInvalid, "task %s has no run request", t.GUID)
	case t.Kind != pando.TaskStaging && t.Kind != pando.TaskRun:
		return pando.Errorf(pando.EInvalid, "task %s has unknown kind %q", t.GUID, t.Kind)
	}

	b.mu.Lock()
	if _, exists := b.st.task(t.GUID); exists {
		b.mu.Unlock()
		return pando.Errorf(pando.EConflict, "task %s already exists", t.GUID)
	}
	now := b.now()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.UpdatedAt = now
	b.st.putTask(taskRecord{Task: t})
	b.emitTaskLocked(t)
	refs := b.cellRefsLocked()
	b.mu.Unlock()

	b.placeMu.Lock()
	defer b.placeMu.Unlock()
	res := auction.PlaceTasks(b.cellStates(ctx, refs), []auction.TaskRequest{taskRequest(t)})[0]

	b.mu.Lock()
	rec, ok := b.st.task(t.GUID)
	if !ok || rec.State != pando.TaskPending {
		b.mu.Unlock()
		return nil // cancelled meanwhile
	}
	e, cellOK := b.cells[res.CellID]
	if res.PlacementError != "" || !cellOK {
		why := res.PlacementError
		if why == "" {
			why = "cell " + res.CellID + " went away during placement"
		}
		b.completeTaskLocked(rec, pando.Task{Failed: true, FailureReason: why})
		b.mu.Unlock()
		b.log.Warn("task placement failed", "task_guid", t.GUID, "reason", why)
		return nil
	}
	rec.CellID = res.CellID
	rec.UpdatedAt = b.now()
	b.st.putTask(rec)
	b.emitTaskLocked(rec.Task)
	b.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, cellCallTimeout)
	err := e.cell.RunTask(cctx, cloneTask(rec.Task))
	cancel()

	b.mu.Lock()
	rec, ok = b.st.task(t.GUID)
	// Cancelled while the cell was still accepting it: the cell did not
	// know the task when the cancel came, so it must hear it again.
	recancel := ok && err == nil && rec.State == pando.TaskCompleted && rec.FailureReason == TaskCancelledReason
	switch {
	case !ok || rec.State != pando.TaskPending:
		// completed (fast task) or cancelled while RunTask ran
	case err != nil:
		b.completeTaskLocked(rec, pando.Task{Failed: true,
			FailureReason: fmt.Sprintf("cell %s could not run the task: %v", res.CellID, err)})
		b.log.Warn("run task", "task_guid", t.GUID, "cell_id", res.CellID, "error", err)
	default:
		rec.State = pando.TaskRunning
		rec.UpdatedAt = b.now()
		rec.seenEpoch = b.epochs.seq
		b.st.putTask(rec)
		b.emitTaskLocked(rec.Task)
		b.log.Info("task running", "task_guid", t.GUID, "cell_id", res.CellID, "kind", t.Kind)
	}
	b.mu.Unlock()
	if recancel {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cellCallTimeout)
		defer cancel()
		if err := e.cell.CancelTask(cctx, t.GUID); err != nil && !pando.IsNotFound(err) {
			b.log.Warn("cancel task on cell", "task_guid", t.GUID, "error", err)
		}
	}
	return nil
}

// taskRequest is what the auction needs to know of a task: the resources
// and stack its container gets on the cell.
func taskRequest(t pando.Task) auction.TaskRequest {
	req := auction.TaskRequest{TaskGUID: t.GUID}
	switch {
	case t.Kind == pando.TaskStaging && t.Staging != nil:
		s := t.Staging
		req.MemoryMB, req.DiskMB, req.Stack = s.MemoryMB, s.DiskMB, s.Stack
	case t.Kind == pando.TaskRun && t.Run != nil:
		r := t.Run
		req.MemoryMB, req.DiskMB, req.Stack = r.MemoryMB, r.DiskMB, r.Stack
	}
	return req
}

// CancelTask stops a task and completes it as failed ("task was
// cancelled"). Cancelling a completed task does nothing.
func (b *BBS) CancelTask(ctx context.Context, guid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	rec, ok := b.st.task(guid)
	if !ok {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "task %s not found", guid)
	}
	if rec.State == pando.TaskCompleted {
		b.mu.Unlock()
		return nil
	}
	var c pando.Cell
	if e, ok := b.cells[rec.CellID]; ok {
		c = e.cell
	}
	b.completeTaskLocked(rec, pando.Task{Failed: true, FailureReason: TaskCancelledReason})
	b.mu.Unlock()

	if c != nil {
		cctx, cancel := context.WithTimeout(ctx, cellCallTimeout)
		defer cancel()
		if err := c.CancelTask(cctx, guid); err != nil {
			b.log.Warn("cancel task on cell", "task_guid", guid, "cell_id", rec.CellID, "error", err)
		}
	}
	return nil
}

// Task returns a task. A completed task stays readable until it is
// resolved (or, unresolved, for TaskRetention).
func (b *BBS) Task(ctx context.Context, guid string) (pando.Task, error) {
	if err := ctx.Err(); err != nil {
		return pando.Task{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, ok := b.st.task(guid)
	if !ok {
		return pando.Task{}, pando.Errorf(pando.ENotFound, "task %s not found", guid)
	}
	return cloneTask(rec.Task), nil
}

// Tasks returns every task the BBS holds, oldest first.
func (b *BBS) Tasks(ctx context.Context) ([]pando.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.st.allTasks()
	out := make([]pando.Task, len(all))
	for i, rec := range all {
		out[i] = cloneTask(rec.Task)
	}
	return out, nil
}

// ResolveTask forgets a completed task whose completion the consumer has
// recorded, so its EventTaskCompleted is not sent again.
func (b *BBS) ResolveTask(ctx context.Context, guid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, ok := b.st.task(guid)
	if !ok {
		return pando.Errorf(pando.ENotFound, "task %s not found", guid)
	}
	if rec.State != pando.TaskCompleted {
		return pando.Errorf(pando.EConflict, "task %s is %s, not completed: it cannot be resolved", guid, rec.State)
	}
	b.st.deleteTask(guid)
	return nil
}

// TaskCompleted records a cell's report that a task finished. Reports on
// tasks already completed (e.g. cancelled) or unknown are ignored, but for
// a task in flight before a restart, which the reporting cell claims
// (adopt.go).
func (b *BBS) TaskCompleted(ctx context.Context, t pando.Task) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.capacityFreedLocked()
	rec, ok := b.st.task(t.GUID)
	if !ok {
		t.State = pando.TaskCompleted
		if b.claimTaskLocked(t) {
			return nil
		}
		if b.claimableLaterLocked(t) {
			return pando.Errorf(pando.EUnavailable, "cell %s has not registered since the server restarted: report task %s again", t.CellID, t.GUID)
		}
		b.log.Info("completion of unknown task ignored", "task_guid", t.GUID, "cell_id", t.CellID)
		return nil
	}
	if rec.State == pando.TaskCompleted {
		return nil
	}
	b.completeTaskLocked(rec, cloneTask(t))
	return nil
}

// completeTaskLocked marks a task COMPLETED with the outcome in result and
// publishes its EventTaskCompleted.
func (b *BBS) completeTaskLocked(rec taskRecord, result pando.Task) {
	rec.State = pando.TaskCompleted
	rec.Failed = result.Failed
	rec.FailureReason = result.FailureReason
	rec.Failure = result.Failure
	rec.FailureCode = result.FailureCode
	rec.Result = result.Result
	rec.UpdatedAt = b.now()
	rec.completionSentAt = rec.UpdatedAt
	b.st.putTask(rec)
	b.emitTaskLocked(rec.Task)
	b.log.Info("task completed", "task_guid", rec.GUID, "kind", rec.Kind, "failed", rec.Failed,
		"reason", rec.FailureReason, "failure", failurelog.Of(rec.Failure))
}
