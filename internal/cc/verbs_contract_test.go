package cc

// Contract tests for the cf CLI's everyday verbs of shared/cf-traces
// 38-42 (terminate-task, restart-app-instance, feature flags, environment
// variable groups): each replays the CLI's requests in order, with its
// headers and bodies, and checks what the CLI reads.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// cf terminate-task app1 1 (trace 38).
func TestContract38_terminateTask(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, true)
	app := e.tkStagedApp("app1")
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "sleep 1000", "name": "t1"}), "guid")

	found := e.appsNamed("app1", app.Space)
	if len(found) != 1 || ctStr(found[0], "guid") != app.GUID {
		t.Fatalf("app lookup = %v", found)
	}
	tasks := e.list(e.get("/v3/apps/" + app.GUID + "/tasks?page=1&per_page=1&sequence_ids=1"))
	if len(tasks) != 1 || ctStr(tasks[0], "guid") != guid {
		t.Fatalf("task by sequence id = %v", tasks)
	}
	// The CLI's PutTaskCancelRequest: PUT, no body.
	c := e.expect(e.send("PUT", "/v3/tasks/"+guid+"/cancel", "application/json", nil), http.StatusAccepted)
	if c["state"] != pando.AppTaskCanceling || c["guid"] != guid || ctStr(c, "name") != "t1" {
		t.Errorf("cancel answered %v, want t1 CANCELING", c)
	}
	if got := tk.cancels(); !slices.Equal(got, []string{guid}) {
		t.Errorf("runtime cancels = %v, want [%s]", got, guid)
	}
	e.complete(guid, true, TaskCancelledReason)
	e.expectCFError(e.send("PUT", "/v3/tasks/"+guid+"/cancel", "application/json", nil), 422, "CF-UnprocessableEntity",
		"Task state is FAILED and therefore cannot be canceled")
	e.expectCFError(e.send("PUT", "/v3/tasks/nope/cancel", "application/json", nil), 404, "CF-ResourceNotFound", "Task not found")
}

// cf restart-app-instance app1 0 (trace 39).
func TestContract39_restartAppInstance(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("app1")
	web := ctStr(e.webProcess(app.GUID), "guid")

	found := e.appsNamed("app1", app.Space)
	if len(found) != 1 || ctStr(found[0], "guid") != app.GUID {
		t.Fatalf("app lookup = %v", found)
	}
	// Each DELETE retires instance 0 in the BBS: its cell stops it and a
	// new instance takes index 0.
	var retired []string
	replaced := func(path string) {
		t.Helper()
		old := ctStr(e.checkStats(web, 1, 256)[0], "instance_guid")
		if r := e.send("DELETE", path, "application/json", nil); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE %s: %v, want 204", path, r)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			as := e.rt.actualLRPs(t, web)
			if len(as) == 1 && as[0].InstanceGUID != old && as[0].State == pando.ActualRunning && !slices.Contains(e.rt.containers(), "app-"+old) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after DELETE %s: instances %+v, containers %v, want %s replaced", path, as, e.rt.containers(), old)
			}
		}
		retired = append(retired, old)
	}
	replaced("/v3/apps/" + app.GUID + "/processes/web/instances/0")
	// The same through the process.
	replaced("/v3/processes/" + web + "/instances/0")
	if len(retired) != 2 || retired[0] == retired[1] {
		t.Errorf("retired %v, want two instances", retired)
	}
	current := ctStr(e.checkStats(web, 1, 256)[0], "instance_guid")
	runs := e.rt.cluster.Backend().Runs()
	events := e.list(e.get("/v3/audit_events?types=audit.app.process.terminate_instance&target_guids=" + app.GUID))
	if len(events) != 2 || ctNum(events[0], "data.process_index") != 0 || ctStr(events[0], "data.process_type") != "web" ||
		ctStr(events[0], "actor.name") != "admin" {
		t.Errorf("terminate events = %v", events)
	}

	// The CLI's errors: an index past the instances, an unknown process type, an unknown app.
	e.expectCFError(e.send("DELETE", "/v3/apps/"+app.GUID+"/processes/web/instances/1", "application/json", nil), 404, "CF-ResourceNotFound", "Instance not found")
	e.expectCFError(e.send("DELETE", "/v3/apps/"+app.GUID+"/processes/web/instances/x", "application/json", nil), 404, "CF-ResourceNotFound", "Instance not found")
	e.expectCFError(e.send("DELETE", "/v3/apps/"+app.GUID+"/processes/worker/instances/0", "application/json", nil), 404, "CF-ResourceNotFound", "Process not found")
	e.expectCFError(e.send("DELETE", "/v3/apps/nope/processes/web/instances/0", "application/json", nil), 404, "CF-ResourceNotFound", "App not found")
	if as := e.rt.actualLRPs(t, web); len(as) != 1 || as[0].InstanceGUID != current || e.rt.cluster.Backend().Runs() != runs {
		t.Errorf("refused requests restarted instances: %+v (%d containers run, was %d)", as, e.rt.cluster.Backend().Runs(), runs)
	}
}

