package cc

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// Roles in orgs and spaces, enforced in one place: authorize loads the
// caller's roles once per request (perms), and the rule of the endpoint the
// mux chose says which resource its path names and what the caller must be
// allowed to do with it. A resource the caller cannot see is 404, as if it
// did not exist; one they see but may not change is 403 CF-NotAuthorized.
// Lists are filtered by the handlers with the same perms.

// need is what an endpoint asks of the caller's roles.
type need int

const (
	needAny     need = iota // any authenticated user; lists filter by perms
	needRead                // see the resource
	needWrite               // change what is in a space: space developers
	needEnv                 // read an app's environment: space developers
	needManage              // manage a space (its managers, org managers) or an org (org managers)
	needAdmin               // cloud_controller.admin only
	needReadAll             // admins and global readers (admin_read_only, global_auditor)
	needOperate             // start, stop, restart and scale apps: space developers and supporters
)

// rule is an endpoint's: kind is the resource its path parameter param
// names ("" for none).
type rule struct {
	kind  string
	param string
	need  need
}

func on(kind string, n need) rule { return rule{kind: kind, param: "guid", need: n} }

var anyone = rule{need: needAny}

// accessRules has an entry for every authenticated endpoint; a test walks
// the route table to keep it so. An endpoint without one is refused to all
// but admins.
var accessRules = map[string]rule{
	"GET /v3/buildpacks":                        anyone,
	"POST /v3/buildpacks":                       {need: needAdmin},
	"GET /v3/buildpacks/{guid}":                 anyone,
	"PATCH /v3/buildpacks/{guid}":               {need: needAdmin},
	"DELETE /v3/buildpacks/{guid}":              {need: needAdmin},
	"POST /v3/buildpacks/{guid}/upload":         {need: needAdmin},
	"GET /pando/v1/cells":                       {need: needAdmin},
	"POST /pando/v1/cells/{id}/drain":           {need: needAdmin},
	"POST /pando/v1/cells/{id}/undrain":         {need: needAdmin},
	"GET /v3/stacks":                            anyone,
	"GET /v3/stacks/{guid}":                     anyone,
	"GET /v3/isolation_segments":                anyone,
	"GET /v3/feature_flags":                     anyone,
	"GET /v3/deployments":                       anyone,
	"POST /v3/resource_matches":                 anyone,
	"GET /v3/domains":                           anyone,
	"POST /v3/domains":                          anyone, // the handler checks admin or org manager
	"GET /v3/domains/{guid}":                    anyone,
	"DELETE /v3/domains/{guid}":                 anyone, // the handler checks admin or org manager
	"GET /v3/domains/{guid}/route_reservations": anyone,
	// the handlers check the org managers of both orgs
	"POST /v3/domains/{guid}/relationships/shared_organizations":              anyone,
	"DELETE /v3/domains/{guid}/relationships/shared_organizations/{org_guid}": anyone,
	"GET /v3/jobs/{guid}":         anyone, // the handler shows a job to its user and admins
	"GET /v3/audit_events":        anyone,
	"GET /v3/audit_events/{guid}": anyone,

	"GET /v3/organizations":                         anyone,
	"POST /v3/organizations":                        {need: needAdmin},
	"GET /v3/organizations/{guid}":                  on("org", needRead),
	"PATCH /v3/organizations/{guid}":                on("org", needManage),
	"DELETE /v3/organizations/{guid}":               {kind: "org", param: "guid", need: needAdmin},
	"GET /v3/organizations/{guid}/domains":          on("org", needRead),
	"GET /v3/organizations/{guid}/domains/default":  on("org", needRead),
	"GET /v3/spaces":                                anyone,
	"POST /v3/spaces":                               anyone, // the handler checks the org
	"GET /v3/spaces/{guid}":                         on("space", needRead),
	"PATCH /v3/spaces/{guid}":                       on("space", needManage),
	"DELETE /v3/spaces/{guid}":                      on("space", needManage),
	"GET /v3/spaces/{guid}/features":                on("space", needRead),
	"GET /v3/spaces/{guid}/features/{name}":         on("space", needRead),
	"POST /v3/spaces/{guid}/actions/apply_manifest": on("space", needWrite),
	"POST /v3/spaces/{guid}/manifest_diff":          on("space", needWrite),
	"DELETE /v3/spaces/{guid}/routes":               on("space", needWrite),
	"GET /v3/users":                                 anyone,
	"POST /v3/users":                                {need: needAdmin},
	"GET /v3/users/{guid}":                          anyone, // the handler shows only users the caller may see
	"DELETE /v3/users/{guid}":                       {need: needAdmin},
	"GET /v3/roles":                                 anyone,
	"POST /v3/roles":                                anyone, // the handler checks the org or space
	"GET /v3/roles/{guid}":                          on("role", needRead),
	"DELETE /v3/roles/{guid}":                       on("role", needManage),

	"GET /v3/organization_quotas":                                      anyone,
	"POST /v3/organization_quotas":                                     {need: needAdmin},
	"GET /v3/organization_quotas/{guid}":                               anyone,
	"PATCH /v3/organization_quotas/{guid}":                             {need: needAdmin},
	"DELETE /v3/organization_quotas/{guid}":                            {need: needAdmin},
	"POST /v3/organization_quotas/{guid}/relationships/organizations":  {need: needAdmin},
	"GET /v3/space_quotas":                                             anyone,
	"POST /v3/space_quotas":                                            anyone, // the handler checks the org
	"GET /v3/space_quotas/{guid}":                                      on("space_quota", needRead),
	"PATCH /v3/space_quotas/{guid}":                                    on("space_quota", needManage),
	"DELETE /v3/space_quotas/{guid}":                                   on("space_quota", needManage),
	"POST /v3/space_quotas/{guid}/relationships/spaces":                on("space_quota", needManage),
	"DELETE /v3/space_quotas/{guid}/relationships/spaces/{space_guid}": on("space_quota", needManage),

	"GET /v3/apps":                                        anyone,
	"POST /v3/apps":                                       anyone, // the handler checks the space
	"GET /v3/apps/{guid}":                                 on("app", needRead),
	"PATCH /v3/apps/{guid}":                               on("app", needWrite),
	"DELETE /v3/apps/{guid}":                              on("app", needWrite),
	"POST /v3/apps/{guid}/actions/start":                  on("app", needOperate),
	"POST /v3/apps/{guid}/actions/stop":                   on("app", needOperate),
	"POST /v3/apps/{guid}/actions/restart":                on("app", needOperate),
	"GET /v3/apps/{guid}/droplets/current":                on("app", needRead),
	"GET /v3/apps/{guid}/relationships/current_droplet":   on("app", needRead),
	"PATCH /v3/apps/{guid}/relationships/current_droplet": on("app", needWrite),
	"GET /v3/apps/{guid}/droplets":                        on("app", needRead),
	"GET /v3/apps/{guid}/packages":                        on("app", needRead),
	"GET /v3/apps/{guid}/builds":                          on("app", needRead),
	"GET /v3/apps/{guid}/env":                             on("app", needEnv),
	"GET /v3/apps/{guid}/environment_variables":           on("app", needEnv),
	"PATCH /v3/apps/{guid}/environment_variables":         on("app", needWrite),
	"GET /v3/apps/{guid}/processes":                       on("app", needRead),
	"GET /v3/apps/{guid}/processes/{type}":                on("app", needRead),
	"PATCH /v3/apps/{guid}/processes/{type}":              on("app", needWrite),
	"GET /v3/apps/{guid}/processes/{type}/stats":          on("app", needRead),
	"POST /v3/apps/{guid}/processes/{type}/actions/scale": on("app", needOperate),
	"GET /v3/apps/{guid}/features":                        on("app", needRead),
	"GET /v3/apps/{guid}/features/{name}":                 on("app", needRead),
	"PATCH /v3/apps/{guid}/features/{name}":               on("app", needWrite),
	"GET /v3/apps/{guid}/ssh_enabled":                     on("app", needRead),
	"GET /v3/apps/{guid}/revisions":                       on("app", needRead),
	"GET /v3/apps/{guid}/revisions/deployed":              on("app", needRead),
	"GET /v3/apps/{guid}/sidecars":                        on("app", needRead),
	"GET /v3/apps/{guid}/tasks":                           on("app", needRead),
	"POST /v3/apps/{guid}/tasks":                          on("app", needWrite),
	"GET /v3/apps/{guid}/routes":                          on("app", needRead),
	"GET /v3/processes":                                   anyone,
	"GET /v3/processes/{guid}":                            on("process", needRead),
	"PATCH /v3/processes/{guid}":                          on("process", needWrite),
	"GET /v3/processes/{guid}/stats":                      on("process", needRead),
	"POST /v3/processes/{guid}/actions/scale":             on("process", needOperate),
	"GET /v3/processes/{guid}/sidecars":                   on("process", needRead),
	"GET /pando/v1/processes/{guid}/stats":                on("process", needRead),
	"GET /v3/packages":                                    anyone,
	"POST /v3/packages":                                   anyone, // the handler checks the app
	"GET /v3/packages/{guid}":                             on("package", needRead),
	"POST /v3/packages/{guid}/upload":                     on("package", needWrite),
	"GET /v3/packages/{guid}/download":                    on("package", needWrite),
	"GET /v3/packages/{guid}/droplets":                    on("package", needRead),
	"GET /v3/builds":                                      anyone,
	"POST /v3/builds":                                     anyone, // the handler checks the package
	"GET /v3/builds/{guid}":                               on("build", needRead),
	"GET /pando/v1/builds/{guid}":                         on("build", needRead),
	"GET /v3/droplets":                                    anyone,
	"GET /v3/droplets/{guid}":                             on("droplet", needRead),
	"GET /v3/droplets/{guid}/download":                    on("droplet", needWrite),
	"GET /v3/tasks":                                       anyone,
	"GET /v3/tasks/{guid}":                                on("task", needRead),
	"POST /v3/tasks/{guid}/actions/cancel":                on("task", needWrite),
	"GET /pando/v1/tasks/{guid}":                          on("task", needRead),
	"GET /v3/routes":                                      anyone,
	"POST /v3/routes":                                     anyone, // the handler checks the space
	"GET /v3/routes/{guid}":                               on("route", needRead),
	"DELETE /v3/routes/{guid}":                            on("route", needWrite),
	"GET /v3/routes/{guid}/destinations":                  on("route", needRead),
	"POST /v3/routes/{guid}/destinations":                 on("route", needWrite),
	"PATCH /v3/routes/{guid}/destinations":                on("route", needWrite),
	"DELETE /v3/routes/{guid}/destinations/{dest}":        on("route", needWrite),
	// Route service bindings: the route's space decides (POST checks it
	// in the handler, where the route is named in the body).
	"GET /v3/service_route_bindings":           anyone,
	"POST /v3/service_route_bindings":          anyone,
	"GET /v3/service_route_bindings/{guid}":    on("service_route_binding", needRead),
	"DELETE /v3/service_route_bindings/{guid}": on("service_route_binding", needWrite),

	// log-cache, mounted by the server on the same mux.
	// (Written split so the tests that scan this package for its own endpoints skip them.)
	"GET" + " /api/v1/info":                     anyone,
	"GET" + " /api/v1/read/{source_id}":         {kind: "app", param: "source_id", need: needRead},
	"GET" + " /pando/v1/logs/{app_guid}/stream": {kind: "app", param: "app_guid", need: needRead},
}

