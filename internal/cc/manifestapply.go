package cc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/pandoplatform/pando"
)

// Applying a parsed manifest to a space: POST
// /v3/spaces/:guid/actions/apply_manifest.

// --- validation against the space ---

// resolvedRoute is a manifest route split into host, domain and path.
type resolvedRoute struct {
	host, path string
	domain     pando.Domain
}

// resolveRoute splits "host.domain/path" by the longest matching domain.
func resolveRoute(route string, domains []pando.Domain) (resolvedRoute, error) {
	hd, path := route, ""
	if i := strings.IndexByte(route, '/'); i >= 0 {
		hd, path = route[:i], route[i:]
	}
	hd = strings.ToLower(hd)
	if strings.Contains(hd, ":") {
		return resolvedRoute{}, invalid("The route '%s' has a port: Pando routes HTTP by host name only", route)
	}
	var best *pando.Domain
	host := ""
	for i := range domains {
		d := &domains[i]
		name := strings.ToLower(d.Name)
		switch {
		case hd == name:
		case strings.HasSuffix(hd, "."+name):
		default:
			continue
		}
		if best == nil || len(d.Name) > len(best.Name) {
			best = d
			host = strings.TrimSuffix(strings.TrimSuffix(hd, name), ".")
		}
	}
	if best == nil {
		return resolvedRoute{}, invalid("The route '%s' did not match any existing domains.", route)
	}
	if err := validateHost(host, best.OrgGUID != ""); err != nil {
		return resolvedRoute{}, invalid("The route '%s' is invalid: %s", route, err.Error())
	}
	if err := validateRoutePath(path); err != nil {
		return resolvedRoute{}, invalid("The route '%s' is invalid: %s", route, err.Error())
	}
	return resolvedRoute{host: host, path: path, domain: *best}, nil
}

// prefixed puts prefix before err's user-facing message, keeping its kind.
func prefixed(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pando.Error
	if errors.As(err, &pe) && pe.Kind != pando.EInternal {
		c := *pe
		c.Message = prefix + pe.Message
		c.Err = nil
		return &c
	}
	return fmt.Errorf("%s%w", prefix, err)
}

// forApp prefixes an error with the application's name, as CF does.
func forApp(name string, err error) error {
	return prefixed(fmt.Sprintf("For application '%s': ", name), err)
}

// checkManifestApp validates what needs the CCDB before anything is
// changed, so a bad manifest changes nothing.
func (a *API) checkManifestApp(ctx context.Context, space pando.Space, m manifestApp, domains []pando.Domain) ([]resolvedRoute, error) {
	existing, err := a.db(ctx).ListApps(ctx, pando.AppFilter{Names: []string{m.Name}, SpaceGUIDs: []string{space.GUID}})
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		app := existing[0]
		if app.LifecycleType == pando.LifecycleDocker && len(cleanBuildpacks(m.Buildpacks)) > 0 {
			return nil, invalid("Buildpack cannot be configured for a docker lifecycle app.")
		}
		if app.LifecycleType != pando.LifecycleDocker && m.DockerImage != "" {
			return nil, invalid("Lifecycle type cannot be changed: the app is a buildpack app; delete it to push a docker image under this name")
		}
	}
	if err := a.checkBuildpacks(ctx, cleanBuildpacks(m.Buildpacks)); err != nil {
		return nil, err
	}
	if m.DockerImage == "" {
		if err := a.checkStack(ctx, m.Stack); err != nil {
			return nil, err
		}
	}
	if err := m.webSettings().update().validate(); err != nil {
		return nil, err
	}
	for _, p := range m.Processes {
		if err := p.update().validate(); err != nil {
			return nil, prefixed(fmt.Sprintf("Process %q: ", p.Type), err)
		}
	}
	var routes []resolvedRoute
	for _, r := range m.Routes {
		rr, err := resolveRoute(r, domains)
		if err != nil {
			return nil, err
		}
		rt, ok, err := a.findRoute(ctx, rr.host, rr.path, rr.domain)
		if err != nil {
			return nil, err
		}
		if ok && rt.SpaceGUID != space.GUID {
			return nil, invalid("The app cannot be mapped to route %s because the route exists in a different space.", r)
		}
		routes = append(routes, rr)
	}
	return routes, nil
}

