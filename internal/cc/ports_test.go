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
