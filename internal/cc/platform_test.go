package cc

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

func TestRoot_advertisesAbsoluteLinksAndVersion(t *testing.T) {
	e := ptNew(t, nil)
	// No token: cf api reads / before logging in.
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	links := e.ok(rec, http.StatusOK)["links"].(map[string]any)

	v3 := links["cloud_controller_v3"].(map[string]any)
	if v3["href"] != ptBase+"/v3" {
		t.Errorf("cloud_controller_v3.href = %v", v3["href"])
	}
	if v := v3["meta"].(map[string]any)["version"]; v != "3.180.0" {
		t.Errorf("version = %v", v)
	}
	for _, k := range []string{"login", "uaa", "log_cache", "self"} {
		l, ok := links[k].(map[string]any)
		if !ok || l["href"] != ptBase {
			t.Errorf("links.%s = %v, want href %s", k, links[k], ptBase)
		}
	}
	for _, k := range []string{"routing", "cloud_controller_v2", "app_ssh", "network_policy_v1"} {
		if v, ok := links[k]; !ok || v != nil {
			t.Errorf("links.%s = %v, want null", k, v)
		}
	}

	rec = httptest.NewRecorder()
	e.api.ServeHTTP(rec, httptest.NewRequest("GET", "/v3/info", nil))
	info := e.ok(rec, http.StatusOK)
	if info["name"] != "Pando" {
		t.Errorf("info.name = %v", info["name"])
	}
	rec = httptest.NewRecorder()
	e.api.ServeHTTP(rec, httptest.NewRequest("GET", "/v3", nil))
	v3root := e.ok(rec, http.StatusOK)["links"].(map[string]any)
	if v3root["apps"].(map[string]any)["href"] != ptBase+"/v3/apps" {
		t.Errorf("/v3 links.apps = %v", v3root["apps"])
	}
}

func TestOrgsAndSpaces_supportLoginAndTarget(t *testing.T) {
	e := ptNew(t, nil)
	// cf login: one org and one space, both auto-targeted.
	orgs := ptResources(e.ok(e.do("GET", "/v3/organizations?order_by=name", "", nil), http.StatusOK))
	if len(orgs) != 1 || orgs[0]["name"] != SeedOrgName {
		t.Fatalf("orgs = %v", orgs)
	}
	orgGUID := orgs[0]["guid"].(string)
	body := e.ok(e.do("GET", "/v3/spaces?order_by=name&organization_guids="+orgGUID, "", nil), http.StatusOK)
	spaces := ptResources(body)
	if len(spaces) != 1 || spaces[0]["name"] != SeedSpaceName {
		t.Fatalf("spaces = %v", spaces)
	}
	if first := body["pagination"].(map[string]any)["first"].(map[string]any)["href"].(string); !strings.HasPrefix(first, ptBase+"/v3/spaces?") {
		t.Errorf("pagination.first = %s", first)
	}
	am := spaces[0]["links"].(map[string]any)["apply_manifest"].(map[string]any)
	if am["method"] != "POST" || !strings.HasSuffix(am["href"].(string), "/actions/apply_manifest") {
		t.Errorf("apply_manifest link = %v", am)
	}
	// cf target -o -s.
	if got := ptResources(e.ok(e.do("GET", "/v3/organizations?names=pando&page=1&per_page=1", "", nil), http.StatusOK)); len(got) != 1 {
		t.Errorf("names=pando: %d orgs", len(got))
	}
	if got := ptResources(e.ok(e.do("GET", "/v3/organizations?names=nope", "", nil), http.StatusOK)); len(got) != 0 {
		t.Errorf("names=nope: %d orgs", len(got))
	}
	if got := ptResources(e.ok(e.do("GET", "/v3/spaces?names=dev&organization_guids="+orgGUID+"&page=1&per_page=1", "", nil), http.StatusOK)); len(got) != 1 {
		t.Errorf("names=dev: %d spaces", len(got))
	}
	if d := e.cfErr(e.do("GET", "/v3/spaces/missing", "", nil), http.StatusNotFound); d["detail"] != "Space not found" {
		t.Errorf("detail = %v", d["detail"])
	}
	if d := e.cfErr(e.do("GET", "/v3/organizations/missing", "", nil), http.StatusNotFound); d["detail"] != "Organization not found" {
		t.Errorf("detail = %v", d["detail"])
	}
	dom := e.ok(e.do("GET", "/v3/organizations/"+orgGUID+"/domains/default", "", nil), http.StatusOK)
	if dom["name"] != "localhost" {
		t.Errorf("default domain = %v", dom["name"])
	}
	feat := ptResources(e.ok(e.do("GET", "/v3/spaces/"+spaces[0]["guid"].(string)+"/features", "", nil), http.StatusOK))
	if len(feat) != 1 || feat[0]["name"] != "ssh" || feat[0]["enabled"] != false {
		t.Errorf("features = %v", feat)
	}
	for _, p := range []string{"/v3/isolation_segments"} {
		if got := ptResources(e.ok(e.do("GET", p, "", nil), http.StatusOK)); len(got) != 0 {
			t.Errorf("%s: %v", p, got)
		}
	}
}