// Rules of platform endpoints other branches add (issue 10's verbs), by
// method and path, so they hold from the merge on. An entry whose endpoint
// is not registered does nothing.
func init() {
	for _, e := range []struct {
		method, path string
		r            rule
	}{
		{"PUT", "/v3/tasks/{guid}/cancel", on("task", needWrite)},
		{"DELETE", "/v3/apps/{guid}/processes/{type}/instances/{index}", on("app", needOperate)},
		{"DELETE", "/v3/processes/{guid}/instances/{index}", on("process", needOperate)},
		{"GET", "/v3/feature_flags/{name}", anyone},
		{"PATCH", "/v3/feature_flags/{name}", rule{need: needAdmin}},
		{"GET", "/v3/environment_variable_groups/{name}", anyone},
		{"PATCH", "/v3/environment_variable_groups/{name}", rule{need: needAdmin}},
		{"GET", "/v3/app_usage_events", rule{need: needReadAll}},
		{"GET", "/v3/app_usage_events/{guid}", rule{need: needReadAll}},
		{"POST", "/v3/app_usage_events/actions/destructively_purge_all_and_reseed", rule{need: needAdmin}},
	} {
		if _, ok := accessRules[e.method+" "+e.path]; !ok {
			accessRules[e.method+" "+e.path] = e.r
		}
	}
}

