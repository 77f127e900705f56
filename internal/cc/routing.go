package cc

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// Routes are host.domain[/path] in a space; destinations map a route to an
// app's process. Every change to an app's mappings re-syncs the app so the
// router learns it from the runtime's desired LRPs.

// defaultAppPort is the container port routes reach unless a destination
// says otherwise (CF's default, and the port Pando gives every LRP).
const defaultAppPort = 8080

// maxRouteLength bounds host.domain/path as CF does.
const maxRouteLength = 255

var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validProcessType: 1 to 255 of A-Z, a-z, 0-9, '_', '-'.
func validProcessType(s string) bool { return len(s) <= 255 && nameChars(s, false) }

// nameChars reports whether s is non-empty and holds only ASCII letters,
// digits, '_', '-' and, with dot, '.'.
func nameChars(s string, dot bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || dot && c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// routeURL is how CF (and the cf CLI) shows a route: no scheme.
func routeURL(host, domain, path string) string {
	s := domain
	if host != "" {
		s = host + "." + domain
	}
	return s + path
}

func validateHost(host string, private bool) error {
	if host == "" && private {
		return nil
	}
	if host == "" {
		return invalid("Missing host. Routes in shared domains must have a host defined.")
	}
	if !hostLabel.MatchString(host) {
		return invalid("Host %q is invalid: use 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen", host)
	}
	return nil
}

func validateRoutePath(path string) error {
	if path == "" {
		return nil
	}
	switch {
	case !strings.HasPrefix(path, "/"):
		return invalid("Path must begin with a forward slash '/'.")
	case path == "/":
		return invalid("Path cannot be a single forward slash '/'.")
	case strings.ContainsAny(path, "?#"):
		return invalid("Path cannot contain '?' or '#'.")
	case strings.ContainsAny(path, " \t\r\n\x00"):
		return invalid("Path cannot contain whitespace.")
	}
	return nil
}

func routeExists(host, path, domain string) error {
	msg := fmt.Sprintf("Route already exists with host '%s' for domain '%s'.", host, domain)
	if path != "" {
		msg = fmt.Sprintf("Route already exists with host '%s' and path '%s' for domain '%s'.", host, path, domain)
	}
	return &pando.Error{Kind: pando.EConflict, Message: msg}
}

// defaultHost derives a hostname from an app name: lowercased, every
// character a DNS label cannot hold replaced by '-', trimmed to 63.
func defaultHost(appName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(appName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	return h
}

// domainsByGUID loads every domain; Pando has a handful (shared ones).
func (a *API) domainsByGUID(ctx context.Context) (map[string]pando.Domain, error) {
	ds, err := a.db(ctx).ListDomains(ctx, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	m := make(map[string]pando.Domain, len(ds))
	for _, d := range ds {
		m[d.GUID] = d
	}
	return m, nil
}

// routeHostnames returns "host.domain[/path]" for every route mapped to the
// app's web process, sorted and without duplicates.
func (a *API) routeHostnames(ctx context.Context, appGUID string) ([]string, error) {
	routes, _, err := a.webRoutes(ctx, appGUID)
	return routes, err
}

// webRoutes returns the app's web routes (as routeHostnames) and the
// container port of each whose destination names one other than the
// default. syncApp puts them on the web LRP for the router.
func (a *API) webRoutes(ctx context.Context, appGUID string) ([]string, map[string]int, error) {
	dests, err := a.db(ctx).ListRouteDestinations(ctx, nil, []string{appGUID})
	if err != nil {
		return nil, nil, fmt.Errorf("route destinations of app %s: %w", appGUID, err)
	}
	portOf := map[string]int{}
	var routeGUIDs []string
	for _, d := range dests {
		if d.ProcessType == "web" {
			routeGUIDs = append(routeGUIDs, d.RouteGUID)
			portOf[d.RouteGUID] = d.Port
		}
	}
	if len(routeGUIDs) == 0 {
		return nil, nil, nil
	}
	routes, err := a.db(ctx).ListRoutes(ctx, pando.RouteFilter{GUIDs: routeGUIDs})
	if err != nil {
		return nil, nil, fmt.Errorf("routes of app %s: %w", appGUID, err)
	}
	domains, err := a.domainsByGUID(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, 0, len(routes))
	var ports map[string]int
	for _, r := range routes {
		d, ok := domains[r.DomainGUID]
		if !ok || d.Internal {
			continue // internal domains are for app-to-app traffic, which Pando does not route
		}
		u := routeURL(r.Host, d.Name, r.Path)
		out = append(out, u)
		if p := portOf[r.GUID]; p != 0 && p != defaultAppPort {
			if ports == nil {
				ports = map[string]int{}
			}
			ports[u] = p
		}
	}
	slices.Sort(out)
	return slices.Compact(out), ports, nil
}

// exposeRoutePorts adds the ports of lrp.RoutePorts to lrp.Ports.
func exposeRoutePorts(lrp *pando.DesiredLRP) {
	var extra []int
	for _, p := range lrp.RoutePorts {
		if !slices.Contains(lrp.Ports, p) && !slices.Contains(extra, p) {
			extra = append(extra, p)
		}
	}
	slices.Sort(extra)
	lrp.Ports = append(lrp.Ports, extra...)
}

// keepExposedRoutes drops the routes to ports the LRP does not expose: a
// running container's ports are fixed, so a destination on a new port is
// routed once the app restarts. A route to the first port needs no entry.
func keepExposedRoutes(lrp *pando.DesiredLRP) {
	for r, p := range lrp.RoutePorts {
		switch {
		case len(lrp.Ports) > 0 && p == lrp.Ports[0]:
			delete(lrp.RoutePorts, r)
		case !slices.Contains(lrp.Ports, p):
			delete(lrp.RoutePorts, r)
			lrp.Routes = slices.DeleteFunc(lrp.Routes, func(x string) bool { return x == r })
		}
	}
	if len(lrp.RoutePorts) == 0 {
		lrp.RoutePorts = nil
	}
}

// createRoute validates and records a route in a space.
func (a *API) createRoute(ctx context.Context, host, path string, domain pando.Domain, spaceGUID string) (pando.Route, error) {
	host = strings.ToLower(host)
	if err := validateHost(host, domain.OrgGUID != ""); err != nil {
		return pando.Route{}, err
	}
	if err := validateRoutePath(path); err != nil {
		return pando.Route{}, err
	}
	if name := routeURL(host, domain.Name, ""); slices.Contains(a.cfg.ReservedHosts, name) {
		return pando.Route{}, invalid("Route %s is the platform's own (API, UAA, login or log-cache): choose another host name (for an app's default route: push with --random-route, or give routes: in the manifest)", name)
	}
	if len(routeURL(host, domain.Name, path)) > maxRouteLength {
		return pando.Route{}, invalid("Route must be at most %d characters", maxRouteLength)
	}
	space, err := a.db(ctx).GetSpace(ctx, spaceGUID)
	if err != nil {
		if pando.IsNotFound(err) {
			return pando.Route{}, invalid("Invalid space. Ensure that the space exists and you have access to it.")
		}
		return pando.Route{}, err
	}
	if !domainInOrg(domain, space.OrgGUID) {
		return pando.Route{}, invalid("Invalid domain. Domain '%s' is not available in organization of space '%s'.", domain.Name, space.Name)
	}
	now := a.now()
	rt := pando.Route{GUID: a.newGUID(), Host: host, Path: path, DomainGUID: domain.GUID, SpaceGUID: spaceGUID, CreatedAt: now, UpdatedAt: now}
	// The quota is checked in the transaction that creates the route:
	// concurrent creations cannot together pass it.
	err = a.inTx(ctx, func(ctx context.Context) error {
		existing, err := a.db(ctx).ListRoutes(ctx, pando.RouteFilter{Hosts: []string{host}, Paths: []string{path}, DomainGUIDs: []string{domain.GUID}})
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		if len(existing) > 0 {
			return routeExists(host, path, domain.Name)
		}
		if err := a.checkRouteQuota(ctx, spaceGUID); err != nil {
			return err
		}
		if err := a.db(ctx).CreateRoute(ctx, rt); err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				return routeExists(host, path, domain.Name)
			}
			return fmt.Errorf("create route %s: %w", routeURL(host, domain.Name, path), err)
		}
		return nil
	})
	if err != nil {
		return pando.Route{}, err
	}
	return rt, nil
}

// findRoute returns the route host.domain/path, if it exists.
func (a *API) findRoute(ctx context.Context, host, path string, domain pando.Domain) (pando.Route, bool, error) {
	rs, err := a.db(ctx).ListRoutes(ctx, pando.RouteFilter{Hosts: []string{host}, Paths: []string{path}, DomainGUIDs: []string{domain.GUID}})
	if err != nil {
		return pando.Route{}, false, fmt.Errorf("list routes: %w", err)
	}
	if len(rs) == 0 {
		return pando.Route{}, false, nil
	}
	return rs[0], true, nil
}

// findOrCreateRoute returns host.domain/path in the app's space, creating it
// when missing. A route owned by another space is an error.
func (a *API) findOrCreateRoute(ctx context.Context, host, path string, domain pando.Domain, spaceGUID string) (pando.Route, error) {
	host = strings.ToLower(host)
	for range 2 {
		rt, ok, err := a.findRoute(ctx, host, path, domain)
		if err != nil {
			return pando.Route{}, err
		}
		if ok {
			if rt.SpaceGUID != spaceGUID {
				return pando.Route{}, invalid("The app cannot be mapped to route %s because the route exists in a different space.", routeURL(host, domain.Name, path))
			}
			return rt, nil
		}
		rt, err = a.createRoute(ctx, host, path, domain, spaceGUID)
		if err == nil {
			return rt, nil
		}
		// Lost a race with a concurrent creation: look again.
		if pando.ErrorKindOf(err) != pando.EConflict {
			return pando.Route{}, err
		}
	}
	return pando.Route{}, routeExists(host, path, domain.Name)
}

// mapRoute adds a destination from rt to the app's process type unless one
// exists. It reports whether a mapping was added; the caller syncs.
func (a *API) mapRoute(ctx context.Context, id Identity, rt pando.Route, app pando.App, processType string, port int) (bool, error) {
	if rt.SpaceGUID != app.SpaceGUID {
		return false, invalid("Routes cannot be mapped to destinations in different spaces.")
	}
	if processType == "" {
		processType = "web"
	}
	asked := port
	if port == 0 {
		port = defaultAppPort
	}
	dests, err := a.db(ctx).ListRouteDestinations(ctx, []string{rt.GUID}, []string{app.GUID})
	if err != nil {
		return false, fmt.Errorf("list destinations of route %s: %w", rt.GUID, err)
	}
	for _, d := range dests {
		if d.ProcessType != processType {
			continue
		}
		if asked != 0 && d.Port != asked {
			return false, invalid("The route is already mapped to process '%s' of app '%s' on port %d: unmap it first to map it to port %d.", processType, app.Name, d.Port, asked)
		}
		return false, nil
	}
	d := pando.RouteDestination{GUID: a.newGUID(), RouteGUID: rt.GUID, AppGUID: app.GUID, ProcessType: processType, Port: port, CreatedAt: a.now()}
	if err := a.db(ctx).CreateRouteDestination(ctx, d); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return false, nil
		}
		return false, fmt.Errorf("map route %s to app %s: %w", rt.GUID, app.GUID, err)
	}
	a.recordAppEvent(ctx, id, "audit.app.map-route", app, map[string]any{
		"route_guid": rt.GUID, "destination_guid": d.GUID, "process_type": processType, "app_port": port, "weight": nil, "protocol": "http1",
	})
	return true, nil
}

