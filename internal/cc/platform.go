package cc

import (
	"net/http"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// The platform's fixed furniture: the root documents the cf CLI reads
// first, orgs and spaces, stacks, audit events and the feature endpoints
// Pando answers with "none".

// registerPlatformRoutes registers every authenticated endpoint this part of
// the package serves: platform resources, routes, buildpacks and manifests.
func (a *API) registerPlatformRoutes(h func(string, handlerFunc)) {
	h("GET /v3/organizations", a.listOrgs)
	h("GET /v3/organizations/{guid}", a.getOrg)
	h("GET /v3/organizations/{guid}/domains", a.listOrgDomains)
	h("GET /v3/organizations/{guid}/domains/default", a.getOrgDefaultDomain)
	h("GET /v3/spaces", a.listSpaces)
	h("GET /v3/spaces/{guid}", a.getSpace)
	h("GET /v3/spaces/{guid}/features", a.listSpaceFeatures)
	h("GET /v3/spaces/{guid}/features/{name}", a.getSpaceFeature)
	h("GET /v3/stacks", a.listStacks)
	h("GET /v3/stacks/{guid}", a.getStack)
	h("GET /v3/audit_events", a.listAuditEvents)
	h("GET /v3/audit_events/{guid}", a.getAuditEvent)
	h("GET /v3/isolation_segments", a.emptyListHandler)

	a.registerInstanceRoutes(h)
	a.registerFeatureFlagRoutes(h)
	a.registerEnvGroupRoutes(h)
	a.registerUsageRoutes(h)
	a.registerRouteRoutes(h)
	a.registerBuildpackRoutes(h)
	a.registerManifestRoutes(h)
}

// getRoot is GET /: the links the cf CLI reads on `cf api` and `cf login`.
// UAA and log-cache are served on the API's own address, and through the
// router on the system domain's hosts for them.
func (a *API) getRoot(w http.ResponseWriter, r *http.Request) error {
	u, ok := externalURLs(r.Context())
	if !ok {
		base := a.cfg.BaseURL
		u = ExternalURLs{API: base, Login: base, UAA: base, LogCache: base}
	}
	if u.Router == "" {
		u.Router = a.cfg.RouterURL
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"links": map[string]any{
			"self":                link(u.API),
			"cloud_controller_v2": nil,
			"cloud_controller_v3": map[string]any{"href": u.API + "/v3", "meta": map[string]any{"version": APIVersion}},
			"login":               link(u.Login),
			"uaa":                 link(u.UAA),
			"log_cache":           link(u.LogCache),
			"app_ssh":             nil,
			"bits_service":        nil,
			"credhub":             nil,
			"log_stream":          nil,
			"logging":             nil,
			"network_policy_v0":   nil,
			"network_policy_v1":   nil,
			"routing":             nil,
			// Pando's own: where the router listens, so clients can show
			// app URLs with the right port.
			"pando_router": link(u.Router),
		},
	})
	return nil
}

// getV3Root is GET /v3: a link to every resource collection.
func (a *API) getV3Root(w http.ResponseWriter, r *http.Request) error {
	links := map[string]any{"self": link(a.url("/v3"))}
	for _, c := range []string{
		"apps", "audit_events", "buildpacks", "builds", "deployments", "domains", "droplets",
		"feature_flags", "info", "isolation_segments", "organizations", "packages", "processes",
		"resource_matches", "routes", "spaces", "stacks",
	} {
		links[c] = link(a.url("/v3/%s", c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"links": links})
	return nil
}

// buildVersion is the binary's module version or VCS revision.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return bi.Main.Version
}

