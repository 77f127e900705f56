package cc

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// The /v3/domains and /v3/routes endpoints: presentation and handlers over
// the route service in routing.go.

// --- presentation ---

func (a *API) presentDomain(d pando.Domain) map[string]any {
	var org any
	if d.OrgGUID != "" {
		org = map[string]any{"guid": d.OrgGUID}
	}
	links := map[string]any{
		"self":               link(a.url("/v3/domains/%s", d.GUID)),
		"route_reservations": link(a.url("/v3/domains/%s/route_reservations", d.GUID)),
	}
	if d.OrgGUID != "" {
		links["organization"] = link(a.url("/v3/organizations/%s", d.OrgGUID))
		links["shared_organizations"] = link(a.url("/v3/domains/%s/relationships/shared_organizations", d.GUID))
	}
	return map[string]any{
		"guid":                d.GUID,
		"name":                d.Name,
		"internal":            d.Internal,
		"router_group":        nil,
		"supported_protocols": []string{"http"},
		"created_at":          ts(d.CreatedAt),
		"updated_at":          ts(d.UpdatedAt),
		"metadata":            metadata(),
		"relationships": map[string]any{
			"organization":         map[string]any{"data": org},
			"shared_organizations": a.presentSharedOrgs(d),
		},
		"links": links,
	}
}

func presentDestination(d pando.RouteDestination) map[string]any {
	port := d.Port
	if port == 0 {
		port = defaultAppPort
	}
	return map[string]any{
		"guid":     d.GUID,
		"app":      map[string]any{"guid": d.AppGUID, "process": map[string]any{"type": d.ProcessType}},
		"weight":   nil,
		"port":     port,
		"protocol": "http1",
	}
}

func presentDestinations(ds []pando.RouteDestination) []any {
	out := make([]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, presentDestination(d))
	}
	return out
}

func (a *API) presentRoute(rt pando.Route, domain pando.Domain, dests []pando.RouteDestination) map[string]any {
	return map[string]any{
		"guid":         rt.GUID,
		"protocol":     "http",
		"host":         rt.Host,
		"path":         rt.Path,
		"port":         nil,
		"url":          routeURL(rt.Host, domain.Name, rt.Path),
		"destinations": presentDestinations(dests),
		"options":      map[string]any{},
		"created_at":   ts(rt.CreatedAt),
		"updated_at":   ts(rt.UpdatedAt),
		"metadata":     metadata(),
		"relationships": map[string]any{
			"space":  rel(rt.SpaceGUID),
			"domain": rel(rt.DomainGUID),
		},
		"links": map[string]any{
			"self":         link(a.url("/v3/routes/%s", rt.GUID)),
			"space":        link(a.url("/v3/spaces/%s", rt.SpaceGUID)),
			"domain":       link(a.url("/v3/domains/%s", rt.DomainGUID)),
			"destinations": link(a.url("/v3/routes/%s/destinations", rt.GUID)),
		},
	}
}

// writeRoutes paginates routes with their domains and destinations.
func (a *API) writeRoutes(w http.ResponseWriter, r *http.Request, routes []pando.Route) error {
	ctx := r.Context()
	routes = visibleBySpace(ctx, routes, func(rt pando.Route) string { return rt.SpaceGUID })
	domains, err := a.domainsByGUID(ctx)
	if err != nil {
		return err
	}
	destsByRoute := map[string][]pando.RouteDestination{}
	if len(routes) > 0 {
		guids := make([]string, len(routes))
		for i, rt := range routes {
			guids[i] = rt.GUID
		}
		dests, err := a.store.ListRouteDestinations(ctx, guids, nil)
		if err != nil {
			return fmt.Errorf("list route destinations: %w", err)
		}
		for _, d := range dests {
			destsByRoute[d.RouteGUID] = append(destsByRoute[d.RouteGUID], d)
		}
	}
	paginate(a, w, r, routes, func(rt pando.Route) sortable {
		return sortable{name: rt.Host, createdAt: rt.CreatedAt, updatedAt: rt.UpdatedAt}
	}, func(rt pando.Route) any {
		return a.presentRoute(rt, domains[rt.DomainGUID], destsByRoute[rt.GUID])
	})
	return nil
}

