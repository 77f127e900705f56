package cc

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/secrets"
)

// tlNew is a tenancy test API with a secrets key and mods applied.
func tlNew(t *testing.T, mods ...func(*Config)) *ptEnv {
	t.Helper()
	box, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	return tnNew(t, append([]func(*Config){func(c *Config) { c.Secrets = box }}, mods...)...)
}

// upsi creates a user-provided instance as admin and returns its GUID.
func (e *ptEnv) upsi(spaceGUID, name, drainURL string) string {
	e.t.Helper()
	body := `{"type":"user-provided","name":"` + name + `","relationships":{"space":{"data":{"guid":"` + spaceGUID + `"}}}`
	if drainURL != "" {
		body += `,"syslog_drain_url":"` + drainURL + `"`
	}
	return e.post("/v3/service_instances", body+"}")["guid"].(string)
}

func (e *ptEnv) bind(app pando.App, instanceGUID string) *httptest.ResponseRecorder {
	return e.do("POST", "/v3/service_credential_bindings", "application/json", strings.NewReader(
		`{"type":"app","relationships":{"app":{"data":{"guid":"`+app.GUID+`"}},"service_instance":{"data":{"guid":"`+instanceGUID+`"}}}}`))
}

// appIn creates a stopped app in a space.
func (e *ptEnv) appIn(spaceGUID, name string) pando.App {
	e.t.Helper()
	app, err := e.api.createApp(e.t.Context(), Identity{UserGUID: "admin-guid", UserName: "admin"}, appCreate{Name: name, SpaceGUID: spaceGUID})
	if err != nil {
		e.t.Fatalf("create app %s: %v", name, err)
	}
	return app
}