// --- applying ---

// applyManifestApp applies one app's part of a manifest in one CCDB
// transaction: a failure half-way (a route quota, a reserved host, a drain
// limit) leaves the app as it was, and the runtime hears of the app's new
// state only once it is committed.
func (a *API) applyManifestApp(ctx context.Context, id Identity, space pando.Space, m manifestApp, routes []resolvedRoute) error {
	bound := false
	err := a.inTx(ctx, func(ctx context.Context) error {
		app, err := a.applyManifestRecord(ctx, id, space, m)
		if err != nil {
			return err
		}
		if err := a.applyManifestProcesses(ctx, id, app, m); err != nil {
			return err
		}
		if err := a.applyManifestRoutes(ctx, id, app, m, routes); err != nil {
			return err
		}
		if bound, err = a.applyManifestServices(ctx, id, app, m); err != nil {
			return err
		}
		a.recordAppEvent(ctx, id, "audit.app.apply_manifest", app, map[string]any{})
		return a.syncApp(ctx, app.GUID)
	})
	if bound {
		// The drains reload from the CCDB: a kick after a failed commit
		// (or with a failed sync after a good one) costs one reload.
		a.servicesChanged()
	}
	return err
}

// applyManifestRecord creates the app or updates its lifecycle and env.
func (a *API) applyManifestRecord(ctx context.Context, id Identity, space pando.Space, m manifestApp) (pando.App, error) {
	existing, err := a.db(ctx).ListApps(ctx, pando.AppFilter{Names: []string{m.Name}, SpaceGUIDs: []string{space.GUID}})
	if err != nil {
		return pando.App{}, err
	}
	if len(existing) == 0 {
		in := appCreate{Name: m.Name, SpaceGUID: space.GUID, Buildpacks: m.Buildpacks, Stack: m.Stack, EnvVars: m.Env}
		if m.DockerImage != "" {
			in.LifecycleType = pando.LifecycleDocker
		}
		return a.createApp(ctx, id, in)
	}
	changed := false
	app, err := a.mutateApp(ctx, existing[0].GUID, func(app *pando.App) error {
		if m.BuildpacksSet {
			app.Buildpacks = cleanBuildpacks(m.Buildpacks)
			changed = true
		}
		if m.Stack != "" && m.Stack != app.Stack && app.LifecycleType == pando.LifecycleBuildpack {
			app.Stack = m.Stack
			changed = true
		}
		if !changed {
			return errUnchanged
		}
		return nil
	})
	if err != nil {
		return pando.App{}, fmt.Errorf("update app %s: %w", existing[0].GUID, err)
	}
	if changed {
		a.recordAppEvent(ctx, id, "audit.app.update", app, map[string]any{"request": map[string]any{"manifest_triggered": true}})
	}
	if len(m.Env) > 0 {
		vars := make(map[string]*string, len(m.Env))
		for k, v := range m.Env {
			vars[k] = &v
		}
		return a.updateEnvVars(ctx, id, app, vars)
	}
	return app, nil
}

func (a *API) applyManifestProcesses(ctx context.Context, id Identity, app pando.App, m manifestApp) error {
	want := map[string]processSettings{"web": m.webSettings()}
	order := []string{"web"}
	for _, p := range m.Processes {
		if p.Type != "web" {
			want[p.Type] = p.processSettings
			order = append(order, p.Type)
		}
	}
	procs, err := a.db(ctx).ListProcesses(ctx, nil, []string{app.GUID})
	if err != nil {
		return fmt.Errorf("processes of app %s: %w", app.GUID, err)
	}
	byType := map[string]pando.Process{}
	for _, p := range procs {
		byType[p.Type] = p
	}
	for _, typ := range order {
		s := want[typ]
		p, ok := byType[typ]
		if !ok {
			p = a.defaultProcess(app, typ)
			if err := a.db(ctx).CreateProcess(ctx, p); err != nil {
				return fmt.Errorf("create process %s of app %s: %w", typ, app.GUID, err)
			}
			a.recordProcessCreate(ctx, id, app, p)
		}
		if s.empty() {
			continue
		}
		if _, err := a.updateProcess(ctx, id, p, s.update()); err != nil {
			return err
		}
	}
	return nil
}