func (a *API) writeRoute(ctx context.Context, w http.ResponseWriter, status int, rt pando.Route) error {
	domain, err := a.store.GetDomain(ctx, rt.DomainGUID)
	if err != nil {
		return fmt.Errorf("domain of route %s: %w", rt.GUID, err)
	}
	dests, err := a.store.ListRouteDestinations(ctx, []string{rt.GUID}, nil)
	if err != nil {
		return fmt.Errorf("destinations of route %s: %w", rt.GUID, err)
	}
	writeJSON(w, status, a.presentRoute(rt, domain, dests))
	return nil
}

// rawList reads a filter whose empty values matter (paths= selects routes
// without a path). present reports whether the parameter was given.
func rawList(q url.Values, key string) (vals []string, present bool) {
	raw, ok := q[key]
	if !ok {
		return nil, false
	}
	for _, v := range raw {
		for _, s := range strings.Split(v, ",") {
			vals = append(vals, strings.TrimSpace(s))
		}
	}
	return vals, true
}

// --- handlers ---

func (a *API) registerRouteRoutes(h func(string, handlerFunc)) {
	h("GET /v3/domains", a.listDomains)
	h("POST /v3/domains", a.postDomain)
	h("GET /v3/domains/{guid}", a.getDomain)
	h("DELETE /v3/domains/{guid}", a.deleteDomain)
	h("GET /v3/domains/{guid}/route_reservations", a.getRouteReservations)
	h("POST /v3/domains/{guid}/relationships/shared_organizations", a.postDomainShares)
	h("DELETE /v3/domains/{guid}/relationships/shared_organizations/{org_guid}", a.deleteDomainShare)
	h("GET /v3/routes", a.listRoutes)
	h("POST /v3/routes", a.postRoute)
	h("GET /v3/routes/{guid}", a.getRoute)
	h("DELETE /v3/routes/{guid}", a.deleteRoute)
	h("GET /v3/routes/{guid}/destinations", a.getDestinations)
	h("POST /v3/routes/{guid}/destinations", a.postDestinations)
	h("PATCH /v3/routes/{guid}/destinations", a.patchDestinations)
	h("DELETE /v3/routes/{guid}/destinations/{dest}", a.deleteDestination)
	h("GET /v3/apps/{guid}/routes", a.listAppRoutes)
	h("DELETE /v3/spaces/{guid}/routes", a.deleteSpaceRoutes)
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ds, err := a.store.ListDomains(r.Context(), splitList(q, "guids"), splitList(q, "names"))
	if err != nil {
		return err
	}
	ds = domainsFor(r.Context(), ds, "")
	if orgs := splitList(q, "organization_guids"); len(orgs) > 0 {
		ds = slices.DeleteFunc(ds, func(d pando.Domain) bool {
			return !slices.Contains(orgs, d.OrgGUID) && !slices.ContainsFunc(d.SharedOrgGUIDs, func(o string) bool { return slices.Contains(orgs, o) })
		})
	}
	a.paginateDomains(w, r, ds)
	return nil
}

func (a *API) paginateDomains(w http.ResponseWriter, r *http.Request, ds []pando.Domain) {
	paginate(a, w, r, ds, func(d pando.Domain) sortable {
		return sortable{name: d.Name, createdAt: d.CreatedAt, updatedAt: d.UpdatedAt}
	}, func(d pando.Domain) any { return a.presentDomain(d) })
}

func (a *API) getDomain(w http.ResponseWriter, r *http.Request) error {
	d, err := a.getVisibleDomain(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentDomain(d))
	return nil
}

func (a *API) getRouteReservations(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d, err := a.getVisibleDomain(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	_, found, err := a.findRoute(ctx, strings.ToLower(q.Get("host")), q.Get("path"), d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"matching_route": found,
		"links":          map[string]any{"domain": link(a.url("/v3/domains/%s", d.GUID))},
	})
	return nil
}

