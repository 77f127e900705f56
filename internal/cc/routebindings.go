package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/pandoplatform/pando"
)

// Service route bindings (cf bind-route-service, unbind-route-service,
// routes' service column): a route bound to a user-provided instance
// with a route_service_url has its requests sent through that URL by the
// router. Binding and unbinding take effect at once (no restart), as in
// CF; the router reads them from RouteServiceURL.

func (a *API) registerRouteBindingRoutes(h func(string, handlerFunc)) {
	h("GET /v3/service_route_bindings", a.listServiceRouteBindings)
	h("POST /v3/service_route_bindings", a.postServiceRouteBinding)
	h("GET /v3/service_route_bindings/{guid}", a.getServiceRouteBinding)
	h("DELETE /v3/service_route_bindings/{guid}", a.deleteServiceRouteBinding)
}

// routeServiceIndex maps routes (as the router keys them: lower-case
// host.domain, lower-case path without a trailing slash) to their route
// service URL. It is swapped whole, so the router's per-request lookup
// takes no lock and allocates nothing.
type routeServiceIndex struct {
	m atomic.Pointer[map[routeServiceKey]string]
}

type routeServiceKey struct{ host, path string }

func routeServiceKeyOf(host, path string) routeServiceKey {
	return routeServiceKey{strings.ToLower(host), strings.ToLower(strings.TrimRight(path, "/"))}
}

// RouteServiceURL is the route service of the route host (lower-case
// host.domain) and path (lower-case, no trailing slash; "" for none), ""
// when it has none: what the router asks per request
// (router.RouteServices).
func (a *API) RouteServiceURL(host, path string) string {
	m := a.routeServices.m.Load()
	if m == nil || len(*m) == 0 {
		return ""
	}
	return (*m)[routeServiceKey{host, path}]
}

// reloadRouteServices rebuilds the router's view of route services from
// the CCDB: at start-up and after every change to route bindings,
// instances and routes.
func (a *API) reloadRouteServices(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	bs, err := a.store.ListServiceRouteBindings(ctx, pando.ServiceRouteBindingFilter{})
	if err != nil {
		return fmt.Errorf("load route services: %w", err)
	}
	m := make(map[routeServiceKey]string, len(bs))
	domains := map[string]string{}
	for _, b := range bs {
		si, err := a.store.GetServiceInstance(ctx, b.InstanceGUID)
		if err != nil || si.RouteServiceURL == "" {
			continue // deleted meanwhile, or its URL was removed
		}
		rt, err := a.store.GetRoute(ctx, b.RouteGUID)
		if err != nil {
			continue
		}
		dn, ok := domains[rt.DomainGUID]
		if !ok {
			d, err := a.store.GetDomain(ctx, rt.DomainGUID)
			if err != nil {
				continue
			}
			dn = d.Name
			domains[rt.DomainGUID] = dn
		}
		m[routeServiceKeyOf(routeURL(rt.Host, dn, ""), rt.Path)] = si.RouteServiceURL
	}
	a.routeServices.m.Store(&m)
	if a.cfg.RouteServicesChanged != nil {
		routes := make(map[string]string, len(m))
		for k, u := range m {
			routes[k.host+k.path] = u
		}
		a.cfg.RouteServicesChanged(routes)
	}
	return nil
}

// routeServicesChanged reloads the router's view after a change; a
// failure is logged (the next change or restart loads it again).
func (a *API) routeServicesChanged(ctx context.Context) {
	if err := a.reloadRouteServices(context.WithoutCancel(ctx)); err != nil {
		a.log.Error("route services not reloaded", "err", err)
	}
}

func (a *API) presentServiceRouteBinding(b pando.ServiceRouteBinding, routeServiceURL string) map[string]any {
	return map[string]any{
		"guid":              b.GUID,
		"route_service_url": routeServiceURL,
		"created_at":        ts(b.CreatedAt),
		"updated_at":        ts(b.UpdatedAt),
		"last_operation": map[string]any{
			"type": "create", "state": "succeeded", "description": "",
			"created_at": ts(b.CreatedAt), "updated_at": ts(b.UpdatedAt),
		},
		"metadata": metadata(),
		"relationships": map[string]any{
			"route":            rel(b.RouteGUID),
			"service_instance": rel(b.InstanceGUID),
		},
		"links": map[string]any{
			"self":             link(a.url("/v3/service_route_bindings/%s", b.GUID)),
			"route":            link(a.url("/v3/routes/%s", b.RouteGUID)),
			"service_instance": link(a.url("/v3/service_instances/%s", b.InstanceGUID)),
			"parameters":       link(a.url("/v3/service_route_bindings/%s/parameters", b.GUID)),
		},
	}
}

// routeServiceURLOf is the instance's route service URL ("" when it is
// gone).
func (a *API) routeServiceURLOf(ctx context.Context, instanceGUID string) string {
	si, err := a.store.GetServiceInstance(ctx, instanceGUID)
	if err != nil {
		return ""
	}
	return si.RouteServiceURL
}

type routeBindingBody struct {
	Parameters    json.RawMessage `json:"parameters"`
	Relationships struct {
		Route struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"route"`
		ServiceInstance struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"service_instance"`
	} `json:"relationships"`
}

