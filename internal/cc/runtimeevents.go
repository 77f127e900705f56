package cc

import (
	"context"
	"time"

	"github.com/pandoplatform/pando"
)

// FollowRuntime applies the runtime's event stream to the API until ctx
// ends: instance changes wake long polls, CRASHED reports become audit
// events, CF tasks a cell started read RUNNING, and completed tasks
// (stagings and CF tasks) are recorded, then resolved so that the runtime
// stops sending them. After a resync (at the start, or after falling
// behind) it re-reads the runtime's tasks, so a completion is recorded even
// if its event was missed.
func (a *API) FollowRuntime(ctx context.Context) {
	var after uint64
	// One audit event per crashed instance, even if the runtime reports it
	// again.
	crashed := map[string]bool{}
	for ctx.Err() == nil {
		events, err := a.rt.Subscribe(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("follow runtime events", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for ev := range events {
			after = ev.Seq
			a.applyRuntimeEvent(ctx, ev, crashed)
		}
	}
}

func (a *API) applyRuntimeEvent(ctx context.Context, ev pando.RuntimeEvent, crashed map[string]bool) {
	switch ev.Type {
	case pando.EventResync:
		a.NotifyAllProcesses()
		tasks, err := a.rt.Tasks(ctx)
		if err != nil {
			a.log.Warn("read runtime tasks after a resync", "err", err)
			return
		}
		for _, t := range tasks {
			switch t.State {
			case pando.TaskRunning:
				a.HandleTaskChanged(ctx, t)
			case pando.TaskCompleted:
				a.completeRuntimeTask(ctx, t)
			}
		}
	case pando.EventActualLRPChanged:
		a.NotifyProcessChanged(ev.ProcessGUID)
		if al := ev.Actual; al != nil && al.State == pando.ActualCrashed && !crashed[al.InstanceGUID] {
			if len(crashed) > 10000 {
				clear(crashed)
			}
			crashed[al.InstanceGUID] = true
			a.HandleInstanceCrashed(ctx, *al)
		}
	case pando.EventTaskChanged:
		if ev.Task != nil {
			a.HandleTaskChanged(ctx, *ev.Task)
		}
	case pando.EventTaskCompleted:
		if ev.Task != nil {
			a.completeRuntimeTask(ctx, *ev.Task)
		}
	default:
		if ev.ProcessGUID != "" {
			a.NotifyProcessChanged(ev.ProcessGUID)
		}
	}
}

// completeRuntimeTask records a completion and resolves it. A completion
// seen twice (sent again, or read after a resync) records nothing new.
func (a *API) completeRuntimeTask(ctx context.Context, t pando.Task) {
	a.HandleTaskCompleted(ctx, t)
	if err := a.rt.ResolveTask(ctx, t.GUID); err != nil && !pando.IsNotFound(err) && ctx.Err() == nil {
		a.log.Warn("resolve completed task", "task_guid", t.GUID, "err", err)
	}
}
