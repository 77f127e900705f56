package cc

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pandoplatform/pando"
)

// App usage events (/v3/app_usage_events): what each app consumes over
// time, for billing and reports, as CF records them: STARTED and STOPPED
// per process with its instances and memory before and after (a scale of
// a started process is STARTED after STARTED), BUILDPACK_SET when staging
// sets a buildpack, TASK_STARTED and TASK_STOPPED per task. Recording
// never fails the user's action: errors are logged.

// usageRetention is how long usage events are kept (CF's default cutoff,
// 31 days); older ones are deleted as new ones are recorded.
const usageRetention = 31 * 24 * time.Hour

func (a *API) registerUsageRoutes(h func(string, handlerFunc)) {
	h("GET /v3/app_usage_events", a.listUsageEvents)
	h("GET /v3/app_usage_events/{guid}", a.getUsageEvent)
	h("POST /v3/app_usage_events/actions/destructively_purge_all_and_reseed", a.purgeUsageEvents)
}

// usageFor fills an event's app, space and org fields.
func (a *API) usageFor(ctx context.Context, app pando.App, state, previous string) pando.AppUsageEvent {
	e := pando.AppUsageEvent{
		GUID: a.newGUID(), State: state, PreviousState: previous, AppGUID: app.GUID, AppName: app.Name,
		SpaceGUID: app.SpaceGUID, CreatedAt: a.now(),
	}
	if s, err := a.db(ctx).GetSpace(ctx, app.SpaceGUID); err == nil {
		e.SpaceName, e.OrgGUID = s.Name, s.OrgGUID
	}
	return e
}

func (a *API) recordUsage(ctx context.Context, e pando.AppUsageEvent) {
	if err := a.db(ctx).CreateAppUsageEvent(ctx, e); err != nil {
		a.log.Warn("record app usage event", "state", e.State, "app_guid", e.AppGUID, "err", err)
		return
	}
	if err := a.db(ctx).DeleteAppUsageEventsBefore(ctx, e.CreatedAt.Add(-usageRetention)); err != nil {
		a.log.Warn("prune app usage events", "err", err)
	}
}

// recordProcessUsage records state for every process of app, each with its
// instances and memory now (and before, for a STARTED after STARTED).
func (a *API) recordProcessUsage(ctx context.Context, app pando.App, state, previous string) {
	procs, err := a.db(ctx).ListProcesses(ctx, nil, []string{app.GUID})
	if err != nil {
		a.log.Warn("record app usage event: list processes", "app_guid", app.GUID, "err", err)
		return
	}
	for _, p := range procs {
		a.recordScaleUsage(ctx, app, p, p, state, previous)
	}
}

func (a *API) recordScaleUsage(ctx context.Context, app pando.App, before, after pando.Process, state, previous string) {
	e := a.usageFor(ctx, app, state, previous)
	e.ProcessGUID, e.ProcessType = after.GUID, after.Type
	e.InstanceCount, e.MemoryMB = after.Instances, after.MemoryMB
	if previous != "" {
		e.PreviousInstanceCount, e.PreviousMemoryMB = before.Instances, before.MemoryMB
	}
	a.recordUsage(ctx, e)
}

// recordBuildpackUsage records the buildpack a staging set.
func (a *API) recordBuildpackUsage(ctx context.Context, app pando.App, buildpack string) {
	e := a.usageFor(ctx, app, pando.UsageBuildpackSet, "")
	e.BuildpackName = buildpack
	if bps, err := a.db(ctx).ListBuildpacks(ctx, []string{buildpack}); err == nil && len(bps) > 0 {
		e.BuildpackGUID = bps[0].GUID
	}
	if p, err := a.getAppProcessByType(ctx, app.GUID, "web"); err == nil {
		e.ProcessGUID, e.ProcessType, e.InstanceCount, e.MemoryMB = p.GUID, p.Type, p.Instances, p.MemoryMB
	}
	a.recordUsage(ctx, e)
}