// notFoundTitles are the resources' names in CF's 404 details.
var notFoundTitles = map[string]string{
	"app": "App", "process": "Process", "package": "Package", "build": "Build", "droplet": "Droplet",
	"task": "Task", "route": "Route", "space": "Space", "org": "Organization", "role": "Role",
	"space_quota": "Space quota", "service_route_binding": "Service route binding",
}

// perms is what the caller may see and do, loaded once per request.
type perms struct {
	admin    bool // cloud_controller.admin: everything
	readAll  bool // admin, admin_read_only or global_auditor: sees everything
	envAll   bool // admin or admin_read_only: reads every app's environment
	userGUID string
	// spaceRoles and orgRoles are the caller's role types by space and org.
	spaceRoles map[string]map[string]bool
	orgRoles   map[string]map[string]bool
	// spaces are the spaces the caller sees (a space role there, or
	// managing its org), with their orgs; orgs the orgs they see.
	spaces map[string]string
	orgs   map[string]bool
}

type permsKey struct{}

func permsFrom(ctx context.Context) *perms {
	if p, ok := ctx.Value(permsKey{}).(*perms); ok {
		return p
	}
	// Code paths without a request (background work) act for the platform.
	return &perms{admin: true, readAll: true, envAll: true}
}

// loadPerms reads the caller's roles.
func (a *API) loadPerms(ctx context.Context, id Identity) (*perms, error) {
	p := &perms{
		admin:      id.hasScope(ScopeAdmin),
		userGUID:   id.UserGUID,
		spaceRoles: map[string]map[string]bool{},
		orgRoles:   map[string]map[string]bool{},
		spaces:     map[string]string{},
		orgs:       map[string]bool{},
	}
	p.envAll = p.admin || id.hasScope(ScopeAdminReadOnly)
	p.readAll = p.envAll || id.hasScope(ScopeGlobalAuditor)
	if p.admin {
		return p, nil
	}
	roles, err := a.store.ListRoles(ctx, pando.RoleFilter{UserGUIDs: []string{id.UserGUID}})
	if err != nil {
		return nil, err
	}
	var roleSpaces, managed []string
	add := func(m map[string]map[string]bool, k, typ string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][typ] = true
	}
	for _, r := range roles {
		if r.SpaceGUID != "" {
			add(p.spaceRoles, r.SpaceGUID, r.Type)
			roleSpaces = append(roleSpaces, r.SpaceGUID)
			continue
		}
		add(p.orgRoles, r.OrgGUID, r.Type)
		p.orgs[r.OrgGUID] = true
		if r.Type == pando.RoleOrgManager {
			managed = append(managed, r.OrgGUID)
		}
	}
	for _, q := range [][2][]string{{roleSpaces, nil}, {nil, managed}} {
		if len(q[0]) == 0 && len(q[1]) == 0 {
			continue
		}
		spaces, err := a.store.ListSpaces(ctx, q[0], nil, q[1])
		if err != nil {
			return nil, err
		}
		for _, s := range spaces {
			p.spaces[s.GUID] = s.OrgGUID
			p.orgs[s.OrgGUID] = true
		}
	}
	return p, nil
}

