package cc

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

func envOf(vars []pando.EnvVar) map[string]string {
	m := map[string]string{}
	for _, v := range vars {
		m[v.Name] = v.Value
	}
	return m
}

// TestEnvGroups_areUnderTheAppsOwnVariables: the running group reaches
// instances and tasks, the staging group stagings, and an app's own
// variable of the same name wins, as in CF.
func TestEnvGroups_areUnderTheAppsOwnVariables(t *testing.T) {
	e := ptNew(t, nil)
	e.ok(e.doJSON("PATCH", "/v3/environment_variable_groups/running", map[string]any{"var": map[string]any{"R": "group", "SHARED": "group"}}), http.StatusOK)
	e.ok(e.doJSON("PATCH", "/v3/environment_variable_groups/staging", map[string]any{"var": map[string]any{"S": "group", "SHARED": "staging-group"}}), http.StatusOK)
	if rec := e.doAs(ffDeveloper, "PATCH", "/v3/environment_variable_groups/running", `{"var":{"X":"1"}}`); rec.Code != http.StatusForbidden {
		t.Errorf("developer PATCH: %d %s, want 403", rec.Code, rec.Body)
	}

	app := e.startedApp("grouped")
	e.ok(e.doJSON("PATCH", "/v3/apps/"+app.GUID+"/environment_variables", map[string]any{"var": map[string]any{"SHARED": "app"}}), http.StatusOK)
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/actions/restart", "", nil), http.StatusOK)
	lrp, err := e.rt.board.DesiredLRP(t.Context(), app.GUID)
	if err != nil {
		t.Fatalf("desired LRP: %v", err)
	}
	if env := envOf(lrp.Env); env["R"] != "group" || env["SHARED"] != "app" || env["S"] != "" {
		t.Errorf("instance env = %v, want R from the running group under SHARED=app", env)
	}

	e.ok(e.doJSON("POST", "/v3/apps/"+app.GUID+"/tasks", map[string]any{"command": "env"}), http.StatusAccepted)
	var task, staging *pando.Task
	pkg := e.ok(e.doJSON("POST", "/v3/packages", map[string]any{"type": "bits", "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app.GUID}}}}), http.StatusCreated)["guid"].(string)
	ct, body := ptMultipart(t, "bits", "app.zip", ptZip(t, map[string]string{"index.html": "hi"}))
	e.ok(e.do("POST", "/v3/packages/"+pkg+"/upload", ct, body), http.StatusOK)
	e.ok(e.doJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}}), http.StatusCreated)
	// The task and the staging the BBS was asked to run.
	tasks := e.rt.waitTasks(t, 2)
	for i := range tasks {
		switch tasks[i].Kind {
		case pando.TaskRun:
			task = &tasks[i]
		case pando.TaskStaging:
			staging = &tasks[i]
		}
	}
	if task == nil || staging == nil {
		t.Fatalf("task %v, staging %v", task, staging)
	}
	if env := envOf(task.Run.Env); env["R"] != "group" || env["SHARED"] != "app" {
		t.Errorf("task env = %v", env)
	}
	if env := envOf(staging.Staging.Env); env["S"] != "group" || env["SHARED"] != "app" || env["R"] != "" {
		t.Errorf("staging env = %v, want S from the staging group under SHARED=app", env)
	}

	// cf env shows both groups.
	got := e.ok(e.do("GET", "/v3/apps/"+app.GUID+"/env", "", nil), http.StatusOK)
	if r := got["running_env_json"].(map[string]any); r["R"] != "group" || len(r) != 2 {
		t.Errorf("running_env_json = %v", r)
	}
	if s := got["staging_env_json"].(map[string]any); s["S"] != "group" || !strings.Contains(s["SHARED"].(string), "staging") {
		t.Errorf("staging_env_json = %v", s)
	}
}