func (a *API) postServiceRouteBinding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in routeBindingBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	p := permsFrom(ctx)
	siGUID, rtGUID := in.Relationships.ServiceInstance.Data.GUID, in.Relationships.Route.Data.GUID
	if siGUID == "" {
		return invalid("Relationships Service instance can't be blank")
	}
	if rtGUID == "" {
		return invalid("Relationships Route can't be blank")
	}
	si, err := a.visibleServiceInstance(ctx, siGUID)
	if pando.IsNotFound(err) {
		return invalid("The service instance could not be found: %s", siGUID)
	}
	if err != nil {
		return err
	}
	rt, err := a.store.GetRoute(ctx, rtGUID)
	if err == nil && !p.seesSpace(rt.SpaceGUID) {
		err = pando.Errorf(pando.ENotFound, "route not visible")
	}
	if pando.IsNotFound(err) {
		return invalid("The route could not be found: %s", rtGUID)
	}
	if err != nil {
		return err
	}
	t, err := a.resolve(ctx, "route", rt.GUID)
	if err != nil {
		return err
	}
	if err := p.check(t, needWrite, "Route"); err != nil {
		return err
	}
	if si.RouteServiceURL == "" {
		return invalid("This service instance does not support route binding.")
	}
	if si.SpaceGUID != rt.SpaceGUID {
		return invalid("The service instance and the route are in different spaces.")
	}
	if err := noBindingParameters(in.Parameters); err != nil {
		return err
	}
	existing, err := a.store.ListServiceRouteBindings(ctx, pando.ServiceRouteBindingFilter{RouteGUIDs: []string{rt.GUID}})
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		if existing[0].InstanceGUID == si.GUID {
			return invalid("The route and service instance are already bound.")
		}
		return invalid("A route may only be bound to a single service instance")
	}
	now := a.now()
	b := pando.ServiceRouteBinding{GUID: a.newGUID(), RouteGUID: rt.GUID, InstanceGUID: si.GUID, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateServiceRouteBinding(ctx, b); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("A route may only be bound to a single service instance")
		}
		return err
	}
	a.routeServicesChanged(ctx)
	a.recordServiceInstanceEvent(ctx, "audit.service_route_binding.create", si)
	writeJSON(w, http.StatusCreated, a.presentServiceRouteBinding(b, si.RouteServiceURL))
	return nil
}

func (a *API) getServiceRouteBinding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := a.store.GetServiceRouteBinding(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentServiceRouteBinding(b, a.routeServiceURLOf(ctx, b.InstanceGUID)))
	return nil
}

func (a *API) listServiceRouteBindings(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	instances, err := a.instancesQueried(ctx, q)
	if err != nil {
		return err
	}
	all, err := a.store.ListServiceRouteBindings(ctx, pando.ServiceRouteBindingFilter{
		GUIDs: splitList(q, "guids"), RouteGUIDs: splitList(q, "route_guids"), InstanceGUIDs: instances,
	})
	if err != nil {
		return err
	}
	visible := visibleBindings(ctx, a, all, "route", func(b pando.ServiceRouteBinding) string { return b.RouteGUID })
	include := splitList(q, "include")
	var inc func([]pando.ServiceRouteBinding) map[string]any
	if len(include) > 0 {
		inc = func(page []pando.ServiceRouteBinding) map[string]any {
			return a.includeForRouteBindings(ctx, page, include)
		}
	}
	paginateWith(a, w, r, visible, func(b pando.ServiceRouteBinding) sortable {
		return sortable{createdAt: b.CreatedAt, updatedAt: b.UpdatedAt}
	}, func(b pando.ServiceRouteBinding) any {
		return a.presentServiceRouteBinding(b, a.routeServiceURLOf(ctx, b.InstanceGUID))
	}, inc)
	return nil
}

func (a *API) includeForRouteBindings(ctx context.Context, page []pando.ServiceRouteBinding, include []string) map[string]any {
	out := map[string]any{}
	if contains(include, "route") {
		routes := []any{}
		for _, guid := range eachOnce(page, func(b pando.ServiceRouteBinding) string { return b.RouteGUID }) {
			rt, err := a.store.GetRoute(ctx, guid)
			if err != nil {
				continue
			}
			d, err := a.store.GetDomain(ctx, rt.DomainGUID)
			if err != nil {
				continue
			}
			dests, err := a.store.ListRouteDestinations(ctx, []string{rt.GUID}, nil)
			if err != nil {
				continue
			}
			routes = append(routes, a.presentRoute(rt, d, dests))
		}
		out["routes"] = routes
	}
	if contains(include, "service_instance") {
		out["service_instances"] = a.includedServiceInstances(ctx, eachOnce(page, func(b pando.ServiceRouteBinding) string { return b.InstanceGUID }))
	}
	return out
}

// deleteServiceRouteBinding unbinds at once (204), as CF does for
// user-provided instances: the route's requests go straight to its apps.
func (a *API) deleteServiceRouteBinding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := a.store.GetServiceRouteBinding(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if err := a.store.DeleteServiceRouteBinding(ctx, b.GUID); err != nil {
		return err
	}
	a.routeServicesChanged(ctx)
	if si, err := a.store.GetServiceInstance(ctx, b.InstanceGUID); err == nil {
		a.recordServiceInstanceEvent(ctx, "audit.service_route_binding.delete", si)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