// getInfo is GET /v3/info.
func (a *API) getInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":        "Pando",
		"build":       buildVersion(),
		"version":     1,
		"description": "Pando: Cloud Foundry's Cloud Controller and Diego in one binary",
		"cli_version": map[string]any{"minimum": "8.0.0", "recommended": "8.0.0"},
		// custom is CF's place for a platform's own fields (CF clients
		// ignore it): pando push refuses an upload past the limit before
		// zipping it.
		"custom":         map[string]any{"cc_api_version": APIVersion, "pando_max_upload_bytes": a.cfg.MaxUploadBytes},
		"osbapi_version": "",
		"rate_limits":    map[string]any{"enabled": false, "general_limit": nil, "reset_interval_in_minutes": nil},
		"links": map[string]any{
			"self":    link(a.url("/v3/info")),
			"support": link("https://github.com/pandoplatform/pando"),
		},
	})
	return nil
}

// --- orgs and spaces ---

func (a *API) presentOrg(o pando.Org) map[string]any {
	return map[string]any{
		"guid":          o.GUID,
		"name":          o.Name,
		"suspended":     false,
		"created_at":    ts(o.CreatedAt),
		"updated_at":    ts(o.UpdatedAt),
		"relationships": map[string]any{"quota": rel(o.QuotaGUID)},
		"metadata":      metadata(),
		"links": map[string]any{
			"self":           link(a.url("/v3/organizations/%s", o.GUID)),
			"domains":        link(a.url("/v3/organizations/%s/domains", o.GUID)),
			"default_domain": link(a.url("/v3/organizations/%s/domains/default", o.GUID)),
		},
	}
}

func (a *API) presentSpace(s pando.Space) map[string]any {
	return map[string]any{
		"guid":       s.GUID,
		"name":       s.Name,
		"created_at": ts(s.CreatedAt),
		"updated_at": ts(s.UpdatedAt),
		"relationships": map[string]any{
			"organization": rel(s.OrgGUID),
			"quota":        rel(s.QuotaGUID),
		},
		"metadata": metadata(),
		"links": map[string]any{
			"self":           link(a.url("/v3/spaces/%s", s.GUID)),
			"organization":   link(a.url("/v3/organizations/%s", s.OrgGUID)),
			"features":       link(a.url("/v3/spaces/%s/features", s.GUID)),
			"apply_manifest": map[string]any{"href": a.url("/v3/spaces/%s/actions/apply_manifest", s.GUID), "method": "POST"},
		},
	}
}

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	orgs, err := a.store.ListOrgs(r.Context(), splitList(q, "guids"), splitList(q, "names"))
	if err != nil {
		return err
	}
	p := permsFrom(r.Context())
	orgs = slices.DeleteFunc(orgs, func(o pando.Org) bool { return !p.seesOrg(o.GUID) })
	paginate(a, w, r, orgs, func(o pando.Org) sortable {
		return sortable{name: o.Name, createdAt: o.CreatedAt, updatedAt: o.UpdatedAt}
	}, func(o pando.Org) any { return a.presentOrg(o) })
	return nil
}

func (a *API) getOrg(w http.ResponseWriter, r *http.Request) error {
	o, err := a.store.GetOrg(r.Context(), r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Organization")
	}
	writeJSON(w, http.StatusOK, a.presentOrg(o))
	return nil
}

// listOrgDomains lists the domains an org can use: the shared ones and its
// private ones.
func (a *API) listOrgDomains(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if _, err := a.store.GetOrg(ctx, r.PathValue("guid")); err != nil {
		return asNotFound(err, "Organization")
	}
	q := r.URL.Query()
	ds, err := a.store.ListDomains(ctx, splitList(q, "guids"), splitList(q, "names"))
	if err != nil {
		return err
	}
	a.paginateDomains(w, r, domainsFor(ctx, ds, r.PathValue("guid")))
	return nil
}

func (a *API) getOrgDefaultDomain(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if _, err := a.store.GetOrg(ctx, r.PathValue("guid")); err != nil {
		return asNotFound(err, "Organization")
	}
	d, err := a.defaultDomain(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentDomain(d))
	return nil
}

