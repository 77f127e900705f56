package cc

import (
	"fmt"
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

	// A space quota: one route, one running task, 300M per process (the
	// org's memory is lifted: a task's memory counts against it).
	e.ok(e.do("PATCH", "/v3/organization_quotas/"+qGUID, "application/json", strings.NewReader(`{"apps":{"total_memory_in_mb":null}}`)), http.StatusOK)
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
	if err["detail"] != "app_task_limit quota exceeded" {
		t.Errorf("second task: %v", err)
	}

	// Deleting the quota lifts it.
	e.job(e.do("DELETE", "/v3/space_quotas/"+sq["guid"].(string), "", nil))
	if c := route("two").Code; c != http.StatusCreated {
		t.Errorf("route after the quota went: %d", c)
	}
}

// quotaCase is an env with the seeded org or space under a quota made from
// body (the "apps"/"routes" groups), and one started app.
func quotaCase(t *testing.T, kind, body string) (*ptEnv, pando.App) {
	t.Helper()
	e := tnNew(t)
	sp := e.space()
	if kind == pando.QuotaOrg {
		q := e.post("/v3/organization_quotas", `{"name":"oq",`+body+`}`)
		e.ok(e.do("POST", "/v3/organization_quotas/"+q["guid"].(string)+"/relationships/organizations", "application/json", strings.NewReader(`{"data":[{"guid":"`+sp.OrgGUID+`"}]}`)), http.StatusOK)
	} else {
		q := e.post("/v3/space_quotas", `{"name":"sq",`+body+`,"relationships":{"organization":{"data":{"guid":"`+sp.OrgGUID+`"}}}}`)
		e.ok(e.do("POST", "/v3/space_quotas/"+q["guid"].(string)+"/relationships/spaces", "application/json", strings.NewReader(`{"data":[{"guid":"`+sp.GUID+`"}]}`)), http.StatusOK)
	}
	return e, e.startedApp("first")
}

func (e *ptEnv) scale(app pando.App, body string) *httptest.ResponseRecorder {
	return e.do("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", "application/json", strings.NewReader(body))
}

func (e *ptEnv) wantRefused(rec *httptest.ResponseRecorder, detail string) {
	e.t.Helper()
	err := e.cfErr(rec, http.StatusUnprocessableEntity)
	if err["detail"] != detail || err["title"] != "CF-UnprocessableEntity" || err["code"] != float64(10008) {
		e.t.Errorf("refusal: %v, want detail %q", err, detail)
	}
}