// cf enable-feature-flag diego_docker (trace 41), and what cf feature-flags
// and disable-feature-flag send.
func TestContract41_enableFeatureFlag(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{mod: func(c *Config) { c.DockerEnabled = false }})

	// cf feature-flags: name and enabled, CF's defaults.
	flags := e.list(e.get("/v3/feature_flags"))
	state := map[string]bool{}
	for _, f := range flags {
		state[ctStr(f, "name")] = f["enabled"].(bool)
	}
	for name, want := range map[string]bool{"diego_docker": false, "task_creation": true, "user_org_creation": false,
		"env_var_visibility": true, "space_developer_env_var_visibility": true, "app_scaling": true, "route_sharing": false} {
		if got, ok := state[name]; !ok || got != want {
			t.Errorf("flag %s = %v (listed %v), want %v", name, got, ok, want)
		}
	}

	f := e.expect(e.sendJSON("PATCH", "/v3/feature_flags/diego_docker", map[string]any{"enabled": true}), http.StatusOK)
	if f["name"] != "diego_docker" || f["enabled"] != true || f["custom_error_message"] != nil || ctStr(f, "links.self.href") != e.base+"/v3/feature_flags/diego_docker" {
		t.Errorf("PATCH answered %v", f)
	}
	if f := e.expect(e.get("/v3/feature_flags/diego_docker"), http.StatusOK); f["enabled"] != true || f["updated_at"] == nil {
		t.Errorf("flag after enable = %v", f)
	}
	// disable-feature-flag with a message; the flag list shows it.
	e.expect(e.sendJSON("PATCH", "/v3/feature_flags/task_creation", map[string]any{"enabled": false, "custom_error_message": "tasks are off this week"}), http.StatusOK)
	if f := e.expect(e.get("/v3/feature_flags/task_creation"), http.StatusOK); f["enabled"] != false || f["custom_error_message"] != "tasks are off this week" {
		t.Errorf("flag after disable = %v", f)
	}
	e.expectCFError(e.sendJSON("PATCH", "/v3/feature_flags/no_such_flag", map[string]any{"enabled": true}), 404, "CF-ResourceNotFound", "Feature flag not found")
	e.expectCFError(e.get("/v3/feature_flags/no_such_flag"), 404, "CF-ResourceNotFound", "Feature flag not found")
}