// unmapDestination removes one destination and records it on the app.
func (a *API) unmapDestination(ctx context.Context, id Identity, d pando.RouteDestination) error {
	if err := a.db(ctx).DeleteRouteDestination(ctx, d.GUID); err != nil && !pando.IsNotFound(err) {
		return fmt.Errorf("unmap route %s from app %s: %w", d.RouteGUID, d.AppGUID, err)
	}
	if app, err := a.db(ctx).GetApp(ctx, d.AppGUID); err == nil {
		a.recordAppEvent(ctx, id, "audit.app.unmap-route", app, map[string]any{
			"route_guid": d.RouteGUID, "destination_guid": d.GUID, "process_type": d.ProcessType, "app_port": d.Port,
		})
	}
	return nil
}

// ensureDefaultRoute maps <app name>.<default domain> to the app's web
// process, creating the route if needed. A route of that name in another
// space is an error; an unmapped one in the app's space is reused.
func (a *API) ensureDefaultRoute(ctx context.Context, id Identity, app pando.App) error {
	host := defaultHost(app.Name)
	if host == "" {
		return invalid("Cannot derive a default route from app name %q: give the app a route or use no-route", app.Name)
	}
	domain, err := a.defaultDomain(ctx)
	if err != nil {
		return err
	}
	rt, err := a.findOrCreateRoute(ctx, host, "", domain, app.SpaceGUID)
	if err != nil {
		return err
	}
	added, err := a.mapRoute(ctx, id, rt, app, "web", 0)
	if err != nil {
		return err
	}
	if added {
		return a.syncApp(ctx, app.GUID)
	}
	return nil
}

// defaultDomain is the shared domain named by Config.Domain.
func (a *API) defaultDomain(ctx context.Context) (pando.Domain, error) {
	ds, err := a.db(ctx).ListDomains(ctx, nil, []string{a.cfg.Domain})
	if err != nil {
		return pando.Domain{}, fmt.Errorf("list domains: %w", err)
	}
	if len(ds) == 0 {
		return pando.Domain{}, pando.Errorf(pando.EInternal, "the default domain %q does not exist", a.cfg.Domain)
	}
	return ds[0], nil
}