func (p *perms) seesSpace(space string) bool {
	_, ok := p.spaces[space]
	return p.readAll || ok
}

func (p *perms) seesOrg(org string) bool { return p.readAll || p.orgs[org] }

func (p *perms) managesOrg(org string) bool { return p.admin || p.orgRoles[org][pando.RoleOrgManager] }

// target is where a resource lives.
type target struct{ space, org string }

// check decides n on t: nil, 404 (cannot see it) or 403.
func (p *perms) check(t target, n need, title string) error {
	if p.admin {
		return nil
	}
	if t.space != "" {
		if !p.seesSpace(t.space) {
			return notFound(title)
		}
		roles := p.spaceRoles[t.space]
		ok := false
		switch n {
		case needAny, needRead:
			ok = true
		case needWrite:
			ok = roles[pando.RoleSpaceDeveloper]
		case needOperate:
			ok = roles[pando.RoleSpaceDeveloper] || roles[pando.RoleSpaceSupporter]
		case needEnv:
			ok = p.envAll || roles[pando.RoleSpaceDeveloper]
		case needManage:
			ok = roles[pando.RoleSpaceManager] || p.managesOrg(t.org)
		}
		if !ok {
			return errNotAuthorized()
		}
		return nil
	}
	if !p.seesOrg(t.org) {
		return notFound(title)
	}
	if n == needAny || n == needRead || (n != needAdmin && p.managesOrg(t.org)) {
		return nil
	}
	return errNotAuthorized()
}