func TestStacks_hostIsDefault(t *testing.T) {
	e := ptNew(t, nil)
	stacks := ptResources(e.ok(e.do("GET", "/v3/stacks", "", nil), http.StatusOK))
	if len(stacks) != 1 || stacks[0]["name"] != "host" || stacks[0]["default"] != true || stacks[0]["description"] != hostStackDescription {
		t.Fatalf("stacks = %v", stacks)
	}
	// No local cell to look into the stack (pando api): not known, rather
	// than an empty list that would read as "none there".
	if rts, ok := stacks[0]["runtimes"]; !ok || rts != nil {
		t.Errorf("runtimes without a prober = %v (present %v), want null", rts, ok)
	}
	one := e.ok(e.do("GET", "/v3/stacks/"+stacks[0]["guid"].(string), "", nil), http.StatusOK)
	if one["name"] != "host" {
		t.Errorf("stack = %v", one)
	}
	e.cfErr(e.do("GET", "/v3/stacks/nope", "", nil), http.StatusNotFound)
}

func TestStacks_showTheRuntimesEachOffers(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, "var", "lib", "dpkg", "status")
	if err := os.MkdirAll(filepath.Dir(status), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(status, []byte("Package: openjdk-17-jre-headless\nStatus: install ok installed\nVersion: 17.0.15+6-1~deb12u1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The host here is a bare rootfs too, so the answer does not depend on this machine.
	probe := &stackprobe.Cache{Stacks: map[string]string{"host": t.TempDir(), "bookworm": root}}
	e := ptNew(t, func(c *Config) {
		c.Stacks = []StackConfig{{Name: "bookworm", Description: "Root filesystem at " + root}}
		c.StackRuntimes = probe
	})
	stacks := ptResources(e.ok(e.do("GET", "/v3/stacks?order_by=name", "", nil), http.StatusOK))
	if len(stacks) != 2 || stacks[0]["name"] != "bookworm" || stacks[1]["name"] != "host" {
		t.Fatalf("stacks = %v", stacks)
	}
	if got := fmt.Sprint(stacks[0]["runtimes"]); got != "[map[name:java version:17.0.15]]" {
		t.Errorf("bookworm runtimes %s", got)
	}
	if got, ok := stacks[1]["runtimes"].([]any); !ok || len(got) != 0 {
		t.Errorf("host runtimes %v, want an empty list", stacks[1]["runtimes"])
	}
	one := e.ok(e.do("GET", "/v3/stacks/"+stacks[0]["guid"].(string), "", nil), http.StatusOK)
	if got := fmt.Sprint(one["runtimes"]); got != "[map[name:java version:17.0.15]]" {
		t.Errorf("GET one: runtimes %s", got)
	}
}

func TestAuditEvents_newestFirstWithRFC3339Times(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("evapp")
	e.api.recordAppEvent(t.Context(), Identity{UserGUID: "user-guid", UserName: "admin"}, "audit.app.update", app, map[string]any{"request": map[string]any{"instances": 3}})
	body := e.ok(e.do("GET", "/v3/audit_events?order_by=-created_at&page=1&target_guids="+app.GUID, "", nil), http.StatusOK)
	evs := ptResources(body)
	if len(evs) != 2 {
		t.Fatalf("events = %v", evs)
	}
	if evs[0]["type"] != "audit.app.update" || evs[1]["type"] != "audit.app.create" {
		t.Errorf("order: %v, %v", evs[0]["type"], evs[1]["type"])
	}
	ev := evs[0]
	if _, err := time.Parse(time.RFC3339, ev["created_at"].(string)); err != nil {
		t.Errorf("created_at: %v", err)
	}
	if a := ev["actor"].(map[string]any); a["name"] != "admin" || a["type"] != "user" {
		t.Errorf("actor = %v", a)
	}
	if tg := ev["target"].(map[string]any); tg["guid"] != app.GUID || tg["name"] != "evapp" || tg["type"] != "app" {
		t.Errorf("target = %v", tg)
	}
	if ev["space"].(map[string]any)["guid"] != app.SpaceGUID || ev["organization"].(map[string]any)["guid"] == "" {
		t.Errorf("space/org = %v %v", ev["space"], ev["organization"])
	}
	if ev["data"].(map[string]any)["request"].(map[string]any)["instances"] != float64(3) {
		t.Errorf("data = %v", ev["data"])
	}
	self := ev["links"].(map[string]any)["self"].(map[string]any)["href"].(string)
	e.ok(e.do("GET", strings.TrimPrefix(self, ptBase), "", nil), http.StatusOK)
	if got := ptResources(e.ok(e.do("GET", "/v3/audit_events?types=audit.app.create&target_guids="+app.GUID, "", nil), http.StatusOK)); len(got) != 1 {
		t.Errorf("types filter: %d", len(got))
	}
}

func TestRoutes_createListAndDuplicate(t *testing.T) {
	e := ptNew(t, nil)
	space, dom := e.space(), e.domain()
	post := func(host, path string) *httptest.ResponseRecorder {
		return e.doJSON("POST", "/v3/routes", map[string]any{
			"host": host, "path": path,
			"relationships": map[string]any{
				"space":  map[string]any{"data": map[string]any{"guid": space.GUID}},
				"domain": map[string]any{"data": map[string]any{"guid": dom.GUID}},
			},
		})
	}
	r := e.ok(post("myapp", ""), http.StatusCreated)
	if r["url"] != "myapp.localhost" || r["protocol"] != "http" || r["host"] != "myapp" || r["path"] != "" {
		t.Errorf("route = %v", r)
	}
	if l := r["links"].(map[string]any)["destinations"].(map[string]any)["href"]; l != ptBase+"/v3/routes/"+r["guid"].(string)+"/destinations" {
		t.Errorf("destinations link = %v", l)
	}
	withPath := e.ok(post("myapp", "/api"), http.StatusCreated)
	if withPath["url"] != "myapp.localhost/api" {
		t.Errorf("url = %v", withPath["url"])
	}
	d := e.cfErr(post("MyApp", ""), http.StatusUnprocessableEntity)
	if !strings.Contains(d["detail"].(string), "Route already exists") || d["detail"] != "Route already exists with host 'myapp' for domain 'localhost'." {
		t.Errorf("duplicate detail = %v", d["detail"])
	}
	d = e.cfErr(post("myapp", "/api"), http.StatusUnprocessableEntity)
	if d["detail"] != "Route already exists with host 'myapp' and path '/api' for domain 'localhost'." {
		t.Errorf("duplicate detail = %v", d["detail"])
	}
	for _, bad := range []struct{ host, path string }{{"bad_host", ""}, {"", ""}, {"-x", ""}, {"ok", "nope"}, {"ok", "/a?b"}, {strings.Repeat("a", 64), ""}} {
		if rec := post(bad.host, bad.path); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("host %q path %q: status %d", bad.host, bad.path, rec.Code)
		}
	}
	// cf map-route asks for the route without a path with "paths=".
	got := ptResources(e.ok(e.do("GET", "/v3/routes?hosts=myapp&paths=&domain_guids="+dom.GUID, "", nil), http.StatusOK))
	if len(got) != 1 || got[0]["guid"] != r["guid"] {
		t.Errorf("paths= filter: %v", got)
	}
	if got := ptResources(e.ok(e.do("GET", "/v3/routes?hosts=myapp", "", nil), http.StatusOK)); len(got) != 2 {
		t.Errorf("hosts filter: %d routes", len(got))
	}
	if got := ptResources(e.ok(e.do("GET", "/v3/routes?organization_guids="+space.OrgGUID, "", nil), http.StatusOK)); len(got) != 2 {
		t.Errorf("org filter: %d routes", len(got))
	}
	res := e.ok(e.do("GET", "/v3/domains/"+dom.GUID+"/route_reservations?host=myapp", "", nil), http.StatusOK)
	if res["matching_route"] != true {
		t.Errorf("route_reservations = %v", res)
	}
	// Delete: 202 + a job already COMPLETE.
	if j := e.job(e.do("DELETE", "/v3/routes/"+r["guid"].(string), "", nil)); j["state"] != pando.JobComplete {
		t.Fatalf("delete job = %v", j)
	}
	if d := e.cfErr(e.do("GET", "/v3/routes/"+r["guid"].(string), "", nil), http.StatusNotFound); d["detail"] != "Route not found" {
		t.Errorf("detail = %v", d["detail"])
	}
}

func TestDestinations_mappingResyncsTheApp(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("web1")
	rt, err := e.api.createRoute(t.Context(), "web1", "", e.domain(), app.SpaceGUID)
	if err != nil {
		t.Fatal(err)
	}
	dest := map[string]any{"destinations": []any{map[string]any{"app": map[string]any{"guid": app.GUID, "process": map[string]any{"type": "web"}}}}}
	body := e.ok(e.doJSON("POST", "/v3/routes/"+rt.GUID+"/destinations", dest), http.StatusOK)
	ds := body["destinations"].([]any)
	if len(ds) != 1 {
		t.Fatalf("destinations = %v", ds)
	}
	d0 := ds[0].(map[string]any)
	if d0["port"] != float64(8080) || d0["app"].(map[string]any)["guid"] != app.GUID {
		t.Errorf("destination = %v", d0)
	}
	lrp, ok := e.rt.desiredLRP(app.GUID)
	if !ok || !slices.Equal(lrp.Routes, []string{"web1.localhost"}) {
		t.Fatalf("desired LRP routes = %v (desired %v)", lrp.Routes, ok)
	}
	// Mapping again is a no-op (dedupe).
	body = e.ok(e.doJSON("POST", "/v3/routes/"+rt.GUID+"/destinations", dest), http.StatusOK)
	if n := len(body["destinations"].([]any)); n != 1 {
		t.Errorf("after re-map: %d destinations", n)
	}
	routes := ptResources(e.ok(e.do("GET", "/v3/apps/"+app.GUID+"/routes", "", nil), http.StatusOK))
	if len(routes) != 1 || routes[0]["url"] != "web1.localhost" {
		t.Errorf("app routes = %v", routes)
	}
	if got := ptResources(e.ok(e.do("GET", "/v3/routes?app_guids="+app.GUID, "", nil), http.StatusOK)); len(got) != 1 {
		t.Errorf("app_guids filter: %d", len(got))
	}
	rec := e.do("DELETE", "/v3/routes/"+rt.GUID+"/destinations/"+d0["guid"].(string), "", nil)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("unmap: %d %s", rec.Code, rec.Body)
	}
	if lrp, _ := e.rt.desiredLRP(app.GUID); len(lrp.Routes) != 0 {
		t.Errorf("routes after unmap = %v", lrp.Routes)
	}
	if d := e.cfErr(e.do("GET", "/v3/apps/nope/routes", "", nil), http.StatusNotFound); d["detail"] != "App not found" {
		t.Errorf("detail = %v", d["detail"])
	}
}

