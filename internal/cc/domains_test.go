package cc

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// TestContract40_sharedDomainAndRoutes replays trace 40 (cf
// create-shared-domain) and the route verbs on the new domain, as cf v8
// sends them: create-route with a host and path, map-route, routes,
// unmap-route, delete-route, then delete-shared-domain (a job that takes
// the domain's routes with it).
func TestContract40_sharedDomainAndRoutes(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.push("app1")
	space := e.spaceGUID()

	// 40 cf create-shared-domain example.test
	d := e.expect(e.sendJSON("POST", "/v3/domains", map[string]any{"internal": false, "name": "example.test"}), http.StatusCreated)
	dGUID := ctStr(d, "guid")
	if ctStr(d, "name") != "example.test" || ctJ(d, "internal") != false || ctJ(d, "router_group") != nil ||
		ctJ(d, "relationships.organization.data") != nil || ctStr(d, "links.self.href") != e.base+"/v3/domains/"+dGUID {
		t.Errorf("created domain: %v", d)
	}
	e.expectCFError(e.sendJSON("POST", "/v3/domains", map[string]any{"name": "Example.TEST"}), 422, "CF-UnprocessableEntity",
		`The domain name "example.test" is already in use`)
	e.expectCFError(e.sendJSON("POST", "/v3/domains", map[string]any{"name": "nodot"}), 422, "CF-UnprocessableEntity",
		`Name must contain at least one "."`)
	e.expectCFError(e.sendJSON("POST", "/v3/domains", map[string]any{"name": "bad_label.test"}), 422, "CF-UnprocessableEntity",
		"Name does not comply with RFC 1035 standards")

	// cf domains: the org's list has the default domain and the new one.
	org := ctStr(e.list(e.get("/v3/organizations?names=" + SeedOrgName))[0], "guid")
	var names []string
	for _, x := range e.list(e.get("/v3/organizations/" + org + "/domains")) {
		names = append(names, ctStr(x, "name"))
	}
	if !slices.Contains(names, "example.test") || !slices.Contains(names, "localhost") {
		t.Errorf("org domains = %v", names)
	}

	// cf create-route example.test --hostname h1 --path /p
	lookup := func() {
		t.Helper()
		if l := e.list(e.get("/v3/domains?names=example.test")); len(l) != 1 || ctStr(l[0], "guid") != dGUID {
			t.Fatalf("domain lookup: %v", l)
		}
	}
	lookup()
	newRoute := func(host, path string) ctResp {
		return e.sendJSON("POST", "/v3/routes", map[string]any{"host": host, "path": path, "relationships": map[string]any{
			"space": map[string]any{"data": map[string]any{"guid": space}}, "domain": map[string]any{"data": map[string]any{"guid": dGUID}}}})
	}
	rt := e.expect(newRoute("h1", "/p"), http.StatusCreated)
	rGUID := ctStr(rt, "guid")
	if ctStr(rt, "url") != "h1.example.test/p" || ctStr(rt, "relationships.domain.data.guid") != dGUID {
		t.Errorf("route: %v", rt)
	}
	e.expectCFError(newRoute("h1", "/p"), 422, "CF-UnprocessableEntity", "Route already exists with host 'h1' and path '/p' for domain 'example.test'.")
	e.expectCFError(newRoute("", ""), 422, "CF-UnprocessableEntity", "Missing host. Routes in shared domains must have a host defined.")

	// cf map-route app1 example.test --hostname h1 --path /p
	lookup()
	found := e.list(e.get("/v3/routes?domain_guids=" + dGUID + "&hosts=h1&paths=" + url.QueryEscape("/p")))
	if len(found) != 1 || ctStr(found[0], "guid") != rGUID {
		t.Fatalf("route lookup: %v", found)
	}
	e.expect(e.sendJSON("POST", "/v3/routes/"+rGUID+"/destinations", map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": app.GUID, "process": map[string]any{"type": "web"}}}}}), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); !slices.Equal(lrp.Routes, []string{"app1.localhost", "h1.example.test/p"}) {
		t.Errorf("web LRP routes = %v", lrp.Routes)
	}
	// cf routes: both of the app's routes.
	var urls []string
	for _, x := range e.list(e.get("/v3/routes?space_guids=" + space)) {
		urls = append(urls, ctStr(x, "url"))
	}
	slices.Sort(urls)
	if !slices.Equal(urls, []string{"app1.localhost", "h1.example.test/p"}) {
		t.Errorf("routes = %v", urls)
	}

	// cf unmap-route app1 example.test --hostname h1 --path /p
	dests := e.expect(e.get("/v3/routes/"+rGUID+"/destinations"), http.StatusOK)
	dest := ctStr(ctJ(dests, "destinations").([]any)[0], "guid")
	e.expect(e.send("DELETE", "/v3/routes/"+rGUID+"/destinations/"+dest, "application/json", nil), http.StatusNoContent)
	if lrp, _ := e.rt.desiredLRP(app.GUID); !slices.Equal(lrp.Routes, []string{"app1.localhost"}) {
		t.Errorf("web LRP routes after unmap = %v", lrp.Routes)
	}
	// cf delete-route example.test --hostname h1 --path /p -f
	e.completeJob(e.send("DELETE", "/v3/routes/"+rGUID, "application/json", nil))

	// A mapped route on the domain goes with it: cf delete-shared-domain.
	r2 := ctStr(e.expect(newRoute("h2", ""), http.StatusCreated), "guid")
	e.expect(e.sendJSON("POST", "/v3/routes/"+r2+"/destinations", map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": app.GUID}}}}), http.StatusOK)
	lookup()
	if job := e.completeJob(e.send("DELETE", "/v3/domains/"+dGUID, "application/json", nil)); ctStr(job, "operation") != "domain.delete" {
		t.Errorf("delete job: %v", job)
	}
	if l := e.list(e.get("/v3/domains?names=example.test")); len(l) != 0 {
		t.Errorf("domain after delete: %v", l)
	}
	e.expectCFError(e.get("/v3/routes/"+r2), 404, "CF-ResourceNotFound", "Route not found")
	if lrp, _ := e.rt.desiredLRP(app.GUID); !slices.Equal(lrp.Routes, []string{"app1.localhost"}) {
		t.Errorf("web LRP routes after delete-shared-domain = %v", lrp.Routes)
	}
	// Routes on an internal domain are not given to the router.
	in := e.expect(e.sendJSON("POST", "/v3/domains", map[string]any{"internal": true, "name": "apps.internal"}), http.StatusCreated)
	if ctJ(in, "internal") != true {
		t.Errorf("internal domain: %v", in)
	}
	r3 := ctStr(e.expect(e.sendJSON("POST", "/v3/routes", map[string]any{"host": "app1", "relationships": map[string]any{
		"space": map[string]any{"data": map[string]any{"guid": space}}, "domain": map[string]any{"data": map[string]any{"guid": ctStr(in, "guid")}}}}), http.StatusCreated), "guid")
	e.expect(e.sendJSON("POST", "/v3/routes/"+r3+"/destinations", map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": app.GUID}}}}), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); !slices.Equal(lrp.Routes, []string{"app1.localhost"}) {
		t.Errorf("web LRP routes with an internal route = %v", lrp.Routes)
	}
	// The platform's app domain stays.
	def := ctStr(e.list(e.get("/v3/domains?names=localhost"))[0], "guid")
	e.expectCFError(e.send("DELETE", "/v3/domains/"+def, "application/json", nil), 422, "CF-UnprocessableEntity", "")
}

// TestDomains_private: cf create-private-domain by an org manager; the
// domain is seen and used in that org only; host-less routes are allowed on
// it; shared domains stay the admin's; deleting the org deletes it.
func TestDomains_private(t *testing.T) {
	e := ctNew(t, ctOpts{})
	mkOrg := func(name string) string {
		return ctStr(e.expect(e.sendJSON("POST", "/v3/organizations", map[string]any{"name": name}), http.StatusCreated), "guid")
	}
	o1, o2 := mkOrg("o1"), mkOrg("o2")
	mkSpace := func(org string) string {
		return ctStr(e.expect(e.sendJSON("POST", "/v3/spaces", map[string]any{"name": "s",
			"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}}), http.StatusCreated), "guid")
	}
	s1, s2 := mkSpace(o1), mkSpace(o2)
	u := e.expect(e.sendJSON("POST", "/Users", map[string]any{"userName": "mgr", "password": "mgr-pw",
		"emails": []any{map[string]any{"value": "mgr", "primary": true}}}), http.StatusCreated)
	e.expect(e.sendJSON("POST", "/v3/users", map[string]any{"guid": ctStr(u, "id")}), http.StatusCreated)
	for _, typ := range []string{"organization_manager"} {
		e.expect(e.sendJSON("POST", "/v3/roles", map[string]any{"type": typ, "relationships": map[string]any{
			"organization": map[string]any{"data": map[string]any{"guid": o1}}, "user": map[string]any{"data": map[string]any{"username": "mgr"}}}}), http.StatusCreated)
	}
	e.expect(e.sendJSON("POST", "/v3/roles", map[string]any{"type": "space_developer", "relationships": map[string]any{
		"space": map[string]any{"data": map[string]any{"guid": s1}}, "user": map[string]any{"data": map[string]any{"username": "mgr"}}}}), http.StatusCreated)

	e.auth("mgr", "mgr-pw")
	e.expectCFError(e.sendJSON("POST", "/v3/domains", map[string]any{"name": "shared.test"}), 403, "CF-NotAuthorized", "")
	private := func(name, org string) ctResp {
		return e.sendJSON("POST", "/v3/domains", map[string]any{"name": name,
			"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	}
	e.expectCFError(private("other.test", o2), 422, "CF-UnprocessableEntity",
		"Organization with guid '"+o2+"' does not exist or you do not have access to it.")
	// cf create-private-domain o1 mine.test
	d := e.expect(private("mine.test", o1), http.StatusCreated)
	dGUID := ctStr(d, "guid")
	if ctStr(d, "relationships.organization.data.guid") != o1 {
		t.Errorf("private domain: %v", d)
	}
	// A route without a host on it, in the org's space.
	route := func(space, host string) ctResp {
		return e.sendJSON("POST", "/v3/routes", map[string]any{"host": host, "relationships": map[string]any{
			"space": map[string]any{"data": map[string]any{"guid": space}}, "domain": map[string]any{"data": map[string]any{"guid": dGUID}}}})
	}
	if rt := e.expect(route(s1, ""), http.StatusCreated); ctStr(rt, "url") != "mine.test" {
		t.Errorf("host-less route: %v", rt)
	}

	e.auth("admin", ctAdminPass)
	e.expectCFError(route(s2, "x"), 422, "CF-UnprocessableEntity", "Invalid domain. Domain 'mine.test' is not available in organization of space 's'.")
	names := func(path string) []string {
		var out []string
		for _, x := range e.list(e.get(path)) {
			out = append(out, ctStr(x, "name"))
		}
		return out
	}
	if got := names("/v3/organizations/" + o2 + "/domains"); slices.Contains(got, "mine.test") {
		t.Errorf("o2's domains = %v", got)
	}
	if got := names("/v3/organizations/" + o1 + "/domains"); !slices.Contains(got, "mine.test") {
		t.Errorf("o1's domains = %v", got)
	}

	// cf share-private-domain o2 mine.test: o1's manager does not manage
	// (or see) o2; the admin does. Then o2's spaces may route on it.
	share := func(org string) ctResp {
		return e.sendJSON("POST", "/v3/domains/"+dGUID+"/relationships/shared_organizations",
			map[string]any{"data": []any{map[string]any{"guid": org}}})
	}
	e.auth("mgr", "mgr-pw")
	e.expectCFError(share(o2), 422, "CF-UnprocessableEntity", "Organization with guid '"+o2+"' does not exist, or you do not have access to it.")
	e.auth("admin", ctAdminPass)
	e.expectCFError(share(o1), 422, "CF-UnprocessableEntity", "")
	if got := e.expect(share(o2), http.StatusOK); ctJ(got, "data.0.guid") != o2 {
		t.Errorf("shared organizations = %v", got)
	}
	e.expect(share(o2), http.StatusOK) // again: no change
	if got := e.expect(e.send("GET", "/v3/domains/"+dGUID, "", nil), http.StatusOK); ctJ(got, "relationships.shared_organizations.data.0.guid") != o2 ||
		ctJ(got, "relationships.organization.data.guid") != o1 {
		t.Errorf("shared domain: %v", got)
	}
	if got := names("/v3/organizations/" + o2 + "/domains"); !slices.Contains(got, "mine.test") {
		t.Errorf("o2's domains after sharing = %v", got)
	}
	rt2 := e.expect(route(s2, "x"), http.StatusCreated)
	unshare := func() ctResp {
		return e.send("DELETE", "/v3/domains/"+dGUID+"/relationships/shared_organizations/"+o2, "", nil)
	}
	e.expectCFError(unshare(), 422, "CF-UnprocessableEntity", "This domain has 1 route(s) in organization '"+o2+"'. Delete them before unsharing the domain.")
	e.completeJob(e.send("DELETE", "/v3/routes/"+ctStr(rt2, "guid"), "", nil))
	if got := unshare(); got.Status != http.StatusNoContent {
		t.Fatalf("unshare: %d %s", got.Status, got.Body)
	}
	e.expectCFError(unshare(), 422, "CF-UnprocessableEntity",
		"Unable to unshare domain from organization with guid '"+o2+"'. Ensure the domain is shared to this organization.")
	e.expectCFError(route(s2, "x"), 422, "CF-UnprocessableEntity", "Invalid domain. Domain 'mine.test' is not available in organization of space 's'.")
	if got := names("/v3/domains?organization_guids=" + o1); !slices.Equal(got, []string{"mine.test"}) {
		t.Errorf("domains owned by o1 = %v", got)
	}
	e.completeJob(e.send("DELETE", "/v3/organizations/"+o1, "application/json", nil))
	if got := names("/v3/domains"); slices.Contains(got, "mine.test") {
		t.Errorf("domains after deleting o1 = %v", got)
	}
}