// cf set-running-environment-variable-group '{"A":"1"}' (trace 42), then
// cf running-environment-variable-group.
func TestContract42_setRunningEnvironmentVariableGroup(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	g := e.expect(e.get("/v3/environment_variable_groups/running"), http.StatusOK)
	if g["name"] != "running" || len(g["var"].(map[string]any)) != 0 || ctStr(g, "links.self.href") != e.base+"/v3/environment_variable_groups/running" {
		t.Fatalf("empty group = %v", g)
	}
	g = e.expect(e.sendJSON("PATCH", "/v3/environment_variable_groups/running", map[string]any{"var": map[string]any{"A": "1"}}), http.StatusOK)
	if ctStr(g, "var.A") != "1" || g["updated_at"] == nil {
		t.Errorf("PATCH answered %v", g)
	}
	// A second set: the CLI sends names it drops as null.
	e.expect(e.sendJSON("PATCH", "/v3/environment_variable_groups/running", map[string]any{"var": map[string]any{"A": nil, "B": "two", "N": 3}}), http.StatusOK)
	g = e.expect(e.get("/v3/environment_variable_groups/running"), http.StatusOK)
	if v := g["var"].(map[string]any); len(v) != 2 || v["B"] != "two" || v["N"] != "3" {
		t.Errorf("group after the second set = %v", g)
	}
	// The staging group is separate.
	if s := e.expect(e.get("/v3/environment_variable_groups/staging"), http.StatusOK); len(s["var"].(map[string]any)) != 0 {
		t.Errorf("staging group = %v", s)
	}
	e.expectCFError(e.get("/v3/environment_variable_groups/other"), 404, "CF-ResourceNotFound", "Environment variable group not found")
	e.expectCFError(e.sendJSON("PATCH", "/v3/environment_variable_groups/running", map[string]any{"var": map[string]any{"PORT": "1"}}), 422, "CF-UnprocessableEntity", "Environment variable PORT cannot be set")
	e.expectCFError(e.sendJSON("PATCH", "/v3/environment_variable_groups/running", map[string]any{"var": map[string]any{"X": map[string]any{}}}), 422, "CF-UnprocessableEntity", "")
}

// cf curl /v3/app_usage_events after a push, a scale, a task, a stop and
// a delete: CF's states with instances and memory, filtered and paginated
// as CF's; then the purge that reseeds started apps.
func TestContract_appUsageEvents(t *testing.T) {
	t.Parallel()
	e, _ := tkNew(t, true)
	app := e.push("metered")
	web := ctStr(e.webProcess(app.GUID), "guid")
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"instances": 3, "memory_in_mb": 512}), http.StatusAccepted)
	task := ctStr(e.runTask(app.GUID, map[string]any{"command": "true", "name": "once"}), "guid")
	e.complete(task, false, "")
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/stop"), http.StatusOK)

	events := e.list(e.get("/v3/app_usage_events?per_page=5000"))
	type row struct {
		state, prev           any
		instances, prevInst   any
		memory, prevMemory    any
		buildpack, task, proc any
	}
	var got []row
	for _, ev := range events {
		if ctStr(ev, "app.guid") != app.GUID || ctStr(ev, "app.name") != "metered" || ctStr(ev, "space.guid") != app.Space ||
			ctStr(ev, "space.name") == "" || ctStr(ev, "organization.guid") == "" || !strings.HasPrefix(ctStr(ev, "links.self.href"), e.base+"/v3/app_usage_events/") {
			t.Errorf("event fields: %v", ev)
		}
		got = append(got, row{ctJ(ev, "state.current"), ctJ(ev, "state.previous"), ctJ(ev, "instance_count.current"), ctJ(ev, "instance_count.previous"),
			ctJ(ev, "memory_in_mb_per_instance.current"), ctJ(ev, "memory_in_mb_per_instance.previous"), ctJ(ev, "buildpack.name"), ctJ(ev, "task.name"), ctJ(ev, "process.guid")})
	}
	want := []row{
		{"BUILDPACK_SET", nil, 1.0, nil, 256.0, nil, "staticfile_buildpack", nil, web},
		{"STARTED", "STOPPED", 1.0, 1.0, 256.0, 256.0, nil, nil, web},
		{"STARTED", "STARTED", 3.0, 1.0, 512.0, 256.0, nil, nil, web},
		{"TASK_STARTED", nil, 1.0, nil, 512.0, nil, nil, "once", nil},
		{"TASK_STOPPED", "TASK_STARTED", 1.0, 1.0, 512.0, 512.0, nil, "once", nil},
		{"STOPPED", "STARTED", 3.0, 3.0, 512.0, 512.0, nil, nil, web},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("usage events:\n got %v\nwant %v", got, want)
	}

	// Filters and pages as CF's.
	first := ctStr(events[0], "guid")
	if after := e.list(e.get("/v3/app_usage_events?after_guid=" + first)); len(after) != len(events)-1 || ctStr(after[0], "guid") != ctStr(events[1], "guid") {
		t.Errorf("after_guid: %d events", len(after))
	}
	if one := e.list(e.get("/v3/app_usage_events?guids=" + first)); len(one) != 1 {
		t.Errorf("guids filter: %v", one)
	}
	p := e.expect(e.get("/v3/app_usage_events?per_page=2&order_by=-created_at"), http.StatusOK)
	if ctNum(p, "pagination.total_results") != float64(len(events)) || !strings.HasPrefix(ctStr(p, "pagination.next.href"), e.base+"/v3/app_usage_events?") {
		t.Errorf("page: %v", p["pagination"])
	}
	if ev := e.expect(e.get("/v3/app_usage_events/"+first), http.StatusOK); ev["guid"] != first {
		t.Errorf("get one: %v", ev)
	}
	e.expectCFError(e.get("/v3/app_usage_events/nope"), 404, "CF-ResourceNotFound", "Event not found")

	// Purge and reseed: one STARTED event per process of each started app.
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/start"), http.StatusOK)
	e.expect(e.action("/v3/app_usage_events/actions/destructively_purge_all_and_reseed"), http.StatusOK)
	if after := e.list(e.get("/v3/app_usage_events")); len(after) != 1 || ctJ(after[0], "state.current") != "STARTED" || ctNum(after[0], "instance_count.current") != 3 {
		t.Errorf("after purge: %v", after)
	}
}

