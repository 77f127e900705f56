package cc

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// Concurrent requests that change different fields of one record all
// land: none reads the record, then writes it back over another's change.

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// onEngines runs fn on a fresh API over SQLite, then over PostgreSQL.
func onEngines(t *testing.T, fn func(t *testing.T, e *ptEnv)) {
	onEnginesWith(t, nil, fn)
}

// onEnginesWith is onEngines with the API's Config changed by mod.
func onEnginesWith(t *testing.T, mod func(*Config), fn func(t *testing.T, e *ptEnv)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, ptNew(t, mod)) })
	t.Run("postgres", func(t *testing.T) { fn(t, ptNewOn(t, pgtest.URL(t), mod)) })
}

// edit is one request of a concurrent batch and the status it must get.
type edit struct {
	method, path, body string
	status             int
}

// concurrently sends the edits all at once and checks their statuses.
func (e *ptEnv) concurrently(edits []edit) {
	e.t.Helper()
	recs := e.sendAll(edits)
	for i, ed := range edits {
		if recs[i].Code != ed.status {
			e.t.Fatalf("%s %s %s: status %d, want %d; body: %s", ed.method, ed.path, ed.body, recs[i].Code, ed.status, recs[i].Body.String())
		}
	}
}

// sendAll sends the edits all at once and returns their answers.
func (e *ptEnv) sendAll(edits []edit) []*httptest.ResponseRecorder {
	recs := make([]*httptest.ResponseRecorder, len(edits))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ed := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctype := "application/json"
			if strings.HasSuffix(ed.path, "/apply_manifest") {
				ctype = "application/x-yaml"
			}
			recs[i] = e.do(ed.method, ed.path, ctype, strings.NewReader(ed.body))
		}()
	}
	close(start)
	wg.Wait()
	return recs
}