func (a *API) listSpaces(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	spaces, err := a.store.ListSpaces(r.Context(), splitList(q, "guids"), splitList(q, "names"), splitList(q, "organization_guids"))
	if err != nil {
		return err
	}
	spaces = visibleBySpace(r.Context(), spaces, func(s pando.Space) string { return s.GUID })
	paginate(a, w, r, spaces, func(s pando.Space) sortable {
		return sortable{name: s.Name, createdAt: s.CreatedAt, updatedAt: s.UpdatedAt}
	}, func(s pando.Space) any { return a.presentSpace(s) })
	return nil
}

func (a *API) getSpace(w http.ResponseWriter, r *http.Request) error {
	s, err := a.store.GetSpace(r.Context(), r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Space")
	}
	writeJSON(w, http.StatusOK, a.presentSpace(s))
	return nil
}

// sshFeature is the one space feature CF has; Pando has no SSH.
func sshFeature() map[string]any {
	return map[string]any{"name": "ssh", "description": "Enable SSHing into apps in the space.", "enabled": false}
}

func (a *API) listSpaceFeatures(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.store.GetSpace(r.Context(), r.PathValue("guid")); err != nil {
		return asNotFound(err, "Space")
	}
	features := []map[string]any{sshFeature()}
	paginate(a, w, r, features, func(map[string]any) sortable { return sortable{} }, func(f map[string]any) any { return f })
	return nil
}

func (a *API) getSpaceFeature(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.store.GetSpace(r.Context(), r.PathValue("guid")); err != nil {
		return asNotFound(err, "Space")
	}
	if r.PathValue("name") != "ssh" {
		return notFound("Feature")
	}
	writeJSON(w, http.StatusOK, sshFeature())
	return nil
}

// --- audit events ---

func (a *API) presentEvent(e pando.Event) map[string]any {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	guidOrNil := func(g string) any {
		if g == "" {
			return nil
		}
		return map[string]any{"guid": g}
	}
	return map[string]any{
		"guid":         e.GUID,
		"type":         e.Type,
		"actor":        map[string]any{"guid": e.ActorGUID, "type": e.ActorType, "name": e.ActorName},
		"target":       map[string]any{"guid": e.TargetGUID, "type": e.TargetType, "name": e.TargetName},
		"data":         data,
		"space":        guidOrNil(e.SpaceGUID),
		"organization": guidOrNil(e.OrgGUID),
		"created_at":   ts(e.CreatedAt),
		"updated_at":   ts(e.CreatedAt),
		"links":        map[string]any{"self": link(a.url("/v3/audit_events/%s", e.GUID))},
	}
}

func (a *API) listAuditEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := pando.EventFilter{
		TargetGUIDs: splitList(q, "target_guids"),
		Types:       splitList(q, "types"),
		SpaceGUIDs:  splitList(q, "space_guids"),
		Descending:  strings.HasPrefix(q.Get("order_by"), "-"),
	}
	events, err := a.store.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	if orgs := splitList(q, "organization_guids"); len(orgs) > 0 {
		events = slices.DeleteFunc(events, func(e pando.Event) bool { return !slices.Contains(orgs, e.OrgGUID) })
	}
	events = a.visibleEvents(r.Context(), events)
	paginate(a, w, r, events, func(e pando.Event) sortable {
		return sortable{createdAt: e.CreatedAt, updatedAt: e.CreatedAt}
	}, func(e pando.Event) any { return a.presentEvent(e) })
	return nil
}

// getAuditEvent scans for one event: the store has no lookup by GUID, and
// single-event reads are rare (only the self link leads here).
func (a *API) getAuditEvent(w http.ResponseWriter, r *http.Request) error {
	events, err := a.store.ListEvents(r.Context(), pando.EventFilter{Descending: true})
	if err != nil {
		return err
	}
	events = a.visibleEvents(r.Context(), events)
	i := slices.IndexFunc(events, func(e pando.Event) bool { return e.GUID == r.PathValue("guid") })
	if i < 0 {
		return notFound("Event")
	}
	writeJSON(w, http.StatusOK, a.presentEvent(events[i]))
	return nil
}
