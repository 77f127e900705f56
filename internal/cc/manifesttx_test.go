package cc

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

// A manifest that fails after some of its records were written (here its
// last route is the platform's own host, found only when the route is
// created) leaves nothing of itself behind.

func ptReservedAPI(c *Config) { c.ReservedHosts = []string{"api.localhost"} }

func (e *ptEnv) failedManifest(yaml, detail string) {
	e.t.Helper()
	j := e.job(e.applyManifest(yaml))
	if j["state"] != pando.JobFailed {
		e.t.Fatalf("job = %v, want FAILED", j)
	}
	if errs, _ := j["errors"].([]any); len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["detail"].(string), detail) {
		e.t.Fatalf("job errors = %v, want one containing %q", j["errors"], detail)
	}
}

func (e *ptEnv) routeExists(host string) bool {
	e.t.Helper()
	rs, err := e.store.ListRoutes(e.t.Context(), pando.RouteFilter{Hosts: []string{host}})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(rs) > 0
}

func (e *ptEnv) eventCount() int {
	e.t.Helper()
	evs, err := e.store.ListEvents(e.t.Context(), pando.EventFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

func TestApplyManifest_failingLastRouteCreatesNoApp(t *testing.T) {
	e := ptNew(t, ptReservedAPI)
	events := e.eventCount()
	e.failedManifest(`applications:
- name: halfapp
  instances: 2
  env: {A: "1"}
  processes:
  - type: worker
    command: ./work
  routes:
  - route: halfapp.localhost
  - route: api.localhost
`, "Route api.localhost is the platform's own")
	if apps, err := e.store.ListApps(t.Context(), pando.AppFilter{Names: []string{"halfapp"}}); err != nil || len(apps) != 0 {
		t.Errorf("apps = %v, %v; want none", apps, err)
	}
	if procs, err := e.store.ListProcesses(t.Context(), nil, nil); err != nil || len(procs) != 0 {
		t.Errorf("processes = %v, %v; want none", procs, err)
	}
	if e.routeExists("halfapp") {
		t.Error("route halfapp.localhost was created")
	}
	if got := e.eventCount(); got != events {
		t.Errorf("%d audit events after the failed manifest, want %d (none of its own)", got, events)
	}
	// The same manifest without the bad route applies.
	if j := e.job(e.applyManifest("applications:\n- name: halfapp\n  routes:\n  - route: halfapp.localhost\n")); j["state"] != pando.JobComplete {
		t.Fatalf("job = %v", j)
	}
	if got := e.appRouteURLs(e.appByName("halfapp").GUID); !slices.Equal(got, []string{"halfapp.localhost"}) {
		t.Errorf("routes = %v", got)
	}
}

func TestApplyManifest_failingLastRouteLeavesTheAppAsItWas(t *testing.T) {
	e := ptNew(t, ptReservedAPI)
	app := e.startedApp("myapp")
	if j := e.job(e.applyManifest("applications:\n- name: myapp\n  instances: 1\n  env: {A: \"1\"}\n  routes:\n  - route: myapp.localhost\n")); j["state"] != pando.JobComplete {
		t.Fatalf("job = %v", j)
	}
	before := e.appByName("myapp")
	web := e.webProcess(app.GUID)
	lrp, err := e.rt.board.DesiredLRP(t.Context(), web.GUID)
	if err != nil || lrp.Instances != 1 {
		t.Fatalf("desired LRP = %+v, %v; want 1 instance", lrp, err)
	}
	events := e.eventCount()

	e.failedManifest(`applications:
- name: myapp
  instances: 3
  memory: 512M
  buildpack: binary_buildpack
  env: {B: "2"}
  processes:
  - type: worker
    command: ./work
  routes:
  - route: myapp.localhost
  - route: new.localhost
  - route: api.localhost
`, "Route api.localhost is the platform's own")

	after := e.appByName("myapp")
	if !maps.Equal(after.EnvVars, before.EnvVars) || !slices.Equal(after.Buildpacks, before.Buildpacks) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("app changed: env %v buildpacks %v, was env %v buildpacks %v", after.EnvVars, after.Buildpacks, before.EnvVars, before.Buildpacks)
	}
	if got := e.webProcess(app.GUID); got.Instances != web.Instances || got.MemoryMB != web.MemoryMB {
		t.Errorf("web = %d x %d MB, was %d x %d MB", got.Instances, got.MemoryMB, web.Instances, web.MemoryMB)
	}
	if procs, _ := e.store.ListProcesses(t.Context(), nil, []string{app.GUID}); len(procs) != 1 {
		t.Errorf("processes = %v, want only web", procs)
	}
	if got := e.appRouteURLs(app.GUID); !slices.Equal(got, []string{"myapp.localhost"}) {
		t.Errorf("routes = %v", got)
	}
	if e.routeExists("new") {
		t.Error("route new.localhost was created")
	}
	if got := e.eventCount(); got != events {
		t.Errorf("%d audit events after the failed manifest, want %d", got, events)
	}
	// The scale was told to the runtime inside the transaction; the sync
	// after the rollback takes it back.
	if lrp, err := e.rt.board.DesiredLRP(t.Context(), web.GUID); err != nil || lrp.Instances != 1 {
		t.Errorf("desired LRP = %d instances, %v; want 1", lrp.Instances, err)
	}
}