// TestQuotas_cfErrorTexts checks each quota's refusal against the text CF's
// process, task and route validations give (cloud_controller_ng's
// ProcessModel and TaskModel policies, RouteCreate), code 10008.
func TestQuotas_cfErrorTexts(t *testing.T) {
	t.Run("org total instances, on scale and on start", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"total_instances":2}`)
		e.wantRefused(e.scale(app, `{"instances":3}`), "app_instance_limit app_instance_limit_exceeded")
		e.ok(e.scale(app, `{"instances":2}`), http.StatusAccepted)
		second := e.startedApp("second")
		second.State = pando.AppStopped
		if err := e.store.UpdateApp(t.Context(), second); err != nil {
			t.Fatal(err)
		}
		e.wantRefused(e.do("POST", "/v3/apps/"+second.GUID+"/actions/start", "", nil), "app_instance_limit app_instance_limit_exceeded")
	})
	t.Run("space total instances", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaSpace, `"apps":{"total_instances":1}`)
		e.wantRefused(e.scale(app, `{"instances":2}`), "app_instance_limit space_app_instance_limit_exceeded")
	})
	t.Run("org per-process memory", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"per_process_memory_in_mb":300}`)
		e.wantRefused(e.scale(app, `{"memory_in_mb":512}`), "memory instance_memory_limit_exceeded")
		e.ok(e.scale(app, `{"memory_in_mb":300}`), http.StatusAccepted)
	})
	t.Run("space total memory", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaSpace, `"apps":{"total_memory_in_mb":512}`)
		e.wantRefused(e.scale(app, `{"instances":3,"memory_in_mb":256}`), "memory space_quota_exceeded")
	})
	t.Run("every refusal at once, in CF's order", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"total_memory_in_mb":512,"total_instances":2}`)
		e.wantRefused(e.scale(app, `{"instances":3,"memory_in_mb":256}`), "memory quota_exceeded, app_instance_limit app_instance_limit_exceeded")
	})
	t.Run("org log rate", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"log_rate_limit_in_bytes_per_second":2048}`)
		e.wantRefused(e.scale(app, `{"log_rate_limit_in_bytes_per_second":-1}`), "log_rate_limit cannot be unlimited in organization 'pando'.")
		e.wantRefused(e.scale(app, `{"instances":3,"log_rate_limit_in_bytes_per_second":1024}`), "log_rate_limit exceeds organization log rate quota")
		e.ok(e.scale(app, `{"instances":2,"log_rate_limit_in_bytes_per_second":1024}`), http.StatusAccepted)
	})
	t.Run("space log rate", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaSpace, `"apps":{"log_rate_limit_in_bytes_per_second":2048}`)
		e.wantRefused(e.scale(app, `{"log_rate_limit_in_bytes_per_second":-1}`), "log_rate_limit cannot be unlimited in space 'dev'.")
		e.wantRefused(e.scale(app, `{"log_rate_limit_in_bytes_per_second":4096}`), "log_rate_limit exceeds space log rate quota")
	})
	t.Run("org total routes", func(t *testing.T) {
		e, _ := quotaCase(t, pando.QuotaOrg, `"routes":{"total_routes":1}`)
		route := func(host string) *httptest.ResponseRecorder {
			return e.do("POST", "/v3/routes", "application/json", strings.NewReader(`{"host":"`+host+`","relationships":{"space":{"data":{"guid":"`+e.space().GUID+`"}},"domain":{"data":{"guid":"`+e.domain().GUID+`"}}}}`))
		}
		e.ok(route("one"), http.StatusCreated)
		e.wantRefused(route("two"), "Routes quota exceeded for organization 'pando'.")
	})
	t.Run("org total private domains", func(t *testing.T) {
		e, _ := quotaCase(t, pando.QuotaOrg, `"domains":{"total_domains":1}`)
		domain := func(name, org string) *httptest.ResponseRecorder {
			rel := ""
			if org != "" {
				rel = `,"relationships":{"organization":{"data":{"guid":"` + org + `"}}}`
			}
			return e.do("POST", "/v3/domains", "application/json", strings.NewReader(`{"name":"`+name+`"`+rel+`}`))
		}
		e.ok(domain("one.example", e.space().OrgGUID), http.StatusCreated)
		e.wantRefused(domain("two.example", e.space().OrgGUID), `The number of private domains exceeds the quota for organization "pando"`)
		// Shared domains are no org's.
		e.ok(domain("shared.example", ""), http.StatusCreated)
	})
	task := func(e *ptEnv, app pando.App, body string) *httptest.ResponseRecorder {
		return e.do("POST", "/v3/apps/"+app.GUID+"/tasks", "application/json", strings.NewReader(body))
	}
	running := func(e *ptEnv, rec *httptest.ResponseRecorder) {
		e.t.Helper()
		tk, err := e.store.GetAppTask(e.t.Context(), e.ok(rec, http.StatusAccepted)["guid"].(string))
		if err != nil {
			e.t.Fatal(err)
		}
		tk.State = pando.AppTaskRunning
		if err := e.store.UpdateAppTask(e.t.Context(), tk); err != nil {
			e.t.Fatal(err)
		}
	}
	t.Run("task log rate: running tasks count, for tasks and apps", func(t *testing.T) {
		// The app's instance and each task log at the default 16 KiB/s.
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"log_rate_limit_in_bytes_per_second":40000}`)
		running(e, task(e, app, `{"command":"true"}`))
		e.wantRefused(task(e, app, `{"command":"true"}`), "log_rate_limit exceeds organization log rate quota")
		e.wantRefused(e.scale(app, `{"instances":2}`), "log_rate_limit exceeds organization log rate quota")
	})
	t.Run("task log rate cannot be unlimited under a space quota", func(t *testing.T) {
		e := tnNew(t, func(c *Config) { c.DefaultLogRateLimit = -1 })
		sp := e.space()
		q := e.post("/v3/space_quotas", `{"name":"sq","apps":{"log_rate_limit_in_bytes_per_second":2048},"relationships":{"organization":{"data":{"guid":"`+sp.OrgGUID+`"}}}}`)
		e.ok(e.do("POST", "/v3/space_quotas/"+q["guid"].(string)+"/relationships/spaces", "application/json", strings.NewReader(`{"data":[{"guid":"`+sp.GUID+`"}]}`)), http.StatusOK)
		e.wantRefused(task(e, e.startedApp("first"), `{"command":"true"}`), "log_rate_limit cannot be unlimited in space 'dev'.")
	})
	t.Run("org tasks count across the org's apps", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"per_app_tasks":1}`)
		e.ok(task(e, app, `{"command":"sleep 100"}`), http.StatusAccepted)
		e.wantRefused(task(e, e.startedApp("second"), `{"command":"sleep 100"}`), "app_task_limit quota exceeded")
	})
	t.Run("space tasks", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaSpace, `"apps":{"per_app_tasks":0}`)
		e.wantRefused(task(e, app, `{"command":"true"}`), "app_task_limit quota exceeded")
	})
	t.Run("task memory: total with running tasks, and per instance", func(t *testing.T) {
		e, app := quotaCase(t, pando.QuotaOrg, `"apps":{"total_memory_in_mb":1024,"per_process_memory_in_mb":600}`)
		// The app's one instance uses 256M: an 800M task is past both limits.
		e.wantRefused(task(e, app, `{"command":"true","memory_in_mb":800}`), "memory_in_mb exceeds organization memory quota, memory_in_mb exceeds organization instance memory quota")
		running(e, task(e, app, `{"command":"true","memory_in_mb":512}`))
		// 256 + 512 running: 300 more is past 1024, and so is the instance
		// growing to 520M.
		e.wantRefused(task(e, app, `{"command":"true","memory_in_mb":300}`), "memory_in_mb exceeds organization memory quota")
		e.wantRefused(e.scale(app, `{"memory_in_mb":520}`), "memory quota_exceeded")
		e.ok(e.scale(app, `{"memory_in_mb":500}`), http.StatusAccepted)
	})
}

