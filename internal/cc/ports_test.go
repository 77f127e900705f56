package cc

import (
	"maps"
	"net/http"
	"slices"
	"testing"
)

// TestPorts_destinationPort: a route mapped to the app's port 9090 (cf curl
// POST /v3/routes/:guid/destinations with a port, as CF documents custom
// ports) shows the port; the running containers' ports are fixed, so the
// route reaches the app once it restarts, when its LRP exposes 8080 and
// 9090 and names the route's port for the router.
func TestPorts_destinationPort(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.push("two")
	space := e.spaceGUID()
	def := ctStr(e.list(e.get("/v3/domains?names=localhost"))[0], "guid")
	rt := e.expect(e.sendJSON("POST", "/v3/routes", map[string]any{"host": "two-admin", "relationships": map[string]any{
		"space": map[string]any{"data": map[string]any{"guid": space}}, "domain": map[string]any{"data": map[string]any{"guid": def}}}}), http.StatusCreated)
	dests := e.expect(e.sendJSON("POST", "/v3/routes/"+ctStr(rt, "guid")+"/destinations", map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": app.GUID, "process": map[string]any{"type": "web"}}, "port": 9090}}}), http.StatusOK)
	if d := ctJ(dests, "destinations").([]any); len(d) != 1 || ctNum(d[0], "port") != 9090 {
		t.Errorf("destinations = %v", d)
	}
	e.expectCFError(e.sendJSON("POST", "/v3/routes/"+ctStr(rt, "guid")+"/destinations", map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": app.GUID}, "port": 70000}}}), 422, "CF-UnprocessableEntity", "Port must be between 1 and 65535")

	lrp, _ := e.rt.desiredLRP(app.GUID)
	if !slices.Equal(lrp.Ports, []int{8080}) || !slices.Equal(lrp.Routes, []string{"two.localhost"}) || lrp.RoutePorts != nil {
		t.Errorf("before restart: ports %v, routes %v %v", lrp.Ports, lrp.Routes, lrp.RoutePorts)
	}
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	lrp, _ = e.rt.desiredLRP(app.GUID)
	if !slices.Equal(lrp.Ports, []int{8080, 9090}) || !slices.Equal(lrp.Routes, []string{"two-admin.localhost", "two.localhost"}) ||
		!maps.Equal(lrp.RoutePorts, map[string]int{"two-admin.localhost": 9090}) {
		t.Errorf("after restart: ports %v, routes %v %v", lrp.Ports, lrp.Routes, lrp.RoutePorts)
	}
}

// TestPorts_changingADestinationsPort: PATCH replaces a destination whose
// port changed; POST refuses a second port for the same process, which
// would otherwise be ignored.
func TestPorts_changingADestinationsPort(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.push("moved")
	routes := e.list(e.get("/v3/apps/" + app.GUID + "/routes"))
	if len(routes) != 1 {
		t.Fatalf("routes: %v", routes)
	}
	r := ctStr(routes[0], "guid")
	dest := func(port int) map[string]any {
		return map[string]any{"destinations": []any{map[string]any{"app": map[string]any{"guid": app.GUID}, "port": port}}}
	}
	e.expectCFError(e.sendJSON("POST", "/v3/routes/"+r+"/destinations", dest(9090)), 422, "CF-UnprocessableEntity",
		"The route is already mapped to process 'web' of app 'moved' on port 8080: unmap it first to map it to port 9090.")
	// The same port again is fine (nothing changes).
	e.expect(e.sendJSON("POST", "/v3/routes/"+r+"/destinations", dest(8080)), http.StatusOK)
	got := e.expect(e.sendJSON("PATCH", "/v3/routes/"+r+"/destinations", dest(9090)), http.StatusOK)
	if d := ctJ(got, "destinations").([]any); len(d) != 1 || ctNum(d[0], "port") != 9090 {
		t.Errorf("after PATCH: %v", d)
	}
}