func (a *API) listRoutes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	f := pando.RouteFilter{
		GUIDs:       splitList(q, "guids"),
		DomainGUIDs: splitList(q, "domain_guids"),
		SpaceGUIDs:  splitList(q, "space_guids"),
		AppGUIDs:    splitList(q, "app_guids"),
	}
	if hosts, ok := rawList(q, "hosts"); ok {
		for i := range hosts {
			hosts[i] = strings.ToLower(hosts[i])
		}
		f.Hosts = hosts
	}
	if paths, ok := rawList(q, "paths"); ok {
		f.Paths = paths
	}
	if orgs := splitList(q, "organization_guids"); len(orgs) > 0 {
		spaces, err := a.store.ListSpaces(ctx, nil, nil, orgs)
		if err != nil {
			return err
		}
		inOrg := make([]string, 0, len(spaces))
		for _, s := range spaces {
			if len(f.SpaceGUIDs) == 0 || slices.Contains(f.SpaceGUIDs, s.GUID) {
				inOrg = append(inOrg, s.GUID)
			}
		}
		if len(inOrg) == 0 {
			return a.writeRoutes(w, r, nil)
		}
		f.SpaceGUIDs = inOrg
	}
	routes, err := a.store.ListRoutes(ctx, f)
	if err != nil {
		return err
	}
	return a.writeRoutes(w, r, routes)
}