func TestDeleteRoute_unmapsAndResyncs(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("gone")
	if err := e.api.ensureDefaultRoute(t.Context(), Identity{}, app); err != nil {
		t.Fatal(err)
	}
	if lrp, _ := e.rt.desiredLRP(app.GUID); !slices.Equal(lrp.Routes, []string{"gone.localhost"}) {
		t.Fatalf("routes = %v", lrp.Routes)
	}
	routes := ptResources(e.ok(e.do("GET", "/v3/apps/"+app.GUID+"/routes", "", nil), http.StatusOK))
	if j := e.job(e.do("DELETE", "/v3/routes/"+routes[0]["guid"].(string), "", nil)); j["state"] != pando.JobComplete {
		t.Fatalf("job = %v", j)
	}
	if lrp, _ := e.rt.desiredLRP(app.GUID); len(lrp.Routes) != 0 {
		t.Errorf("routes after delete = %v", lrp.Routes)
	}
}

func TestEnsureDefaultRoute(t *testing.T) {
	e := ptNew(t, nil)
	ctx := t.Context()
	app := e.startedApp("My_App.v2")
	if err := e.api.ensureDefaultRoute(ctx, Identity{}, app); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := e.api.ensureDefaultRoute(ctx, Identity{}, app); err != nil {
		t.Fatal(err)
	}
	hosts, err := e.api.routeHostnames(ctx, app.GUID)
	if err != nil || !slices.Equal(hosts, []string{"my-app-v2.localhost"}) {
		t.Fatalf("hostnames = %v, %v", hosts, err)
	}
	// A route of that name in another space is refused.
	now := time.Now()
	other := pando.Space{GUID: "other-space", Name: "other", OrgGUID: e.space().OrgGUID, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateSpace(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.createRoute(ctx, "taken", "", e.domain(), other.GUID); err != nil {
		t.Fatal(err)
	}
	taken := e.startedApp("taken")
	if err := e.api.ensureDefaultRoute(ctx, Identity{}, taken); err == nil || !strings.Contains(err.Error(), "different space") {
		t.Errorf("err = %v", err)
	}
	// An unmapped route in the same space is reused.
	if _, err := e.api.createRoute(ctx, "reuse", "", e.domain(), e.space().GUID); err != nil {
		t.Fatal(err)
	}
	reuse := e.startedApp("reuse")
	if err := e.api.ensureDefaultRoute(ctx, Identity{}, reuse); err != nil {
		t.Fatal(err)
	}
	if hosts, _ := e.api.routeHostnames(ctx, reuse.GUID); !slices.Equal(hosts, []string{"reuse.localhost"}) {
		t.Errorf("hostnames = %v", hosts)
	}
}

func ptBuildpackNames(t *testing.T, e *ptEnv) []string {
	t.Helper()
	var names []string
	for i, b := range ptResources(e.ok(e.do("GET", "/v3/buildpacks", "", nil), http.StatusOK)) {
		if int(b["position"].(float64)) != i+1 {
			t.Errorf("%s at position %v, want %d", b["name"], b["position"], i+1)
		}
		names = append(names, b["name"].(string))
	}
	return names
}

func TestBuildpacks_createUploadDelete(t *testing.T) {
	e := ptNew(t, nil)
	if got := ptBuildpackNames(t, e); !slices.Equal(got, []string{"staticfile_buildpack", "binary_buildpack"}) {
		t.Fatalf("seeded = %v", got)
	}
	// cf create-buildpack mybp mybp.zip 1: inserting at 1 shifts the others.
	bp := e.ok(e.doJSON("POST", "/v3/buildpacks", map[string]any{"enabled": true, "name": "mybp", "position": 1}), http.StatusCreated)
	if bp["state"] != pando.BuildpackAwaitingUpload || bp["stack"] != nil || bp["filename"] != nil || bp["lifecycle"] != "buildpack" || bp["position"] != float64(1) {
		t.Errorf("created = %v", bp)
	}
	if up := bp["links"].(map[string]any)["upload"].(map[string]any); up["method"] != "POST" || up["href"] != ptBase+"/v3/buildpacks/"+bp["guid"].(string)+"/upload" {
		t.Errorf("upload link = %v", up)
	}
	if got := ptBuildpackNames(t, e); !slices.Equal(got, []string{"mybp", "staticfile_buildpack", "binary_buildpack"}) {
		t.Errorf("after insert = %v", got)
	}
	// Without a position it goes last; past the end is clamped.
	e.ok(e.doJSON("POST", "/v3/buildpacks", map[string]any{"name": "last"}), http.StatusCreated)
	e.ok(e.doJSON("POST", "/v3/buildpacks", map[string]any{"name": "far", "position": 99}), http.StatusCreated)
	if got := ptBuildpackNames(t, e); !slices.Equal(got, []string{"mybp", "staticfile_buildpack", "binary_buildpack", "last", "far"}) {
		t.Errorf("after append = %v", got)
	}
	d := e.cfErr(e.doJSON("POST", "/v3/buildpacks", map[string]any{"name": "mybp"}), http.StatusUnprocessableEntity)
	if d["detail"] != "Buildpack with name 'mybp' and an unassigned stack already exists" {
		t.Errorf("duplicate detail = %v", d["detail"])
	}

	guid := bp["guid"].(string)
	zipBytes := ptZip(t, map[string]string{"bin/detect": "#!/bin/sh\n", "bin/compile": "#!/bin/sh\n", "bin/release": "#!/bin/sh\n"})
	ct, body := ptMultipart(t, "bits", "mybp.zip", zipBytes)
	rec := e.do("POST", "/v3/buildpacks/"+guid+"/upload", ct, body)
	if j := e.job(rec); j["state"] != pando.JobComplete || j["operation"] != "buildpack.upload" {
		t.Fatalf("upload job = %v", j)
	}
	up := e.ok(e.do("GET", "/v3/buildpacks/"+guid, "", nil), http.StatusOK)
	if up["state"] != pando.BuildpackReady || up["filename"] != "mybp.zip" {
		t.Errorf("after upload = %v", up)
	}
	if stored, ok := e.blobs.get(pando.BuildpackBlobKey(guid)); !ok || !bytes.Equal(stored, zipBytes) {
		t.Errorf("blob not stored")
	}

	// A zip without scripts fails the job with CF's BuildpackZipError.
	ct, body = ptMultipart(t, "bits", "bad.zip", ptZip(t, map[string]string{"README": "hi"}))
	j := e.job(e.do("POST", "/v3/buildpacks/"+guid+"/upload", ct, body))
	errs := j["errors"].([]any)
	if j["state"] != pando.JobFailed || len(errs) != 1 || errs[0].(map[string]any)["title"] != "CF-BuildpackZipError" || errs[0].(map[string]any)["code"] != float64(390013) {
		t.Errorf("bad zip job = %v", j)
	}
	ct, body = ptMultipart(t, "bits", "evil.zip", ptZip(t, map[string]string{"../bin/compile": "x", "bin/compile": "x"}))
	if j := e.job(e.do("POST", "/v3/buildpacks/"+guid+"/upload", ct, body)); j["state"] != pando.JobFailed {
		t.Errorf("path traversal zip job = %v", j)
	}
	ct, body = ptMultipart(t, "bits", "bits.tgz", zipBytes)
	if d := e.cfErr(e.do("POST", "/v3/buildpacks/"+guid+"/upload", ct, body), http.StatusUnprocessableEntity); d["detail"] != "bits.tgz is not a zip" {
		t.Errorf("detail = %v", d["detail"])
	}
	ct, body = ptMultipart(t, "bits", "big.zip", bytes.Repeat([]byte("x"), 65<<10))
	e.cfErr(e.do("POST", "/v3/buildpacks/"+guid+"/upload", ct, body), http.StatusRequestEntityTooLarge)

	// Move and rename with PATCH.
	moved := e.ok(e.doJSON("PATCH", "/v3/buildpacks/"+guid, map[string]any{"position": 3, "enabled": false}), http.StatusOK)
	if moved["position"] != float64(3) || moved["enabled"] != false {
		t.Errorf("patched = %v", moved)
	}
	if got := ptBuildpackNames(t, e); !slices.Equal(got, []string{"staticfile_buildpack", "binary_buildpack", "mybp", "last", "far"}) {
		t.Errorf("after move = %v", got)
	}

	// Delete: 202 + job; the blob goes and the positions close up.
	if j := e.job(e.do("DELETE", "/v3/buildpacks/"+guid, "", nil)); j["state"] != pando.JobComplete {
		t.Fatalf("delete job = %v", j)
	}
	if _, ok := e.blobs.get(pando.BuildpackBlobKey(guid)); ok {
		t.Errorf("blob still stored")
	}
	if got := ptBuildpackNames(t, e); !slices.Equal(got, []string{"staticfile_buildpack", "binary_buildpack", "last", "far"}) {
		t.Errorf("after delete = %v", got)
	}
	e.cfErr(e.do("GET", "/v3/buildpacks/"+guid, "", nil), http.StatusNotFound)
}

func TestSeed_isIdempotentAndRefreshesChangedBuiltins(t *testing.T) {
	v1 := ptZipFunc(map[string]string{"bin/compile": "v1"})
	e := ptNew(t, nil, BuiltinBuildpack{Name: "go_buildpack", Position: 2, Zip: v1}, BuiltinBuildpack{Name: "binary_buildpack", Position: 1, Zip: v1})
	ctx := t.Context()
	before, err := e.store.ListBuildpacks(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || before[0].Name != "binary_buildpack" || before[1].Name != "go_buildpack" || before[0].State != pando.BuildpackReady {
		t.Fatalf("seeded = %+v", before)
	}
	// The admin moves go_buildpack first; a restart keeps that.
	e.ok(e.doJSON("PATCH", "/v3/buildpacks/"+before[1].GUID, map[string]any{"position": 1}), http.StatusOK)
	v2 := ptZipFunc(map[string]string{"bin/compile": "v2"})
	for range 2 {
		if err := e.api.Seed(ctx, []BuiltinBuildpack{{Name: "go_buildpack", Position: 2, Zip: v2}, {Name: "binary_buildpack", Position: 1, Zip: v1}}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := e.store.ListBuildpacks(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0].Name != "go_buildpack" || after[0].GUID != before[1].GUID {
		t.Fatalf("after reseed = %+v", after)
	}
	if after[0].SHA256 == before[1].SHA256 {
		t.Errorf("go_buildpack bits not refreshed")
	}
	if after[1].SHA256 != before[0].SHA256 || after[1].GUID != before[0].GUID {
		t.Errorf("binary_buildpack changed: %+v", after[1])
	}
	orgs, _ := e.store.ListOrgs(ctx, nil, nil)
	spaces, _ := e.store.ListSpaces(ctx, nil, nil, nil)
	domains, _ := e.store.ListDomains(ctx, nil, nil)
	stacks, _ := e.store.ListStacks(ctx, nil)
	if len(orgs) != 1 || len(spaces) != 1 || len(domains) != 1 || len(stacks) != 1 {
		t.Errorf("orgs %d spaces %d domains %d stacks %d, want one each", len(orgs), len(spaces), len(domains), len(stacks))
	}
}

// The default org and space are a new platform's: once an admin has
// deleted them (keeping another org), a restart does not bring them back.
func TestSeed_deletedDefaultOrgStaysDeleted(t *testing.T) {
	e := ptNew(t, nil)
	ctx := t.Context()
	other := e.ok(e.doJSON("POST", "/v3/organizations", map[string]any{"name": "acme"}), http.StatusCreated)
	seeded, err := e.store.ListOrgs(ctx, nil, []string{SeedOrgName})
	if err != nil || len(seeded) != 1 {
		t.Fatalf("seed org: %v %v", seeded, err)
	}
	spaces, err := e.store.ListSpaces(ctx, nil, nil, []string{seeded[0].GUID})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range spaces {
		if err := e.store.DeleteSpace(ctx, sp.GUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.DeleteOrg(ctx, seeded[0].GUID); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Seed(ctx, nil); err != nil {
		t.Fatal(err)
	}
	orgs, err := e.store.ListOrgs(ctx, nil, nil)
	if err != nil || len(orgs) != 1 || orgs[0].GUID != other["guid"] {
		t.Fatalf("orgs after a restart = %+v %v, want only acme", orgs, err)
	}
}

// A newer Pando with a new builtin (nodejs_buildpack between staticfile and
// go, as buildpacks.Builtin numbers them) inserts it at its place on an
// existing installation; the others shift down in their order.
func TestSeed_newBuiltinLandsAtItsPosition(t *testing.T) {
	zip := ptZipFunc(map[string]string{"bin/compile": "x"})
	old := []BuiltinBuildpack{{Name: "staticfile_buildpack", Position: 1, Zip: zip}, {Name: "go_buildpack", Position: 2, Zip: zip}, {Name: "binary_buildpack", Position: 3, Zip: zip}}
	e := ptNew(t, nil, old...)
	upgraded := []BuiltinBuildpack{old[0], {Name: "nodejs_buildpack", Position: 2, Zip: zip}, {Name: "go_buildpack", Position: 3, Zip: zip}, {Name: "binary_buildpack", Position: 4, Zip: zip}}
	if err := e.api.Seed(t.Context(), upgraded); err != nil {
		t.Fatal(err)
	}
	want := []string{"staticfile_buildpack", "nodejs_buildpack", "go_buildpack", "binary_buildpack"}
	if got := ptBuildpackNames(t, e); !slices.Equal(got, want) {
		t.Fatalf("after the upgrade = %v, want %v", got, want)
	}
}

// /v3/info publishes the upload limit in CF's custom object (CF clients
// ignore it), for pando push to check before zipping.
func TestInfo_publishesTheUploadLimit(t *testing.T) {
	for _, tc := range []struct {
		set, want int64
	}{{0, 1 << 30}, {12345, 12345}} {
		e := ptNew(t, func(c *Config) { c.MaxUploadBytes = tc.set })
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, httptest.NewRequest("GET", "/v3/info", nil))
		custom, _ := e.ok(rec, http.StatusOK)["custom"].(map[string]any)
		if got, _ := custom["pando_max_upload_bytes"].(float64); int64(got) != tc.want {
			t.Errorf("--max-upload-bytes %d: custom.pando_max_upload_bytes = %v, want %d", tc.set, custom["pando_max_upload_bytes"], tc.want)
		}
		if custom["cc_api_version"] != APIVersion {
			t.Errorf("custom.cc_api_version = %v", custom["cc_api_version"])
		}
	}
}
