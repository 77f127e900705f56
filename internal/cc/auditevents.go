package cc

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando"
)

// recordCrash records an instance crash as CF does: the v3 event
// audit.app.process.crash and the legacy app.crash that `cf events` users
// and tools match on, both with the app itself as the actor.
func (a *API) recordCrash(ctx context.Context, app pando.App, p pando.Process, al pando.ActualLRP) {
	actor := actorApp(app)
	why := crashDescription(al, p.Type)
	a.recordEventAs(ctx, actor, "audit.app.process.crash", app, map[string]any{
		"index":            al.Index,
		"instance":         al.InstanceGUID,
		"cell_id":          al.CellID,
		"reason":           "CRASHED",
		"exit_description": why,
		"crash_count":      al.CrashCount,
		"crash_timestamp":  al.Since.UnixNano(),
		"process_type":     p.Type,
	})
	a.recordEventAs(ctx, actor, "app.crash", app, map[string]any{
		"index":            al.Index,
		"instance":         al.InstanceGUID,
		"cell_id":          al.CellID,
		"reason":           "CRASHED",
		"exit_description": why,
		"crash_count":      al.CrashCount,
		"crash_timestamp":  al.Since.UnixNano(),
	})
}

// eventActor is who an audit event names as its actor.
type eventActor struct{ guid, typ, name string }

func actorApp(app pando.App) eventActor { return eventActor{app.GUID, "app", app.Name} }

// auditRetention is how long audit events are kept: CF's default
// (cc.audit_events.cutoff_age_in_days, 31), so that what tenants do does
// not grow the CCDB without end.
const auditRetention = 31 * 24 * time.Hour

// createEvent stores an audit event and, at most hourly, deletes those
// older than auditRetention.
func (a *API) createEvent(ctx context.Context, ev pando.Event) error {
	if err := a.db(ctx).CreateEvent(ctx, ev); err != nil {
		return err
	}
	if now, ok := a.hourly(&a.eventsPrunedAt); ok {
		if err := a.db(ctx).DeleteEventsBefore(ctx, now.Add(-auditRetention)); err != nil {
			a.log.Warn("prune audit events", "err", err)
		}
	}
	return nil
}

// hourly reports whether an hour has passed since last (unix nanos) and,
// if so, sets it to now for this caller alone.
func (a *API) hourly(last *atomic.Int64) (time.Time, bool) {
	now := a.now()
	was := last.Load()
	if now.Sub(time.Unix(0, was)) < time.Hour || !last.CompareAndSwap(was, now.UnixNano()) {
		return now, false
	}
	return now, true
}

// recordEventAs writes an audit event about app by actor; failures are
// logged (the action already happened).
func (a *API) recordEventAs(ctx context.Context, actor eventActor, typ string, app pando.App, data map[string]any) {
	orgGUID := ""
	if s, err := a.db(ctx).GetSpace(ctx, app.SpaceGUID); err == nil {
		orgGUID = s.OrgGUID
	}
	ev := pando.Event{
		GUID: a.newGUID(), Type: typ, ActorGUID: actor.guid, ActorType: actor.typ, ActorName: actor.name,
		TargetGUID: app.GUID, TargetType: "app", TargetName: app.Name, SpaceGUID: app.SpaceGUID,
		OrgGUID: orgGUID, Data: data, CreatedAt: a.now(),
	}
	if err := a.createEvent(ctx, ev); err != nil {
		a.log.Warn("record event", "type", typ, "app_guid", app.GUID, "err", err)
	}
}

// recordRouteEvent writes an audit event about a route (audit.route.*),
// named by its host, as CF does.
func (a *API) recordRouteEvent(ctx context.Context, id Identity, typ string, rt pando.Route, data map[string]any) {
	orgGUID := ""
	if s, err := a.db(ctx).GetSpace(ctx, rt.SpaceGUID); err == nil {
		orgGUID = s.OrgGUID
	}
	ev := pando.Event{
		GUID: a.newGUID(), Type: typ, ActorGUID: id.UserGUID, ActorType: "user", ActorName: id.UserName,
		TargetGUID: rt.GUID, TargetType: "route", TargetName: rt.Host, SpaceGUID: rt.SpaceGUID,
		OrgGUID: orgGUID, Data: data, CreatedAt: a.now(),
	}
	if err := a.createEvent(ctx, ev); err != nil {
		a.log.Warn("record event", "type", typ, "route_guid", rt.GUID, "err", err)
	}
}

// recordProcessCreate records audit.app.process.create, as CF does when a
// droplet or a manifest brings a new process type.
func (a *API) recordProcessCreate(ctx context.Context, id Identity, app pando.App, p pando.Process) {
	a.recordAppEvent(ctx, id, "audit.app.process.create", app, map[string]any{"process_guid": p.GUID, "process_type": p.Type})
}
