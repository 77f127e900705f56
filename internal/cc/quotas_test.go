package cc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

// TestQuotas_cfCLIFlowAndEnforcement replays cf create-org-quota and
// set-org-quota (shared/cf-traces 29, 30), then a quota of 512M refuses
// starting 3 instances of 256M, and scaling past it, with CF's text; a
// space quota bounds routes and tasks.
func TestQuotas_cfCLIFlowAndEnforcement(t *testing.T) {
	e := tnNew(t)
	q := e.post("/v3/organization_quotas", `{"name":"q1","apps":{"total_memory_in_mb":512},"routes":{"total_routes":0,"total_reserved_ports":0},"services":{"total_service_instances":0,"paid_services_allowed":false}}`)
	apps := q["apps"].(map[string]any)
	if apps["total_memory_in_mb"] != float64(512) || apps["total_instances"] != nil {
		t.Fatalf("quota apps: %v", apps)
	}
	// The CLI's defaults (0 routes) would refuse every route: set unlimited.
	qGUID := q["guid"].(string)
	e.ok(e.do("PATCH", "/v3/organization_quotas/"+qGUID, "application/json", strings.NewReader(`{"routes":{"total_routes":null}}`)), http.StatusOK)
	e.cfErr(e.do("POST", "/v3/organization_quotas", "application/json", strings.NewReader(`{"name":"q1"}`)), http.StatusUnprocessableEntity)

	org := e.space().OrgGUID
	if r := ptResources(e.ok(e.do("GET", "/v3/organization_quotas?names=q1&page=1&per_page=1", "", nil), http.StatusOK)); len(r) != 1 {
		t.Fatalf("quota lookup: %v", r)
	}
	rel := e.ok(e.do("POST", "/v3/organization_quotas/"+qGUID+"/relationships/organizations", "application/json", strings.NewReader(`{"data":[{"guid":"`+org+`"}]}`)), http.StatusOK)
	if d := rel["data"].([]any); len(d) != 1 || d[0].(map[string]any)["guid"] != org {
		t.Fatalf("applied: %v", rel)
	}
	o := e.ok(e.do("GET", "/v3/organizations/"+org, "", nil), http.StatusOK)
	if o["relationships"].(map[string]any)["quota"].(map[string]any)["data"].(map[string]any)["guid"] != qGUID {
		t.Errorf("org's quota: %v", o["relationships"])
	}
	// Only admins make org quotas.
	e.cfErr(e.doAs("bearer user:dev", "POST", "/v3/organization_quotas", `{"name":"mine"}`), http.StatusForbidden)

	// cf push -i 3 -m 256M: the start is refused.
	app := e.startedApp("big")
	app.State = pando.AppStopped
	if err := e.store.UpdateApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	web := e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", "application/json", strings.NewReader(`{"instances":3,"memory_in_mb":256}`)), http.StatusAccepted)
	if web["instances"] != float64(3) {
		t.Fatalf("scale of a stopped app: %v", web)
	}
	err := e.cfErr(e.do("POST", "/v3/apps/"+app.GUID+"/actions/start", "", nil), http.StatusUnprocessableEntity)
	if err["detail"] != "memory quota_exceeded" {
		t.Errorf("start past the quota: %v", err)
	}
	err = e.cfErr(e.do("POST", "/v3/apps/"+app.GUID+"/actions/restart", "", nil), http.StatusUnprocessableEntity)
	if err["detail"] != "memory quota_exceeded" {
		t.Errorf("restart past the quota (cf push's start): %v", err)
	}
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", "application/json", strings.NewReader(`{"instances":2}`)), http.StatusAccepted)
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/actions/start", "", nil), http.StatusOK)
	err = e.cfErr(e.do("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", "application/json", strings.NewReader(`{"instances":3}`)), http.StatusUnprocessableEntity)
	if err["detail"] != "memory quota_exceeded" {
		t.Errorf("scale past the quota: %v", err)
	}
	if p, _ := e.store.ListProcesses(t.Context(), nil, []string{app.GUID}); p[0].Instances != 2 {
		t.Errorf("instances after a refused scale: %d", p[0].Instances)
	}

	// A space quota: one route, one running task per app, 300M per process.
	sq := e.post("/v3/space_quotas", `{"name":"sq","apps":{"per_app_tasks":1,"per_process_memory_in_mb":300},"routes":{"total_routes":1},"relationships":{"organization":{"data":{"guid":"`+org+`"}}}}`)
	sp := e.space().GUID
	e.ok(e.do("POST", "/v3/space_quotas/"+sq["guid"].(string)+"/relationships/spaces", "application/json", strings.NewReader(`{"data":[{"guid":"`+sp+`"}]}`)), http.StatusOK)
	route := func(host string) *httptest.ResponseRecorder {
		return e.do("POST", "/v3/routes", "application/json", strings.NewReader(`{"host":"`+host+`","relationships":{"space":{"data":{"guid":"`+sp+`"}},"domain":{"data":{"guid":"`+e.domain().GUID+`"}}}}`))
	}
	if c := route("one").Code; c != http.StatusCreated {
		t.Fatalf("first route: %d", c)
	}
	if d := e.cfErr(route("two"), http.StatusUnprocessableEntity)["detail"]; d != "Routes quota exceeded for space 'dev'." {
		t.Errorf("second route: %v", d)
	}
	err = e.cfErr(e.do("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", "application/json", strings.NewReader(`{"memory_in_mb":512,"instances":1}`)), http.StatusUnprocessableEntity)
	if err["detail"] != "memory space_instance_memory_limit_exceeded" {
		t.Errorf("per-process memory: %v", err)
	}
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/tasks", "application/json", strings.NewReader(`{"command":"sleep 100"}`)), http.StatusAccepted)
	err = e.cfErr(e.do("POST", "/v3/apps/"+app.GUID+"/tasks", "application/json", strings.NewReader(`{"command":"sleep 100"}`)), http.StatusUnprocessableEntity)
	if !strings.Contains(err["detail"].(string), "running tasks") {
		t.Errorf("second task: %v", err)
	}

	// Deleting the quota lifts it.
	e.job(e.do("DELETE", "/v3/space_quotas/"+sq["guid"].(string), "", nil))
	if c := route("two").Code; c != http.StatusCreated {
		t.Errorf("route after the quota went: %d", c)
	}
}