func (a *API) applyManifestRoutes(ctx context.Context, id Identity, app pando.App, m manifestApp, routes []resolvedRoute) error {
	mapped, err := a.db(ctx).ListRouteDestinations(ctx, nil, []string{app.GUID})
	if err != nil {
		return fmt.Errorf("routes of app %s: %w", app.GUID, err)
	}
	switch {
	case m.NoRoute:
		for _, d := range mapped {
			if err := a.unmapDestination(ctx, id, d); err != nil {
				return err
			}
		}
	case len(routes) > 0:
		for _, rr := range routes {
			rt, err := a.findOrCreateRoute(ctx, rr.host, rr.path, rr.domain, app.SpaceGUID)
			if err != nil {
				return err
			}
			if _, err := a.mapRoute(ctx, id, rt, app, "web", 0); err != nil {
				return err
			}
		}
	case len(mapped) > 0:
		// default-route and random-route only give a route to an app
		// that has none.
	case m.RandomRoute:
		return a.randomRoute(ctx, id, app)
	case m.DefaultRoute:
		return a.ensureDefaultRoute(ctx, id, app)
	}
	return nil
}

// randomRoute maps <app>-<random>.<default domain> to the app.
func (a *API) randomRoute(ctx context.Context, id Identity, app pando.App) error {
	domain, err := a.defaultDomain(ctx)
	if err != nil {
		return err
	}
	base := defaultHost(app.Name)
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	for range 5 {
		host := strings.TrimLeft(base+"-"+strings.ReplaceAll(a.newGUID(), "-", "")[:8], "-")
		rt, err := a.createRoute(ctx, host, "", domain, app.SpaceGUID)
		if pando.ErrorKindOf(err) == pando.EConflict {
			continue
		}
		if err != nil {
			return err
		}
		_, err = a.mapRoute(ctx, id, rt, app, "web", 0)
		return err
	}
	return pando.Errorf(pando.EInternal, "could not find a free random route for app %s", app.Name)
}

// --- handlers ---

func (a *API) registerManifestRoutes(h func(string, handlerFunc)) {
	h("POST /v3/spaces/{guid}/actions/apply_manifest", a.applyManifest)
	h("POST /v3/spaces/{guid}/manifest_diff", a.manifestDiff)
}

// readManifest checks the content type, bounds and parses the body.
func readManifest(r *http.Request) ([]manifestApp, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml":
	default:
		return nil, &pando.Error{Kind: pando.EBadRequest, Code: 10004, Title: "CF-InvalidRequest", Message: "Content-Type must be yaml"}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
	if err != nil {
		return nil, pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: %v", err)
	}
	if len(data) > maxManifestBytes {
		return nil, pando.Errorf(pando.ETooLarge, "The manifest exceeds %d bytes", maxManifestBytes)
	}
	return parseManifest(data)
}

// applyManifest is POST /v3/spaces/:guid/actions/apply_manifest. Everything
// that can be checked is checked first (a bad manifest changes nothing);
// the job then runs before the answer, so it is COMPLETE or FAILED when
// the cf CLI first polls it.
func (a *API) applyManifest(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	space, err := a.db(ctx).GetSpace(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Space")
	}
	apps, err := readManifest(r)
	if err != nil {
		return err
	}
	domains, err := a.db(ctx).ListDomains(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	domains = domainsFor(ctx, domains, space.OrgGUID)
	routes := make([][]resolvedRoute, len(apps))
	for i, m := range apps {
		if routes[i], err = a.checkManifestApp(ctx, space, m, domains); err != nil {
			return forApp(m.Name, err)
		}
		if err := a.checkManifestServices(ctx, space, m); err != nil {
			return forApp(m.Name, err)
		}
	}
	id := identityFrom(ctx)
	job := a.runJob(ctx, "space.apply_manifest", "space", space.GUID, func(ctx context.Context) error {
		// Finish even if the client goes away: half an app is worse.
		ctx = context.WithoutCancel(ctx)
		for i, m := range apps {
			if err := a.applyManifestApp(ctx, id, space, m, routes[i]); err != nil {
				return forApp(m.Name, err)
			}
		}
		return nil
	})
	a.writeJobAccepted(w, job)
	return nil
}
