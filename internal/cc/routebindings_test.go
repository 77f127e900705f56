package cc

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando"
)

// TestServiceRouteBindings_bindRouteServiceReachesTheRouter replays cf
// bind-route-service and unbind-route-service as a space developer: the
// route's service URL is what the router is told at once, and the
// binding's rules (a route service URL, same space, one per route, roles)
// are CF's.
func TestServiceRouteBindings_bindRouteServiceReachesTheRouter(t *testing.T) {
	e, _ := svNew(t)
	sp := e.space()
	ctx := t.Context()
	rt := pando.Route{GUID: "route-1", Host: "Web", Path: "/admin", DomainGUID: e.domain().GUID, SpaceGUID: sp.GUID}
	if err := e.store.CreateRoute(ctx, rt); err != nil {
		t.Fatal(err)
	}
	newInstance := func(name, extra string) string {
		si := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"type":"user-provided","name":"`+name+`",`+extra+`"relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusCreated)
		return si["guid"].(string)
	}
	rs := newInstance("auth", `"route_service_url":"https://rs.example.com/check",`)
	plain := newInstance("plain", "")
	other := newInstance("other", `"route_service_url":"https://other.example.com",`)
	body := func(si string) string {
		return `{"relationships":{"route":{"data":{"guid":"` + rt.GUID + `"}},"service_instance":{"data":{"guid":"` + si + `"}}}}`
	}
	detail := func(rec interface{ Result() *http.Response }) string {
		m := decodeBody(t, rec, http.StatusUnprocessableEntity)
		return m["errors"].([]any)[0].(map[string]any)["detail"].(string)
	}

	if got := e.api.RouteServiceURL("web.localhost", "/admin"); got != "" {
		t.Fatalf("route service before binding: %q", got)
	}
	if d := detail(e.doAs(svDev, "POST", "/v3/service_route_bindings", body(plain))); d != "This service instance does not support route binding." {
		t.Errorf("instance without route_service_url: %q", d)
	}
	if d := detail(e.doAs(svDev, "POST", "/v3/service_route_bindings", body("nope"))); !strings.Contains(d, "The service instance could not be found") {
		t.Errorf("unknown instance: %q", d)
	}
	decodeBody(t, e.doAs(svAud, "POST", "/v3/service_route_bindings", body(rs)), http.StatusForbidden)

	// cf bind-route-service localhost auth --hostname web --path /admin
	b := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_route_bindings", body(rs)), http.StatusCreated)
	if b["route_service_url"] != "https://rs.example.com/check" || b["relationships"].(map[string]any)["route"].(map[string]any)["data"].(map[string]any)["guid"] != rt.GUID {
		t.Fatalf("binding: %v", b)
	}
	bGUID := b["guid"].(string)
	// The router asks with the lower-case host and the route's path.
	if got := e.api.RouteServiceURL("web.localhost", "/admin"); got != "https://rs.example.com/check" {
		t.Errorf("router sees %q after binding", got)
	}
	if got := e.api.RouteServiceURL("web.localhost", ""); got != "" {
		t.Errorf("another route of the host got the route service: %q", got)
	}
	if d := detail(e.doAs(svDev, "POST", "/v3/service_route_bindings", body(rs))); d != "The route and service instance are already bound." {
		t.Errorf("bound twice: %q", d)
	}
	if d := detail(e.doAs(svDev, "POST", "/v3/service_route_bindings", body(other))); d != "A route may only be bound to a single service instance" {
		t.Errorf("second instance: %q", d)
	}

	// cf routes / unbind-route-service lookups; the auditor reads.
	list := ptResources(decodeBody(t, e.doAs(svAud, "GET", "/v3/service_route_bindings?route_guids="+rt.GUID+"&service_instance_guids="+rs, ""), http.StatusOK))
	if len(list) != 1 || list[0]["guid"] != bGUID {
		t.Fatalf("list: %v", list)
	}
	inc := decodeBody(t, e.doAs(svDev, "GET", "/v3/service_route_bindings?service_instance_names=auth&include=route,service_instance", ""), http.StatusOK)
	if got := inc["included"].(map[string]any); len(got["routes"].([]any)) != 1 || len(got["service_instances"].([]any)) != 1 {
		t.Errorf("included: %v", got)
	}
	decodeBody(t, e.doAs(svAud, "GET", "/v3/service_route_bindings/"+bGUID, ""), http.StatusOK)
	decodeBody(t, e.doAs(svAud, "DELETE", "/v3/service_route_bindings/"+bGUID, ""), http.StatusForbidden)

	// A changed URL reaches the router at once.
	decodeBody(t, e.doAs(svDev, "PATCH", "/v3/service_instances/"+rs, `{"route_service_url":"https://rs2.example.com"}`), http.StatusOK)
	if got := e.api.RouteServiceURL("web.localhost", "/admin"); got != "https://rs2.example.com" {
		t.Errorf("router sees %q after the URL changed", got)
	}

	if rec := e.doAs(svDev, "DELETE", "/v3/service_route_bindings/"+bGUID, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("unbind: %d %s", rec.Code, rec.Body)
	}
	if got := e.api.RouteServiceURL("web.localhost", "/admin"); got != "" {
		t.Errorf("router still sees %q after unbinding", got)
	}
	decodeBody(t, e.doAs(svDev, "GET", "/v3/service_route_bindings/"+bGUID, ""), http.StatusNotFound)

	// Deleting the route takes its binding and the router's entry.
	decodeBody(t, e.doAs(svDev, "POST", "/v3/service_route_bindings", body(other)), http.StatusCreated)
	if got := e.api.RouteServiceURL("web.localhost", "/admin"); got != "https://other.example.com" {
		t.Fatalf("router sees %q", got)
	}
	e.job(e.doAs(svDev, "DELETE", "/v3/routes/"+rt.GUID, ""))
	if got := e.api.RouteServiceURL("web.localhost", "/admin"); got != "" {
		t.Errorf("router still sees %q after the route was deleted", got)
	}
}