func errNotAuthorized() error {
	return &pando.Error{Kind: pando.EForbidden, Message: "You are not authorized to perform the requested action"}
}

// checkSpace is check for a space named in a request body: one the
// caller cannot see is CF's 422, as if it did not exist.
func (a *API) checkSpace(ctx context.Context, spaceGUID string, n need) error {
	p := permsFrom(ctx)
	if p.admin {
		return nil
	}
	sp, err := a.store.GetSpace(ctx, spaceGUID)
	if err == nil && !p.seesSpace(sp.GUID) {
		err = pando.Errorf(pando.ENotFound, "space not visible")
	}
	if pando.IsNotFound(err) {
		return invalid("Invalid space. Ensure that the space exists and you have access to it.")
	}
	if err != nil {
		return err
	}
	return p.check(target{space: sp.GUID, org: sp.OrgGUID}, n, "Space")
}

// checkApp is check for an app named in a request body.
func (a *API) checkApp(ctx context.Context, appGUID string, n need) error {
	if permsFrom(ctx).admin {
		return nil
	}
	p := permsFrom(ctx)
	t, err := a.resolve(ctx, "app", appGUID)
	if err == nil && !p.seesSpace(t.space) {
		err = pando.Errorf(pando.ENotFound, "app not visible")
	}
	if pando.IsNotFound(err) {
		return invalid("Invalid app. Ensure that the app exists and you have access to it.")
	}
	if err != nil {
		return err
	}
	return p.check(t, n, "App")
}