type relBody struct {
	Data *struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

func (b relBody) guid() string {
	if b.Data == nil {
		return ""
	}
	return b.Data.GUID
}

func (a *API) postRoute(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := a.requireFeature(ctx, identityFrom(ctx), FlagRouteCreation); err != nil {
		return err
	}
	var body struct {
		Host          string `json:"host"`
		Path          string `json:"path"`
		Port          *int   `json:"port"`
		Relationships struct {
			Space  relBody `json:"space"`
			Domain relBody `json:"domain"`
		} `json:"relationships"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if body.Port != nil {
		return invalid("Routes with a port (TCP routes) are not supported; Pando routes HTTP by host name")
	}
	spaceGUID, domainGUID := body.Relationships.Space.guid(), body.Relationships.Domain.guid()
	if spaceGUID == "" {
		return invalid("Relationships Space must be provided")
	}
	if err := a.checkSpace(r.Context(), spaceGUID, needWrite); err != nil {
		return err
	}
	if domainGUID == "" {
		return invalid("Relationships Domain must be provided")
	}
	domain, err := a.getVisibleDomain(ctx, domainGUID)
	if err != nil {
		if pando.IsNotFound(err) {
			return invalid("Invalid domain. Ensure that the domain exists and you have access to it.")
		}
		return err
	}
	rt, err := a.createRoute(ctx, body.Host, body.Path, domain, spaceGUID)
	if err != nil {
		return err
	}
	a.recordRouteEvent(ctx, identityFrom(ctx), "audit.route.create", rt, map[string]any{
		"request": map[string]any{"host": rt.Host, "path": rt.Path, "domain_guid": domain.GUID, "space_guid": spaceGUID},
	})
	return a.writeRoute(ctx, w, http.StatusCreated, rt)
}

func (a *API) getRouteByGUID(ctx context.Context, guid string) (pando.Route, error) {
	rt, err := a.store.GetRoute(ctx, guid)
	if err != nil {
		return pando.Route{}, asNotFound(err, "Route")
	}
	return rt, nil
}

func (a *API) getRoute(w http.ResponseWriter, r *http.Request) error {
	rt, err := a.getRouteByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	return a.writeRoute(r.Context(), w, http.StatusOK, rt)
}

// removeRoute unmaps every destination of rt, deletes it and re-syncs the
// apps it served.
func (a *API) removeRoute(ctx context.Context, id Identity, rt pando.Route) error {
	dests, err := a.store.ListRouteDestinations(ctx, []string{rt.GUID}, nil)
	if err != nil {
		return fmt.Errorf("delete route %s: %w", rt.GUID, err)
	}
	var apps []string
	for _, d := range dests {
		if err := a.unmapDestination(ctx, id, d); err != nil {
			return err
		}
		apps = append(apps, d.AppGUID)
	}
	if err := a.store.DeleteRoute(ctx, rt.GUID); err != nil && !pando.IsNotFound(err) {
		return fmt.Errorf("delete route %s: %w", rt.GUID, err)
	}
	a.routeServicesChanged(ctx) // its route service binding went with it
	return a.syncApps(ctx, apps)
}

// syncApps re-syncs each app once.
func (a *API) syncApps(ctx context.Context, appGUIDs []string) error {
	slices.Sort(appGUIDs)
	for _, g := range slices.Compact(appGUIDs) {
		if err := a.syncApp(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

func (a *API) deleteRoute(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rt, err := a.getRouteByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	id := identityFrom(ctx)
	a.recordRouteEvent(ctx, id, "audit.route.delete-request", rt, map[string]any{"request": map[string]any{"recursive": true}})
	job := a.runJob(ctx, "route.delete", "", rt.GUID, func(ctx context.Context) error {
		return a.removeRoute(context.WithoutCancel(ctx), id, rt)
	})
	a.writeJobAccepted(w, job)
	return nil
}

// deleteSpaceRoutes is `cf delete-orphaned-routes`: DELETE
// /v3/spaces/:guid/routes?unmapped=true removes routes with no destination.
func (a *API) deleteSpaceRoutes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	space, err := a.store.GetSpace(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Space")
	}
	if r.URL.Query().Get("unmapped") != "true" {
		return invalid("Mass delete not supported for routes. Use 'unmapped=true' parameter to delete all unmapped routes.")
	}
	id := identityFrom(ctx)
	job := a.runJob(ctx, "space.delete_unmapped_routes", "space", space.GUID, func(ctx context.Context) error {
		routes, err := a.store.ListRoutes(ctx, pando.RouteFilter{SpaceGUIDs: []string{space.GUID}})
		if err != nil {
			return fmt.Errorf("list routes of space %s: %w", space.GUID, err)
		}
		for _, rt := range routes {
			dests, err := a.store.ListRouteDestinations(ctx, []string{rt.GUID}, nil)
			if err != nil {
				return fmt.Errorf("list destinations of route %s: %w", rt.GUID, err)
			}
			if len(dests) > 0 {
				continue
			}
			if err := a.removeRoute(ctx, id, rt); err != nil {
				return err
			}
		}
		return nil
	})
	a.writeJobAccepted(w, job)
	return nil
}

func (a *API) writeDestinations(ctx context.Context, w http.ResponseWriter, rt pando.Route) error {
	dests, err := a.store.ListRouteDestinations(ctx, []string{rt.GUID}, nil)
	if err != nil {
		return fmt.Errorf("destinations of route %s: %w", rt.GUID, err)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"destinations": presentDestinations(dests),
		"links": map[string]any{
			"self":  link(a.url("/v3/routes/%s/destinations", rt.GUID)),
			"route": link(a.url("/v3/routes/%s", rt.GUID)),
		},
	})
	return nil
}

func (a *API) getDestinations(w http.ResponseWriter, r *http.Request) error {
	rt, err := a.getRouteByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	return a.writeDestinations(r.Context(), w, rt)
}

type destinationBody struct {
	App struct {
		GUID    string `json:"guid"`
		Process *struct {
			Type string `json:"type"`
		} `json:"process"`
	} `json:"app"`
	Port     *int    `json:"port"`
	Protocol *string `json:"protocol"`
}

// wanted is a validated destination request.
type wanted struct {
	app         pando.App
	processType string
	port        int
}

func (a *API) readDestinations(r *http.Request) ([]wanted, error) {
	var body struct {
		Destinations []destinationBody `json:"destinations"`
	}
	if err := readJSON(r, &body); err != nil {
		return nil, err
	}
	if body.Destinations == nil {
		return nil, invalid("Destinations must be an array")
	}
	out := make([]wanted, 0, len(body.Destinations))
	for _, d := range body.Destinations {
		if d.App.GUID == "" {
			return nil, invalid("Destinations must have an app guid")
		}
		typ := "web"
		if d.App.Process != nil && d.App.Process.Type != "" {
			typ = d.App.Process.Type
		}
		if !validProcessType(typ) {
			return nil, invalid("Process type %q is invalid", typ)
		}
		port := 0 // the default port, unless the destination names one
		if d.Port != nil {
			if *d.Port < 1 || *d.Port > 65535 {
				return nil, invalid("Port must be between 1 and 65535")
			}
			port = *d.Port
		}
		if d.Protocol != nil && *d.Protocol != "" && *d.Protocol != "http1" {
			return nil, invalid("Destination protocol must be 'http1'")
		}
		app, err := a.store.GetApp(r.Context(), d.App.GUID)
		if err != nil {
			if pando.IsNotFound(err) {
				return nil, invalid("App(s) with guid(s) \"%s\" do not exist or you do not have access.", d.App.GUID)
			}
			return nil, err
		}
		out = append(out, wanted{app: app, processType: typ, port: port})
	}
	return out, nil
}

func (a *API) postDestinations(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rt, err := a.getRouteByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	want, err := a.readDestinations(r)
	if err != nil {
		return err
	}
	added, err := a.mapWanted(ctx, identityFrom(ctx), rt, want)
	if err != nil {
		return err
	}
	if err := a.syncApps(ctx, added); err != nil {
		return err
	}
	return a.writeDestinations(ctx, w, rt)
}

// mapWanted maps the route to each wanted destination and returns the apps
// whose routes changed.
func (a *API) mapWanted(ctx context.Context, id Identity, rt pando.Route, want []wanted) ([]string, error) {
	var changed []string
	for _, d := range want {
		added, err := a.mapRoute(ctx, id, rt, d.app, d.processType, d.port)
		if err != nil {
			return nil, err
		}
		if added {
			changed = append(changed, d.app.GUID)
		}
	}
	return changed, nil
}

// patchDestinations replaces the route's destinations with the given set.
func (a *API) patchDestinations(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rt, err := a.getRouteByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	want, err := a.readDestinations(r)
	if err != nil {
		return err
	}
	for _, d := range want {
		if d.app.SpaceGUID != rt.SpaceGUID {
			return invalid("Routes cannot be mapped to destinations in different spaces.")
		}
	}
	id := identityFrom(ctx)
	// The set is read and replaced in one transaction: a destination
	// mapped meanwhile is not left over, and the apps sync after the commit.
	err = a.inTx(ctx, func(ctx context.Context) error {
		existing, err := a.db(ctx).ListRouteDestinations(ctx, []string{rt.GUID}, nil)
		if err != nil {
			return fmt.Errorf("destinations of route %s: %w", rt.GUID, err)
		}
		var changed []string
		for _, d := range existing {
			keep := slices.ContainsFunc(want, func(x wanted) bool {
				return x.app.GUID == d.AppGUID && x.processType == d.ProcessType && cmp.Or(x.port, defaultAppPort) == d.Port
			})
			if keep {
				continue
			}
			if err := a.unmapDestination(ctx, id, d); err != nil {
				return err
			}
			changed = append(changed, d.AppGUID)
		}
		added, err := a.mapWanted(ctx, id, rt, want)
		if err != nil {
			return err
		}
		return a.syncApps(ctx, append(changed, added...))
	})
	if err != nil {
		return err
	}
	return a.writeDestinations(ctx, w, rt)
}

func (a *API) deleteDestination(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rt, err := a.getRouteByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	dests, err := a.store.ListRouteDestinations(ctx, []string{rt.GUID}, nil)
	if err != nil {
		return fmt.Errorf("destinations of route %s: %w", rt.GUID, err)
	}
	i := slices.IndexFunc(dests, func(d pando.RouteDestination) bool { return d.GUID == r.PathValue("dest") })
	if i < 0 {
		return notFound("Destination")
	}
	if err := a.unmapDestination(ctx, identityFrom(ctx), dests[i]); err != nil {
		return err
	}
	if err := a.syncApp(ctx, dests[i].AppGUID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listAppRoutes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := pando.RouteFilter{AppGUIDs: []string{app.GUID}, DomainGUIDs: splitList(q, "domain_guids")}
	if hosts, ok := rawList(q, "hosts"); ok {
		for i := range hosts {
			hosts[i] = strings.ToLower(hosts[i])
		}
		f.Hosts = hosts
	}
	if paths, ok := rawList(q, "paths"); ok {
		f.Paths = paths
	}
	routes, err := a.store.ListRoutes(ctx, f)
	if err != nil {
		return err
	}
	return a.writeRoutes(w, r, routes)
}