// recordTaskUsage records a task starting or stopping: one instance of its
// memory.
func (a *API) recordTaskUsage(ctx context.Context, t pando.AppTask, state string) {
	app, err := a.db(ctx).GetApp(ctx, t.AppGUID)
	if err != nil {
		return // deleted with its app
	}
	previous := ""
	if state == pando.UsageTaskStopped {
		previous = pando.UsageTaskStarted
	}
	e := a.usageFor(ctx, app, state, previous)
	e.TaskGUID, e.TaskName, e.InstanceCount, e.MemoryMB = t.GUID, t.Name, 1, t.MemoryMB
	if previous != "" {
		e.PreviousInstanceCount, e.PreviousMemoryMB = 1, t.MemoryMB
	}
	a.recordUsage(ctx, e)
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (a *API) presentUsageEvent(e pando.AppUsageEvent) map[string]any {
	pair := func(cur, prev int, hasPrev bool) map[string]any {
		m := map[string]any{"current": cur, "previous": nil}
		if hasPrev {
			m["previous"] = prev
		}
		return m
	}
	hasPrev := e.PreviousState != ""
	return map[string]any{
		"guid":                      e.GUID,
		"created_at":                ts(e.CreatedAt),
		"updated_at":                ts(e.CreatedAt),
		"state":                     map[string]any{"current": e.State, "previous": orNil(e.PreviousState)},
		"app":                       map[string]any{"guid": e.AppGUID, "name": e.AppName},
		"process":                   map[string]any{"guid": orNil(e.ProcessGUID), "type": orNil(e.ProcessType)},
		"space":                     map[string]any{"guid": e.SpaceGUID, "name": e.SpaceName},
		"organization":              map[string]any{"guid": e.OrgGUID},
		"buildpack":                 map[string]any{"guid": orNil(e.BuildpackGUID), "name": orNil(e.BuildpackName)},
		"task":                      map[string]any{"guid": orNil(e.TaskGUID), "name": orNil(e.TaskName)},
		"memory_in_mb_per_instance": pair(e.MemoryMB, e.PreviousMemoryMB, hasPrev),
		"instance_count":            pair(e.InstanceCount, e.PreviousInstanceCount, hasPrev),
		"links":                     map[string]any{"self": link(a.url("/v3/app_usage_events/%s", e.GUID))},
	}
}

// requireUsageReader lets admins, admin read-only users and global
// auditors read usage events (CF's rule); others get 403.
func requireUsageReader(id Identity) error {
	if id.hasScope(ScopeAdmin) || id.hasScope(ScopeAdminReadOnly) || id.hasScope(ScopeGlobalAuditor) {
		return nil
	}
	return &pando.Error{Kind: pando.EForbidden, Message: "You are not authorized to perform the requested action"}
}

func (a *API) listUsageEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := requireUsageReader(identityFrom(ctx)); err != nil {
		return err
	}
	q := r.URL.Query()
	events, err := a.db(ctx).ListAppUsageEvents(ctx, pando.AppUsageFilter{GUIDs: splitList(q, "guids"), AfterGUID: q.Get("after_guid")})
	if err != nil {
		return err
	}
	paginate(a, w, r, events, func(e pando.AppUsageEvent) sortable {
		return sortable{createdAt: e.CreatedAt, updatedAt: e.CreatedAt}
	}, func(e pando.AppUsageEvent) any { return a.presentUsageEvent(e) })
	return nil
}

func (a *API) getUsageEvent(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := requireUsageReader(identityFrom(ctx)); err != nil {
		return err
	}
	e, err := a.db(ctx).GetAppUsageEvent(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Event")
	}
	writeJSON(w, http.StatusOK, a.presentUsageEvent(e))
	return nil
}

// purgeUsageEvents deletes every usage event and records one STARTED event
// per process of every started app, so a billing system can start over
// (admin only: authorize.go).
func (a *API) purgeUsageEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	apps, err := a.db(ctx).ListApps(ctx, pando.AppFilter{})
	if err != nil {
		return err
	}
	var seed []pando.AppUsageEvent
	for _, app := range apps {
		if app.State != pando.AppStarted {
			continue
		}
		procs, err := a.db(ctx).ListProcesses(ctx, nil, []string{app.GUID})
		if err != nil {
			return err
		}
		for _, p := range procs {
			e := a.usageFor(ctx, app, pando.UsageStarted, "")
			e.ProcessGUID, e.ProcessType, e.InstanceCount, e.MemoryMB = p.GUID, p.Type, p.Instances, p.MemoryMB
			seed = append(seed, e)
		}
	}
	err = a.db(ctx).InTx(ctx, func(tx pando.Store) error {
		if err := tx.DeleteAppUsageEventsBefore(ctx, time.Time{}); err != nil {
			return err
		}
		for _, e := range seed {
			if err := tx.CreateAppUsageEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("purge and reseed app usage events: %w", err)
	}
	a.log.Info("app usage events purged and reseeded", "user_name", identityFrom(ctx).UserName)
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}
