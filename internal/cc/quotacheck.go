package cc

import (
	"context"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// Quota enforcement: starting or scaling an app, creating a route, a task
// or a private domain past a quota of its org or space is refused with
// CF's error text. Reserved ports and service keys cannot be spent here
// (no TCP routes; keys are for managed instances), and CF's service
// instance total counts managed instances only (tenantlimits.go bounds
// user-provided ones). CF
// validates a process or task against every quota at once and answers all
// refusals joined, each as "<field> <reason>", fields in the order first
// refused (Sequel's full messages); quotaErrors does the same.

type quotaErrors struct {
	fields []string
	msgs   map[string][]string
}

func (e *quotaErrors) add(field, msg string) {
	if e.msgs == nil {
		e.msgs = map[string][]string{}
	}
	if _, ok := e.msgs[field]; !ok {
		e.fields = append(e.fields, field)
	}
	if !slices.Contains(e.msgs[field], msg) {
		e.msgs[field] = append(e.msgs[field], msg)
	}
}

func (e *quotaErrors) err() error {
	if len(e.fields) == 0 {
		return nil
	}
	var parts []string
	for _, f := range e.fields {
		for _, m := range e.msgs[f] {
			parts = append(parts, f+" "+m)
		}
	}
	return invalid("%s", strings.Join(parts, ", "))
}

// quotasOf returns the org's and the space's quotas (nil when none).
func (a *API) quotasOf(ctx context.Context, spaceGUID string) (sp pando.Space, org pando.Org, orgQ, spaceQ *pando.Quota, err error) {
	if sp, err = a.db(ctx).GetSpace(ctx, spaceGUID); err != nil {
		return
	}
	if org, err = a.db(ctx).GetOrg(ctx, sp.OrgGUID); err != nil {
		return
	}
	get := func(guid string) (*pando.Quota, error) {
		if guid == "" {
			return nil, nil
		}
		q, err := a.db(ctx).GetQuota(ctx, guid)
		if pando.IsNotFound(err) {
			return nil, nil
		}
		return &q, err
	}
	if orgQ, err = get(org.QuotaGUID); err != nil {
		return
	}
	spaceQ, err = get(sp.QuotaGUID)
	return
}

// orgSpaceGUIDs lists the GUIDs of the org's spaces.
func (a *API) orgSpaceGUIDs(ctx context.Context, orgGUID string) ([]string, error) {
	spaces, err := a.db(ctx).ListSpaces(ctx, nil, nil, []string{orgGUID})
	if err != nil {
		return nil, err
	}
	guids := make([]string, len(spaces))
	for i, s := range spaces {
		guids[i] = s.GUID
	}
	return guids, nil
}

// quotaUsage is what counts against a quota, as CF counts it: memory and
// log rate of started processes' instances and of running tasks, instances
// of started processes, and pending or running tasks.
type quotaUsage struct{ memory, instances, logRate, tasks int64 }

// usageIn sums the usage of spaces, with the processes in change instead of
// their stored versions and the app startGUID (if any) counted as started.
func (a *API) usageIn(ctx context.Context, spaceGUIDs []string, startGUID string, change []pando.Process) (quotaUsage, error) {
	var u quotaUsage
	if len(spaceGUIDs) == 0 {
		return u, nil
	}
	apps, err := a.db(ctx).ListApps(ctx, pando.AppFilter{SpaceGUIDs: spaceGUIDs})
	if err != nil || len(apps) == 0 {
		return u, err
	}
	var all, started []string
	for _, x := range apps {
		all = append(all, x.GUID)
		if x.State == pando.AppStarted || x.GUID == startGUID {
			started = append(started, x.GUID)
		}
	}
	if len(started) > 0 {
		procs, err := a.db(ctx).ListProcesses(ctx, nil, started)
		if err != nil {
			return u, err
		}
		for _, p := range procs {
			if i := slices.IndexFunc(change, func(c pando.Process) bool { return c.GUID == p.GUID }); i >= 0 {
				p = change[i]
			}
			u.memory += int64(p.Instances) * int64(p.MemoryMB)
			u.instances += int64(p.Instances)
			if p.LogRateLimitBytes > 0 {
				u.logRate += int64(p.Instances) * int64(p.LogRateLimitBytes)
			}
		}
	}
	tasks, err := a.db(ctx).ListAppTasks(ctx, all, []string{pando.AppTaskPending, pando.AppTaskRunning})
	if err != nil {
		return u, err
	}
	for _, t := range tasks {
		u.tasks++
		if t.State == pando.AppTaskRunning {
			u.memory += int64(t.MemoryMB)
			// Tasks run with the platform's default log rate limit.
			if r := a.cfg.DefaultLogRateLimit; r > 0 {
				u.logRate += int64(r)
			}
		}
	}
	return u, nil
}

// quotaScope is one quota with the usage of what it bounds.
type quotaScope struct {
	q     *pando.Quota
	name  string // the space's or org's name
	kind  string // "space" or "organization"
	usage quotaUsage
}

// scopesOf returns the space's and the org's quota scopes (nil quota when
// none), their usage computed as usageIn does.
func (a *API) scopesOf(ctx context.Context, spaceGUID, startGUID string, change []pando.Process) (space, org quotaScope, err error) {
	sp, o, orgQ, spaceQ, err := a.quotasOf(ctx, spaceGUID)
	if err != nil {
		return
	}
	space = quotaScope{q: spaceQ, name: sp.Name, kind: "space"}
	org = quotaScope{q: orgQ, name: o.Name, kind: "organization"}
	if spaceQ != nil {
		if space.usage, err = a.usageIn(ctx, []string{sp.GUID}, startGUID, change); err != nil {
			return
		}
	}
	if orgQ != nil {
		var guids []string
		if guids, err = a.orgSpaceGUIDs(ctx, o.GUID); err != nil {
			return
		}
		org.usage, err = a.usageIn(ctx, guids, startGUID, change)
	}
	return
}

func over(limit *int64, v int64) bool { return limit != nil && v > *limit }

// checkAppQuotas checks the org's and space's app quotas as they would be
// with the processes in change (replacing stored ones by GUID) and the app
// started. It is called before starting an app or scaling a process of a
// started app. The reasons and their order are CF's process validations.
func (a *API) checkAppQuotas(ctx context.Context, app pando.App, change []pando.Process) error {
	space, org, err := a.scopesOf(ctx, app.SpaceGUID, app.GUID, change)
	if err != nil || (space.q == nil && org.q == nil) {
		return err
	}
	appProcs := change
	if len(appProcs) == 0 {
		if appProcs, err = a.db(ctx).ListProcesses(ctx, nil, []string{app.GUID}); err != nil {
			return err
		}
	}
	var e quotaErrors
	if space.q != nil && over(space.q.Limits.TotalMemoryMB, space.usage.memory) {
		e.add("memory", "space_quota_exceeded")
	}
	if org.q != nil && over(org.q.Limits.TotalMemoryMB, org.usage.memory) {
		e.add("memory", "quota_exceeded")
	}
	for _, s := range []struct {
		scope  quotaScope
		reason string
	}{{org, "instance_memory_limit_exceeded"}, {space, "space_instance_memory_limit_exceeded"}} {
		if s.scope.q == nil {
			continue
		}
		for _, p := range appProcs {
			if over(s.scope.q.Limits.PerProcessMemoryMB, int64(p.MemoryMB)) {
				e.add("memory", s.reason)
			}
		}
	}
	if org.q != nil && over(org.q.Limits.TotalInstances, org.usage.instances) {
		e.add("app_instance_limit", "app_instance_limit_exceeded")
	}
	if space.q != nil && over(space.q.Limits.TotalInstances, space.usage.instances) {
		e.add("app_instance_limit", "space_app_instance_limit_exceeded")
	}
	for _, s := range []quotaScope{space, org} {
		if s.q == nil || s.q.Limits.LogRateLimit == nil {
			continue
		}
		for _, p := range appProcs {
			if p.LogRateLimitBytes < 0 && p.Instances > 0 {
				e.add("log_rate_limit", "cannot be unlimited in "+s.kind+" '"+s.name+"'.")
			}
		}
		if over(s.q.Limits.LogRateLimit, s.usage.logRate) {
			e.add("log_rate_limit", "exceeds "+s.kind+" log rate quota")
		}
	}
	return e.err()
}

// checkTaskQuota checks a new task of memMB against the org's and space's
// quotas as CF's task validations do: total memory (running tasks count),
// memory per instance, log rate (the task's is the platform default), and
// per_app_tasks, which CF compares with the pending and running tasks of
// the whole space or org.
func (a *API) checkTaskQuota(ctx context.Context, app pando.App, memMB int) error {
	space, org, err := a.scopesOf(ctx, app.SpaceGUID, "", nil)
	if err != nil || (space.q == nil && org.q == nil) {
		return err
	}
	var e quotaErrors
	for _, s := range []quotaScope{org, space} {
		if s.q == nil {
			continue
		}
		l := s.q.Limits
		if over(l.TotalMemoryMB, s.usage.memory+int64(memMB)) {
			e.add("memory_in_mb", "exceeds "+s.kind+" memory quota")
		}
		if over(l.PerProcessMemoryMB, int64(memMB)) {
			e.add("memory_in_mb", "exceeds "+s.kind+" instance memory quota")
		}
		if logRate := int64(a.cfg.DefaultLogRateLimit); l.LogRateLimit != nil {
			if logRate < 0 {
				e.add("log_rate_limit", "cannot be unlimited in "+s.kind+" '"+s.name+"'.")
			} else if over(l.LogRateLimit, s.usage.logRate+logRate) {
				e.add("log_rate_limit", "exceeds "+s.kind+" log rate quota")
			}
		}
		if l.PerAppTasks != nil && s.usage.tasks >= *l.PerAppTasks {
			e.add("app_task_limit", "quota exceeded")
		}
	}
	return e.err()
}

// checkRouteQuota refuses a new route past the org's or space's total.
func (a *API) checkRouteQuota(ctx context.Context, spaceGUID string) error {
	sp, org, orgQ, spaceQ, err := a.quotasOf(ctx, spaceGUID)
	if err != nil || (orgQ == nil && spaceQ == nil) {
		return err
	}
	if spaceQ != nil && spaceQ.Limits.TotalRoutes != nil {
		rts, err := a.db(ctx).ListRoutes(ctx, pando.RouteFilter{SpaceGUIDs: []string{sp.GUID}})
		if err != nil {
			return err
		}
		if int64(len(rts)) >= *spaceQ.Limits.TotalRoutes {
			return invalid("Routes quota exceeded for space '%s'.", sp.Name)
		}
	}
	if orgQ != nil && orgQ.Limits.TotalRoutes != nil {
		guids, err := a.orgSpaceGUIDs(ctx, org.GUID)
		if err != nil {
			return err
		}
		rts, err := a.db(ctx).ListRoutes(ctx, pando.RouteFilter{SpaceGUIDs: guids})
		if err != nil {
			return err
		}
		if int64(len(rts)) >= *orgQ.Limits.TotalRoutes {
			return invalid("Routes quota exceeded for organization '%s'.", org.Name)
		}
	}
	return nil
}

// checkDomainQuota refuses a private domain past the org quota's
// total_domains, which CF compares with the domains the org owns (not
// those shared with it).
func (a *API) checkDomainQuota(ctx context.Context, orgGUID string) error {
	org, err := a.db(ctx).GetOrg(ctx, orgGUID)
	if err != nil || org.QuotaGUID == "" {
		return err
	}
	q, err := a.db(ctx).GetQuota(ctx, org.QuotaGUID)
	if pando.IsNotFound(err) || (err == nil && q.Limits.TotalDomains == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	ds, err := a.db(ctx).ListDomains(ctx, nil, nil)
	if err != nil {
		return err
	}
	owned := 0
	for _, d := range ds {
		if d.OrgGUID == orgGUID {
			owned++
		}
	}
	if int64(owned) >= *q.Limits.TotalDomains {
		return invalid("The number of private domains exceeds the quota for organization \"%s\"", org.Name)
	}
	return nil
}