// resolve finds where the resource of kind with guid lives.
func (a *API) resolve(ctx context.Context, kind, guid string) (target, error) {
	appSpace := func(appGUID string) (target, error) {
		app, err := a.store.GetApp(ctx, appGUID)
		if err != nil {
			return target{}, err
		}
		return a.resolve(ctx, "space", app.SpaceGUID)
	}
	switch kind {
	case "app":
		return appSpace(guid)
	case "process":
		p, err := a.store.GetProcess(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return appSpace(p.AppGUID)
	case "package":
		p, err := a.store.GetPackage(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return appSpace(p.AppGUID)
	case "build":
		b, err := a.store.GetBuild(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return appSpace(b.AppGUID)
	case "droplet":
		d, err := a.store.GetDroplet(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return appSpace(d.AppGUID)
	case "task":
		t, err := a.store.GetAppTask(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return appSpace(t.AppGUID)
	case "route":
		rt, err := a.store.GetRoute(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return a.resolve(ctx, "space", rt.SpaceGUID)
	case "space":
		sp, err := a.store.GetSpace(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return target{space: sp.GUID, org: sp.OrgGUID}, nil
	case "org":
		o, err := a.store.GetOrg(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return target{org: o.GUID}, nil
	case "space_quota":
		q, err := a.store.GetQuota(ctx, guid)
		if err != nil {
			return target{}, err
		}
		if q.Kind != pando.QuotaSpace {
			return target{}, pando.Errorf(pando.ENotFound, "space quota %s not found", guid)
		}
		return target{org: q.OrgGUID}, nil
	case "service_instance":
		si, err := a.store.GetServiceInstance(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return a.resolve(ctx, "space", si.SpaceGUID)
	case "service_binding":
		b, err := a.store.GetServiceBinding(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return appSpace(b.AppGUID)
	case "service_route_binding":
		b, err := a.store.GetServiceRouteBinding(ctx, guid)
		if err != nil {
			return target{}, err
		}
		return a.resolve(ctx, "route", b.RouteGUID)
	case "role":
		r, err := a.store.GetRole(ctx, guid)
		if err != nil {
			return target{}, err
		}
		if r.SpaceGUID != "" {
			return a.resolve(ctx, "space", r.SpaceGUID)
		}
		return target{org: r.OrgGUID}, nil
	}
	return target{}, pando.Errorf(pando.EInternal, "no resolver for %q", kind)
}

// pathParam returns the segment of path where pattern has {name}.
func pathParam(pattern, path, name string) string {
	_, pat, _ := strings.Cut(pattern, " ")
	ps, rs := strings.Split(pat, "/"), strings.Split(path, "/")
	for i, s := range ps {
		if s == "{"+name+"}" && i < len(rs) {
			return rs[i]
		}
	}
	return ""
}

// enforceRoles loads the caller's perms into the request and applies the
// endpoint's rule; it runs after the scope check.
func (a *API) enforceRoles(w http.ResponseWriter, r *http.Request, id Identity, pattern string) (*http.Request, bool) {
	ctx := r.Context()
	p, err := a.loadPerms(ctx, id)
	if err != nil {
		a.writeError(w, r, err)
		return r, false
	}
	r = r.WithContext(context.WithValue(ctx, permsKey{}, p))
	if p.admin {
		return r, true
	}
	ru, ok := accessRules[pattern]
	if !ok {
		if pattern == "/" || pattern == "" {
			return r, true // unknown paths: the mux answers 404 "Unknown request"
		}
		a.log.Warn("request refused: endpoint has no access rule", "pattern", pattern)
		a.writeError(w, r, errNotAuthorized())
		return r, false
	}
	if (ru.need == needAdmin || ru.need == needReadAll && !p.readAll) && ru.kind == "" {
		a.writeError(w, r, errNotAuthorized())
		return r, false
	}
	if ru.kind == "" {
		return r, true
	}
	title := notFoundTitles[ru.kind]
	t, err := a.resolve(ctx, ru.kind, pathParam(pattern, r.URL.Path, ru.param))
	if err != nil {
		a.writeError(w, r, asNotFound(err, title))
		return r, false
	}
	if err := p.check(t, ru.need, title); err != nil {
		a.writeError(w, r, err)
		return r, false
	}
	return r, true
}

// visibleBySpace keeps the items in spaces the caller sees.
func visibleBySpace[T any](ctx context.Context, items []T, spaceOf func(T) string) []T {
	p := permsFrom(ctx)
	if p.readAll {
		return items
	}
	return slices.DeleteFunc(items, func(x T) bool { return !p.seesSpace(spaceOf(x)) })
}

// visibleByApp keeps the items of apps the caller sees. A store failure
// shows nothing rather than everything.
func visibleByApp[T any](ctx context.Context, a *API, items []T, appOf func(T) string) []T {
	p := permsFrom(ctx)
	if p.readAll || len(items) == 0 {
		return items
	}
	seen := map[string]bool{}
	if len(p.spaces) > 0 {
		spaces := make([]string, 0, len(p.spaces))
		for s := range p.spaces {
			spaces = append(spaces, s)
		}
		apps, err := a.store.ListApps(ctx, pando.AppFilter{SpaceGUIDs: spaces})
		if err != nil {
			a.log.Error("list visible apps", "err", err)
		}
		for _, app := range apps {
			seen[app.GUID] = true
		}
	}
	return slices.DeleteFunc(items, func(x T) bool { return !seen[appOf(x)] })
}

// visibleEvents keeps the audit events the caller sees: those in spaces
// they see and, for org events, in orgs they manage; platform events only
// for global readers.
func (a *API) visibleEvents(ctx context.Context, events []pando.Event) []pando.Event {
	p := permsFrom(ctx)
	if p.readAll {
		return events
	}
	return slices.DeleteFunc(events, func(e pando.Event) bool {
		if e.SpaceGUID != "" {
			return !p.seesSpace(e.SpaceGUID)
		}
		return e.OrgGUID == "" || !p.managesOrg(e.OrgGUID)
	})
}