// Routers in other processes learn route services through
// RouteServicesChanged: every bound route with its URL, after each bind
// and unbind.
func TestServiceRouteBindings_routeServicesChangedTellsEveryBoundRoute(t *testing.T) {
	var (
		mu   sync.Mutex
		told []map[string]string
	)
	e, _ := svNew(t, func(c *Config) {
		c.RouteServicesChanged = func(m map[string]string) {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, m)
		}
	})
	last := func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		if len(told) == 0 {
			return nil
		}
		return told[len(told)-1]
	}
	sp := e.space()
	rt := pando.Route{GUID: "route-1", Host: "Web", Path: "/Admin/", DomainGUID: e.domain().GUID, SpaceGUID: sp.GUID}
	if err := e.store.CreateRoute(t.Context(), rt); err != nil {
		t.Fatal(err)
	}
	si := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"type":"user-provided","name":"auth","route_service_url":"https://rs.example.com/check","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusCreated)["guid"].(string)
	if got := last(); len(got) != 0 {
		t.Fatalf("before binding: %v", got)
	}
	b := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_route_bindings", `{"relationships":{"route":{"data":{"guid":"`+rt.GUID+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`), http.StatusCreated)["guid"].(string)
	if got := last(); len(got) != 1 || got["web.localhost/admin"] != "https://rs.example.com/check" {
		t.Fatalf("after binding: %v, want web.localhost/admin", got)
	}
	if rec := e.doAs(svDev, "DELETE", "/v3/service_route_bindings/"+b, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("unbind: %d %s", rec.Code, rec.Body)
	}
	if got := last(); got == nil || len(got) != 0 {
		t.Fatalf("after unbinding: %v, want none", got)
	}
}

func TestServiceRouteBindings_instanceAndRouteInDifferentSpaces(t *testing.T) {
	e, _ := svNew(t)
	sp := e.space()
	other := pando.Space{GUID: "space-2", Name: "other", OrgGUID: sp.OrgGUID}
	if err := e.store.CreateSpace(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	rt := pando.Route{GUID: "route-2", Host: "x", DomainGUID: e.domain().GUID, SpaceGUID: other.GUID}
	if err := e.store.CreateRoute(t.Context(), rt); err != nil {
		t.Fatal(err)
	}
	si := decodeBody(t, e.doAs("bearer test", "POST", "/v3/service_instances", `{"type":"user-provided","name":"auth","route_service_url":"https://rs.example.com","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusCreated)
	rec := e.doAs("bearer test", "POST", "/v3/service_route_bindings", `{"relationships":{"route":{"data":{"guid":"`+rt.GUID+`"}},"service_instance":{"data":{"guid":"`+si["guid"].(string)+`"}}}}`)
	d := decodeBody(t, rec, http.StatusUnprocessableEntity)["errors"].([]any)[0].(map[string]any)["detail"]
	if d != "The service instance and the route are in different spaces." {
		t.Errorf("detail %q", d)
	}
	// The developer of the first space cannot see the other space's route.
	rec = e.doAs(svDev, "POST", "/v3/service_route_bindings", `{"relationships":{"route":{"data":{"guid":"`+rt.GUID+`"}},"service_instance":{"data":{"guid":"`+si["guid"].(string)+`"}}}}`)
	if d := decodeBody(t, rec, http.StatusUnprocessableEntity)["errors"].([]any)[0].(map[string]any)["detail"]; d != "The route could not be found: route-2" {
		t.Errorf("detail %q", d)
	}
}