// New orgs get CF's default quota (10 GiB, 1000 routes, 100 managed
// service instances, the rest unlimited), which an admin may change; the
// seeded org is the admin's and has none.
func TestQuotas_newOrgsGetTheDefaultQuota(t *testing.T) {
	e := tnNew(t)
	if err := e.api.Seed(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	qs := ptResources(e.ok(e.do("GET", "/v3/organization_quotas?names=default", "", nil), http.StatusOK))
	if len(qs) != 1 {
		t.Fatalf("default quotas after two seeds: %v", qs)
	}
	q := qs[0]
	want := map[string]any{
		"apps":     map[string]any{"total_memory_in_mb": float64(10240), "per_process_memory_in_mb": nil, "total_instances": nil, "per_app_tasks": nil, "log_rate_limit_in_bytes_per_second": nil},
		"routes":   map[string]any{"total_routes": float64(1000), "total_reserved_ports": nil},
		"services": map[string]any{"total_service_instances": float64(100), "total_service_keys": nil, "paid_services_allowed": true},
	}
	for k, v := range want {
		if fmt.Sprint(q[k]) != fmt.Sprint(v) {
			t.Errorf("default quota %s = %v, want %v", k, q[k], v)
		}
	}
	seeded, err := e.store.GetOrg(t.Context(), e.space().OrgGUID)
	if err != nil || seeded.QuotaGUID != "" {
		t.Errorf("seeded org's quota %q (%v), want none", seeded.QuotaGUID, err)
	}

	org := e.post("/v3/organizations", `{"name":"o2"}`)
	if got := org["relationships"].(map[string]any)["quota"].(map[string]any)["data"].(map[string]any)["guid"]; got != q["guid"] {
		t.Fatalf("new org's quota %v, want the default %v", got, q["guid"])
	}
	// It bounds the org: with the admin's change, the second route is refused.
	e.ok(e.do("PATCH", "/v3/organization_quotas/"+q["guid"].(string), "application/json", strings.NewReader(`{"routes":{"total_routes":1}}`)), http.StatusOK)
	sp := e.post("/v3/spaces", `{"name":"s","relationships":{"organization":{"data":{"guid":"`+org["guid"].(string)+`"}}}}`)
	route := func(host string) *httptest.ResponseRecorder {
		return e.do("POST", "/v3/routes", "application/json", strings.NewReader(`{"host":"`+host+`","relationships":{"space":{"data":{"guid":"`+sp["guid"].(string)+`"}},"domain":{"data":{"guid":"`+e.domain().GUID+`"}}}}`))
	}
	e.ok(route("one"), http.StatusCreated)
	e.wantRefused(route("two"), "Routes quota exceeded for organization 'o2'.")
}