func TestConcurrentEdits_appAndProcessKeepEveryChange(t *testing.T) {
	onEngines(t, func(t *testing.T, e *ptEnv) {
		app := e.startedApp("busy")
		web := "/v3/processes/" + app.GUID
		want := map[string]string{}
		for round := range 4 {
			name := fmt.Sprintf("busy-%d", round)
			action, state := "stop", pando.AppStopped
			if round%2 == 1 {
				action, state = "start", pando.AppStarted
			}
			feature := round%2 == 0
			edits := []edit{
				{"POST", "/v3/apps/" + app.GUID + "/processes/web/actions/scale", fmt.Sprintf(`{"instances":%d}`, round+2), http.StatusAccepted},
				{"POST", "/v3/apps/" + app.GUID + "/processes/web/actions/scale", fmt.Sprintf(`{"memory_in_mb":%d}`, 64+round), http.StatusAccepted},
				{"POST", web + "/actions/scale", fmt.Sprintf(`{"disk_in_mb":%d}`, 100+round), http.StatusAccepted},
				{"POST", web + "/actions/scale", fmt.Sprintf(`{"log_rate_limit_in_bytes_per_second":%d}`, 1000+round), http.StatusAccepted},
				{"PATCH", web, fmt.Sprintf(`{"command":"./serve-%d"}`, round), http.StatusOK},
				{"PATCH", web, fmt.Sprintf(`{"health_check":{"data":{"timeout":%d}}}`, 10+round), http.StatusOK},
				{"PATCH", "/v3/apps/" + app.GUID, `{"name":"` + name + `"}`, http.StatusOK},
				{"POST", "/v3/apps/" + app.GUID + "/actions/" + action, "", http.StatusOK},
				{"PATCH", "/v3/apps/" + app.GUID + "/features/file-based-vcap-services", fmt.Sprintf(`{"enabled":%t}`, feature), http.StatusOK},
			}
			for i := range 6 {
				k, v := fmt.Sprintf("K%d_%d", round, i), fmt.Sprintf("v%d", i)
				want[k] = v
				edits = append(edits, edit{"PATCH", "/v3/apps/" + app.GUID + "/environment_variables", `{"var":{"` + k + `":"` + v + `"}}`, http.StatusOK})
			}
			e.concurrently(edits)

			got, err := e.store.GetApp(t.Context(), app.GUID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != name || got.State != state {
				t.Errorf("round %d: app name %q state %s, want %q %s", round, got.Name, got.State, name, state)
			}
			if !maps.Equal(got.EnvVars, want) {
				t.Errorf("round %d: env = %v, want %v", round, got.EnvVars, want)
			}
			if on := len(got.Features) == 1 && got.Features[0] == pando.AppFeatureFileVCAPServices; on != feature {
				t.Errorf("round %d: features = %v, want file-based-vcap-services %t", round, got.Features, feature)
			}
			p := e.webProcess(app.GUID)
			if p.Instances != round+2 || p.MemoryMB != 64+round || p.DiskMB != 100+round || p.LogRateLimitBytes != 1000+round ||
				p.Command != fmt.Sprintf("./serve-%d", round) || p.HealthCheckTimeout != 10+round {
				t.Errorf("round %d: web process = %+v, want every change of the round", round, p)
			}
		}
	})
}

// A manifest applied while the app is stopped, scaled and given env
// vars by other requests keeps their changes, and they keep its.
func TestConcurrentEdits_manifestAndOtherEditsKeepEveryChange(t *testing.T) {
	onEngines(t, func(t *testing.T, e *ptEnv) {
		app := e.startedApp("man")
		want := map[string]string{}
		for round := range 4 {
			action, state := "stop", pando.AppStopped
			if round%2 == 1 {
				action, state = "start", pando.AppStarted
			}
			mk := fmt.Sprintf("M%d", round)
			want[mk] = "m"
			manifest := fmt.Sprintf("applications:\n- name: man\n  env:\n    %s: m\n  processes:\n  - type: worker\n    command: ./work-%d\n", mk, round)
			edits := []edit{
				{"POST", "/v3/spaces/" + e.space().GUID + "/actions/apply_manifest", manifest, http.StatusAccepted},
				{"POST", "/v3/apps/" + app.GUID + "/actions/" + action, "", http.StatusOK},
				{"POST", "/v3/apps/" + app.GUID + "/processes/web/actions/scale", fmt.Sprintf(`{"instances":%d}`, round+1), http.StatusAccepted},
				{"PATCH", "/v3/processes/" + app.GUID, fmt.Sprintf(`{"command":"./web-%d"}`, round), http.StatusOK},
			}
			for i := range 4 {
				k := fmt.Sprintf("K%d_%d", round, i)
				want[k] = "v"
				edits = append(edits, edit{"PATCH", "/v3/apps/" + app.GUID + "/environment_variables", `{"var":{"` + k + `":"v"}}`, http.StatusOK})
			}
			e.concurrently(edits)

			got, err := e.store.GetApp(t.Context(), app.GUID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != state || !maps.Equal(got.EnvVars, want) {
				t.Errorf("round %d: app state %s env %v, want %s %v", round, got.State, got.EnvVars, state, want)
			}
			procs, err := e.store.ListProcesses(t.Context(), nil, []string{app.GUID})
			if err != nil {
				t.Fatal(err)
			}
			byType := map[string]pando.Process{}
			for _, p := range procs {
				byType[p.Type] = p
			}
			if w := byType["web"]; w.Instances != round+1 || w.Command != fmt.Sprintf("./web-%d", round) {
				t.Errorf("round %d: web = %+v, want %d instances running ./web-%d", round, w, round+1, round)
			}
			if w := byType["worker"]; w.Command != fmt.Sprintf("./work-%d", round) {
				t.Errorf("round %d: worker = %+v, want command ./work-%d", round, w, round)
			}
		}
	})
}

func TestConcurrentEdits_tenancyServicesAndSettingsKeepEveryChange(t *testing.T) {
	onEngines(t, func(t *testing.T, e *ptEnv) {
		ctx := t.Context()
		org := e.post("/v3/organizations", `{"name":"o"}`)["guid"].(string)
		rel := `"relationships":{"organization":{"data":{"guid":"` + org + `"}}}`
		space := e.post("/v3/spaces", `{"name":"s",`+rel+`}`)["guid"].(string)
		quotas := []string{
			e.post("/v3/organization_quotas", `{"name":"q0"}`)["guid"].(string),
			e.post("/v3/organization_quotas", `{"name":"q1"}`)["guid"].(string),
		}
		spaceQuota := e.post("/v3/space_quotas", `{"name":"sq",`+rel+`}`)["guid"].(string)
		si := e.upsi(space, "si", "")
		wantGroup := map[string]string{}
		for round := range 4 {
			spaceEdit := edit{"POST", "/v3/space_quotas/" + spaceQuota + "/relationships/spaces", `{"data":[{"guid":"` + space + `"}]}`, http.StatusOK}
			wantSpaceQuota := spaceQuota
			if round%2 == 1 {
				spaceEdit = edit{"DELETE", "/v3/space_quotas/" + spaceQuota + "/relationships/spaces/" + space, "", http.StatusNoContent}
				wantSpaceQuota = ""
			}
			flagOn := round%2 == 0
			edits := []edit{
				{"PATCH", "/v3/organizations/" + org, fmt.Sprintf(`{"name":"o-%d"}`, round), http.StatusOK},
				{"POST", "/v3/organization_quotas/" + quotas[round%2] + "/relationships/organizations", `{"data":[{"guid":"` + org + `"}]}`, http.StatusOK},
				{"PATCH", "/v3/spaces/" + space, fmt.Sprintf(`{"name":"s-%d"}`, round), http.StatusOK},
				spaceEdit,
				{"PATCH", "/v3/organization_quotas/" + quotas[0], fmt.Sprintf(`{"apps":{"total_memory_in_mb":%d}}`, 1000+round), http.StatusOK},
				{"PATCH", "/v3/organization_quotas/" + quotas[0], fmt.Sprintf(`{"routes":{"total_routes":%d}}`, 10+round), http.StatusOK},
				{"PATCH", "/v3/organization_quotas/" + quotas[0], fmt.Sprintf(`{"name":"q0-%d"}`, round), http.StatusOK},
				{"PATCH", "/v3/service_instances/" + si, fmt.Sprintf(`{"name":"si-%d"}`, round), http.StatusOK},
				{"PATCH", "/v3/service_instances/" + si, fmt.Sprintf(`{"tags":["t-%d"]}`, round), http.StatusOK},
				{"PATCH", "/v3/service_instances/" + si, fmt.Sprintf(`{"syslog_drain_url":"syslog://drain-%d.example:514"}`, round), http.StatusOK},
				{"PATCH", "/v3/feature_flags/" + FlagUserOrgCreation, fmt.Sprintf(`{"enabled":%t}`, flagOn), http.StatusOK},
				{"PATCH", "/v3/feature_flags/" + FlagUserOrgCreation, fmt.Sprintf(`{"custom_error_message":"m-%d"}`, round), http.StatusOK},
			}
			for i := range 5 {
				k, v := fmt.Sprintf("G%d_%d", round, i), fmt.Sprintf("v%d", i)
				wantGroup[k] = v
				edits = append(edits, edit{"PATCH", "/v3/environment_variable_groups/running", `{"var":{"` + k + `":"` + v + `"}}`, http.StatusOK})
			}
			e.concurrently(edits)

			if o, err := e.store.GetOrg(ctx, org); err != nil || o.Name != fmt.Sprintf("o-%d", round) || o.QuotaGUID != quotas[round%2] {
				t.Errorf("round %d: org = %+v, %v; want its new name and quota", round, o, err)
			}
			if sp, err := e.store.GetSpace(ctx, space); err != nil || sp.Name != fmt.Sprintf("s-%d", round) || sp.QuotaGUID != wantSpaceQuota {
				t.Errorf("round %d: space = %+v, %v; want its new name and quota %q", round, sp, err, wantSpaceQuota)
			}
			q, err := e.store.GetQuota(ctx, quotas[0])
			if err != nil || q.Name != fmt.Sprintf("q0-%d", round) || q.Limits.TotalMemoryMB == nil || *q.Limits.TotalMemoryMB != int64(1000+round) ||
				q.Limits.TotalRoutes == nil || *q.Limits.TotalRoutes != int64(10+round) {
				t.Errorf("round %d: quota = %+v (limits %v), %v; want every change of the round", round, q, q.Limits, err)
			}
			inst, err := e.store.GetServiceInstance(ctx, si)
			if err != nil || inst.Name != fmt.Sprintf("si-%d", round) || len(inst.Tags) != 1 || inst.Tags[0] != fmt.Sprintf("t-%d", round) ||
				inst.SyslogDrainURL != fmt.Sprintf("syslog://drain-%d.example:514", round) {
				t.Errorf("round %d: service instance = %+v, %v; want every change of the round", round, inst, err)
			}
			flags, err := e.store.ListFeatureFlags(ctx)
			found := false
			for _, f := range flags {
				if f.Name == FlagUserOrgCreation {
					found = f.Enabled == flagOn && f.CustomErrorMessage == fmt.Sprintf("m-%d", round)
				}
			}
			if err != nil || !found {
				t.Errorf("round %d: flags = %+v, %v; want %s enabled %t with message m-%d", round, flags, err, FlagUserOrgCreation, flagOn, round)
			}
			if g, err := e.store.GetEnvGroup(ctx, pando.EnvGroupRunning); err != nil || !maps.Equal(g.Vars, wantGroup) {
				t.Errorf("round %d: running group = %v, %v; want %v", round, g.Vars, err, wantGroup)
			}
		}
	})
}

// A staging timeout that read the build while it staged does not fail it
// once its completion has been recorded: a staging's first outcome stands.
func TestFailBuild_aBuildThatFinishedMeanwhileStays(t *testing.T) {
	e := swNew(t)
	ctx := t.Context()
	stale := e.build(t, "b1")
	staged := stale
	staged.State = pando.BuildStaged
	if err := e.store.UpdateBuild(ctx, staged); err != nil {
		t.Fatal(err)
	}
	e.api.failBuild(ctx, stale, "Staging time expired")
	if b, err := e.store.GetBuild(ctx, stale.GUID); err != nil || b.State != pando.BuildStaged || b.Error != "" {
		t.Errorf("build = %+v, %v; want it STAGED without error", b, err)
	}
	if d, err := e.store.GetDroplet(ctx, stale.DropletGUID); err != nil || d.State == pando.DropletFailed {
		t.Errorf("droplet = %+v, %v; want it not FAILED", d, err)
	}
	// A build still staging fails.
	b2 := e.build(t, "b2")
	e.api.failBuild(ctx, b2, "Staging time expired")
	if b, err := e.store.GetBuild(ctx, b2.GUID); err != nil || b.State != pando.BuildFailed || b.Error != "Staging time expired" {
		t.Errorf("build = %+v, %v; want it FAILED", b, err)
	}
}

// Starts and a scale sent together, each fitting the org's memory quota
// alone, are admitted only as far as they fit together: each checks the
// quota in the transaction that writes it.
func TestConcurrentEdits_startsAndScalesStayWithinTheQuota(t *testing.T) {
	onEngines(t, func(t *testing.T, e *ptEnv) {
		ctx := t.Context()
		sp := e.space()
		q := e.post("/v3/organization_quotas", `{"name":"oq","apps":{"total_memory_in_mb":768}}`)["guid"].(string)
		e.ok(e.do("POST", "/v3/organization_quotas/"+q+"/relationships/organizations", "application/json",
			strings.NewReader(`{"data":[{"guid":"`+sp.OrgGUID+`"}]}`)), http.StatusOK)
		first := e.startedApp("first") // 1 x 256 MB: 512 MB left
		edits := []edit{{"POST", "/v3/apps/" + first.GUID + "/processes/web/actions/scale", `{"instances":2}`, 0}}
		for i := range 3 {
			app := e.startedApp(fmt.Sprintf("more%d", i))
			app.State = pando.AppStopped
			if err := e.store.UpdateApp(ctx, app); err != nil {
				t.Fatal(err)
			}
			edits = append(edits, edit{"POST", "/v3/apps/" + app.GUID + "/actions/start", "", 0})
		}
		admitted := 0
		for i, rec := range e.sendAll(edits) {
			switch rec.Code {
			case http.StatusOK, http.StatusAccepted:
				admitted++
			case http.StatusUnprocessableEntity:
			default:
				t.Errorf("%s %s: status %d; body: %s", edits[i].method, edits[i].path, rec.Code, rec.Body.String())
			}
		}
		if admitted != 2 {
			t.Errorf("%d of the 4 requests admitted, want 2 (512 MB left, 256 MB each)", admitted)
		}
		apps, err := e.store.ListApps(ctx, pando.AppFilter{SpaceGUIDs: []string{sp.GUID}})
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		for _, app := range apps {
			if app.State == pando.AppStarted {
				p := e.webProcess(app.GUID)
				used += p.Instances * p.MemoryMB
			}
		}
		if used > 768 {
			t.Errorf("started apps use %d MB, over the 768 MB quota", used)
		}
	})
}

// Route and task creations sent together are admitted only as far as the
// org quota's totals allow: each checks the quota in the transaction that
// records it.
func TestConcurrentEdits_routesAndTasksStayWithinTheQuota(t *testing.T) {
	onEngines(t, func(t *testing.T, e *ptEnv) {
		ctx := t.Context()
		sp := e.space()
		q := e.post("/v3/organization_quotas", `{"name":"oq","routes":{"total_routes":2},"apps":{"per_app_tasks":2}}`)["guid"].(string)
		e.ok(e.do("POST", "/v3/organization_quotas/"+q+"/relationships/organizations", "application/json",
			strings.NewReader(`{"data":[{"guid":"`+sp.OrgGUID+`"}]}`)), http.StatusOK)
		app := e.startedApp("tasks")
		var edits []edit
		for i := range 4 {
			edits = append(edits,
				edit{"POST", "/v3/routes", fmt.Sprintf(`{"host":"h%d","relationships":{"space":{"data":{"guid":"%s"}},"domain":{"data":{"guid":"%s"}}}}`, i, sp.GUID, e.domain().GUID), 0},
				edit{"POST", "/v3/apps/" + app.GUID + "/tasks", `{"command":"true"}`, 0})
		}
		admitted := map[string]int{}
		for i, rec := range e.sendAll(edits) {
			switch rec.Code {
			case http.StatusCreated, http.StatusAccepted:
				admitted[edits[i].path]++
			case http.StatusUnprocessableEntity:
			default:
				t.Errorf("%s %s: status %d; body: %s", edits[i].method, edits[i].path, rec.Code, rec.Body.String())
			}
		}
		if n := admitted["/v3/routes"]; n != 2 {
			t.Errorf("%d of 4 routes created, want 2 (the quota's total)", n)
		}
		if n := admitted["/v3/apps/"+app.GUID+"/tasks"]; n != 2 {
			t.Errorf("%d of 4 tasks created, want 2 (the quota's per_app_tasks)", n)
		}
		if rts, err := e.store.ListRoutes(ctx, pando.RouteFilter{SpaceGUIDs: []string{sp.GUID}}); err != nil || len(rts) != 2 {
			t.Errorf("routes = %d, %v; want 2", len(rts), err)
		}
	})
}

// Service instance creations and binds sent together are admitted only as
// far as the tenant limits allow: each checks them in the transaction that
// records it.
func TestConcurrentEdits_instancesAndBindsStayWithinTheTenantLimits(t *testing.T) {
	limits := func(c *Config) {
		c.MaxServiceInstancesPerOrg = 3
		c.DrainLimits = drain.Limits{MaxDrainsPerSpace: 2, MaxDrainsPerOrg: -1}
	}
	onEnginesWith(t, limits, func(t *testing.T, e *ptEnv) {
		sp := e.space()
		logs := e.upsi(sp.GUID, "logs", "syslog://logs.example:514")
		var edits []edit
		for i := range 4 {
			app := e.appIn(sp.GUID, fmt.Sprintf("a%d", i))
			edits = append(edits,
				edit{"POST", "/v3/service_instances", fmt.Sprintf(`{"type":"user-provided","name":"si%d","relationships":{"space":{"data":{"guid":"%s"}}}}`, i, sp.GUID), 0},
				edit{"POST", "/v3/service_credential_bindings", `{"type":"app","relationships":{"app":{"data":{"guid":"` + app.GUID + `"}},"service_instance":{"data":{"guid":"` + logs + `"}}}}`, 0})
		}
		admitted := map[string]int{}
		for i, rec := range e.sendAll(edits) {
			switch rec.Code {
			case http.StatusCreated:
				admitted[edits[i].path]++
			case http.StatusUnprocessableEntity:
			default:
				t.Errorf("%s %s: status %d; body: %s", edits[i].method, edits[i].path, rec.Code, rec.Body.String())
			}
		}
		if n := admitted["/v3/service_instances"]; n != 2 {
			t.Errorf("%d of 4 service instances created, want 2 (3 per org, 1 there)", n)
		}
		if n := admitted["/v3/service_credential_bindings"]; n != 2 {
			t.Errorf("%d of 4 binds of a drain admitted, want 2 (2 drains per space)", n)
		}
	})
}