// A space's apps may have MaxDrainsPerSpace syslog drains and an org's
// MaxDrainsPerOrg: a bind, a manifest's services or a drain URL given to
// a bound instance past them is refused with the limit's name; unbinding
// makes room.
func TestDrainLimits_bindsPastATenantsShareAreRefused(t *testing.T) {
	e := tlNew(t, func(c *Config) { c.DrainLimits = drain.Limits{MaxDrainsPerSpace: 2, MaxDrainsPerOrg: 3} })
	sp := e.space()
	logs := e.upsi(sp.GUID, "logs", "syslog://logs.example:514")
	sameURL := e.upsi(sp.GUID, "logs-again", "syslog://logs.example:514")
	db := e.upsi(sp.GUID, "db", "")
	a1, a2, a3 := e.appIn(sp.GUID, "a1"), e.appIn(sp.GUID, "a2"), e.appIn(sp.GUID, "a3")

	e.ok(e.bind(a1, logs), http.StatusCreated)
	b2 := e.ok(e.bind(a2, logs), http.StatusCreated)["guid"].(string)
	e.wantRefused(e.bind(a3, logs), "App 'a3' cannot get the syslog drain of service instance 'logs': the space's limit of 2 syslog drains is reached: unbind a syslog drain service from one of its apps, or ask an admin to raise it (--syslog-drain-max-per-space)")
	// No drain, or a drain URL the app has already: nothing new to bound.
	e.ok(e.bind(a3, db), http.StatusCreated)
	e.ok(e.bind(a1, sameURL), http.StatusCreated)
	// A drain URL given to an instance bound to a3 would add a third.
	e.wantRefused(e.do("PATCH", "/v3/service_instances/"+db, "application/json", strings.NewReader(`{"syslog_drain_url":"syslog://other.example:514"}`)),
		"App 'a3' cannot get the syslog drain of service instance 'db': the space's limit of 2 syslog drains is reached: unbind a syslog drain service from one of its apps, or ask an admin to raise it (--syslog-drain-max-per-space)")
	if si, err := e.store.GetServiceInstance(t.Context(), db); err != nil || si.SyslogDrainURL != "" {
		t.Errorf("refused update stored anyway: %+v %v", si, err)
	}
	// A manifest binding past the limit binds none of its services.
	job := e.job(e.applyManifest("applications:\n- name: a3\n  services: [db, logs-again]\n"))
	if job["state"] != "FAILED" || !strings.Contains(fmt.Sprint(job["errors"]), "space's limit of 2 syslog drains") {
		t.Errorf("manifest job: %v, want FAILED with the space's limit", job)
	}
	if bs, _ := e.store.ListServiceBindings(t.Context(), pando.ServiceBindingFilter{AppGUIDs: []string{a3.GUID}}); len(bs) != 1 {
		t.Errorf("a3's bindings after a refused manifest: %v, want only db", bs)
	}

	// Unbinding a2 makes room for a3.
	if rec := e.do("DELETE", "/v3/service_credential_bindings/"+b2, "", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("unbind: %d %s", rec.Code, rec.Body.String())
	}
	e.ok(e.bind(a3, logs), http.StatusCreated)

	// The org's share spans its spaces: 2 here, 1 more in another space.
	other := pando.Space{GUID: "space-2", Name: "prod", OrgGUID: sp.OrgGUID}
	if err := e.store.CreateSpace(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	prodLogs := e.upsi(other.GUID, "logs", "syslog://prod-logs.example:514")
	e.ok(e.bind(e.appIn(other.GUID, "p1"), prodLogs), http.StatusCreated)
	e.wantRefused(e.bind(e.appIn(other.GUID, "p2"), prodLogs), "App 'p2' cannot get the syslog drain of service instance 'logs': the organization's limit of 3 syslog drains is reached: unbind a syslog drain service from one of its apps, or ask an admin to raise it (--syslog-drain-max-per-org)")

	// Another org has its own share.
	if err := e.store.CreateOrg(t.Context(), pando.Org{GUID: "org-2", Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateSpace(t.Context(), pando.Space{GUID: "space-3", Name: "dev", OrgGUID: "org-2"}); err != nil {
		t.Fatal(err)
	}
	acmeLogs := e.upsi("space-3", "logs", "syslog://acme-logs.example:514")
	e.ok(e.bind(e.appIn("space-3", "x1"), acmeLogs), http.StatusCreated)
	e.ok(e.bind(e.appIn("space-3", "x2"), acmeLogs), http.StatusCreated)
}

// Changing a bound instance's drain URL replaces its drains: a full space
// may do it.
func TestDrainLimits_newURLReplacesTheInstancesDrains(t *testing.T) {
	e := tlNew(t, func(c *Config) { c.DrainLimits = drain.Limits{MaxDrainsPerSpace: 1} })
	sp := e.space()
	logs := e.upsi(sp.GUID, "logs", "syslog://logs.example:514")
	e.ok(e.bind(e.appIn(sp.GUID, "a1"), logs), http.StatusCreated)
	e.ok(e.do("PATCH", "/v3/service_instances/"+logs, "application/json", strings.NewReader(`{"syslog_drain_url":"syslog://new-logs.example:514"}`)), http.StatusOK)
	e.wantRefused(e.bind(e.appIn(sp.GUID, "a2"), logs), "App 'a2' cannot get the syslog drain of service instance 'logs': the space's limit of 1 syslog drains is reached: unbind a syslog drain service from one of its apps, or ask an admin to raise it (--syslog-drain-max-per-space)")
}

// The platform's total is checked at the API too, after the tenant's own.
func TestDrainLimits_platformTotal(t *testing.T) {
	e := tlNew(t, func(c *Config) {
		c.DrainLimits = drain.Limits{MaxDrains: 1, MaxDrainsPerOrg: -1, MaxDrainsPerSpace: -1}
	})
	sp := e.space()
	logs := e.upsi(sp.GUID, "logs", "syslog://logs.example:514")
	e.ok(e.bind(e.appIn(sp.GUID, "a1"), logs), http.StatusCreated)
	e.wantRefused(e.bind(e.appIn(sp.GUID, "a2"), logs), "App 'a2' cannot get the syslog drain of service instance 'logs': the platform's limit of 1 syslog drains is reached: ask an admin to raise it (--syslog-drain-max)")
}

// CF's total_service_instances counts managed instances only
// (ManagedServiceInstance's MaxServiceInstancePolicy), so a quota of 0
// still lets an org create user-provided ones; what bounds those is the
// platform's per-org limit.
func TestServiceInstanceLimit_perOrgNotCFsQuota(t *testing.T) {
	e := tlNew(t, func(c *Config) { c.MaxServiceInstancesPerOrg = 2 })
	sp := e.space()
	q := e.post("/v3/organization_quotas", `{"name":"no-services","services":{"total_service_instances":0}}`)
	e.ok(e.do("POST", "/v3/organization_quotas/"+q["guid"].(string)+"/relationships/organizations", "application/json", strings.NewReader(`{"data":[{"guid":"`+sp.OrgGUID+`"}]}`)), http.StatusOK)
	e.upsi(sp.GUID, "one", "")
	if err := e.store.CreateSpace(t.Context(), pando.Space{GUID: "space-2", Name: "prod", OrgGUID: sp.OrgGUID}); err != nil {
		t.Fatal(err)
	}
	e.upsi("space-2", "two", "")
	create := func(space, name string) *httptest.ResponseRecorder {
		return e.do("POST", "/v3/service_instances", "application/json", strings.NewReader(`{"type":"user-provided","name":"`+name+`","relationships":{"space":{"data":{"guid":"`+space+`"}}}}`))
	}
	want := "You have exceeded your organization's services limit: it may have 2 service instances on this platform. Delete one it no longer needs, or ask an admin to raise the limit (--max-service-instances-per-org)."
	e.wantRefused(create(sp.GUID, "three"), want)
	e.wantRefused(create("space-2", "three"), want)

	if err := e.store.CreateOrg(t.Context(), pando.Org{GUID: "org-2", Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateSpace(t.Context(), pando.Space{GUID: "space-3", Name: "dev", OrgGUID: "org-2"}); err != nil {
		t.Fatal(err)
	}
	e.ok(create("space-3", "three"), http.StatusCreated)

	unbounded := tlNew(t, func(c *Config) { c.MaxServiceInstancesPerOrg = -1 })
	for i := range 3 {
		unbounded.upsi(unbounded.space().GUID, "s"+string(rune('a'+i)), "")
	}
	if _, err := New(Config{Store: e.store, Blobs: &ptBlobs{}, Runtime: e.rt.board, Auth: ptAuth{}, MaxServiceInstancesPerOrg: -2}); err == nil {
		t.Error("a limit of -2 was accepted")
	}
}