func TestUsageEvents_onlyForAdminsAndAuditors(t *testing.T) {
	e := ptNew(t, nil)
	for _, tc := range []struct {
		scopes string
		want   int
	}{
		{ScopeRead + "," + ScopeWrite, http.StatusForbidden},
		{ScopeAdminReadOnly, http.StatusOK},
		{ScopeGlobalAuditor, http.StatusOK},
	} {
		if rec := e.doAs("bearer scopes:"+tc.scopes, "GET", "/v3/app_usage_events", ""); rec.Code != tc.want {
			t.Errorf("%s: GET %d %s, want %d", tc.scopes, rec.Code, rec.Body, tc.want)
		}
		if rec := e.doAs("bearer scopes:"+tc.scopes, "POST", "/v3/app_usage_events/actions/destructively_purge_all_and_reseed", ""); rec.Code != http.StatusForbidden {
			t.Errorf("%s: purge %d, want 403", tc.scopes, rec.Code)
		}
	}
}

// cf logs --recent reads envelopes tagged as log-cache's are: source_type,
// origin, instance_id, app_id and app_name.
func TestContract10_logEnvelopeTags(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("tagged")
	seen := map[string]bool{}
	for _, env := range e.readLogs(app.GUID, "descending=true&envelope_types=LOG&limit=1000&start_time="+ctStartTime) {
		want := map[string]string{"source_type": env.Tags["source_type"], "instance_id": env.InstanceID, "app_id": app.GUID, "app_name": "tagged", "origin": "rep"}
		if env.Tags["source_type"] == "API" {
			want["origin"] = "cloud_controller"
		}
		for k, v := range want {
			if env.Tags[k] != v {
				t.Errorf("%s envelope tag %s = %q, want %q (tags %v)", env.Tags["source_type"], k, env.Tags[k], v, env.Tags)
			}
		}
		seen[env.Tags["source_type"]] = true
	}
	if !seen["STG"] || !seen["APP/PROC/WEB"] {
		t.Errorf("source types read: %v, want STG and APP/PROC/WEB", seen)
	}
}
