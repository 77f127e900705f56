package cc

// Tests of CF tasks (cf run-task, cf tasks, cf terminate-task) against the
// real API over HTTP with the contract tests' environment; the runtime is
// the real BBS and a simulated cell, wrapped by tkRuntime for run tasks.
// Helpers here are prefixed tk.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// tkRuntime wraps the contract runtime for run tasks: it records them and
// their cancels, can refuse them, and answers Task(guid) as the BBS does.
type tkRuntime struct {
	pando.Runtime

	mu sync.Mutex
	// startRunning makes a desired task RUNNING at once (a cell took it);
	// else it stays PENDING.
	startRunning bool
	refuse       error
	runs         []pando.Task
	state        map[string]string
	cancelled    []string
}

func (r *tkRuntime) DesireTask(ctx context.Context, t pando.Task) error {
	if t.Kind != pando.TaskRun {
		return r.Runtime.DesireTask(ctx, t)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse != nil {
		return r.refuse
	}
	r.runs = append(r.runs, t)
	r.state[t.GUID] = pando.TaskPending
	if r.startRunning {
		r.state[t.GUID] = pando.TaskRunning
	}
	return nil
}

func (r *tkRuntime) CancelTask(ctx context.Context, guid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.state[guid]; !ok {
		return pando.Errorf(pando.ENotFound, "task %s not found", guid)
	}
	r.cancelled = append(r.cancelled, guid)
	r.state[guid] = pando.TaskCompleted
	return nil
}

func (r *tkRuntime) Task(_ context.Context, guid string) (pando.Task, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.state[guid]
	if !ok {
		return pando.Task{}, pando.Errorf(pando.ENotFound, "task %s not found", guid)
	}
	return pando.Task{GUID: guid, Kind: pando.TaskRun, State: st}, nil
}

func (r *tkRuntime) run(tb testing.TB, guid string) pando.Task {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.runs {
		if t.GUID == guid {
			return t
		}
	}
	tb.Fatalf("task %s was not desired (runs: %d)", guid, len(r.runs))
	return pando.Task{}
}

func (r *tkRuntime) cancels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cancelled)
}

// forget makes the runtime lose a task, as after a crash.
func (r *tkRuntime) forget(guid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.state, guid)
}

func tkNew(t *testing.T, startRunning bool) (*ctEnv, *tkRuntime) {
	t.Helper()
	tk := &tkRuntime{state: map[string]string{}, startRunning: startRunning}
	e := ctNew(t, ctOpts{mod: func(c *Config) { tk.Runtime, c.Runtime = c.Runtime, tk }})
	return e, tk
}

// tkStagedApp creates an app with a staged current droplet, without the
// whole push.
func (e *ctEnv) tkStagedApp(name string) ctApp {
	e.t.Helper()
	ctx := context.Background()
	app, err := e.api.createApp(ctx, Identity{UserGUID: "user-guid", UserName: "admin"}, appCreate{Name: name, SpaceGUID: e.spaceGUID()})
	if err != nil {
		e.t.Fatalf("create app: %v", err)
	}
	d := pando.Droplet{GUID: "droplet-" + app.GUID, AppGUID: app.GUID, State: pando.DropletStaged, LifecycleType: pando.LifecycleBuildpack,
		ProcessTypes: map[string]string{"web": "./run"}, Stack: "host", SHA256: "abc123"}
	if err := e.store.CreateDroplet(ctx, d); err != nil {
		e.t.Fatalf("create droplet: %v", err)
	}
	app.DropletGUID = d.GUID
	if err := e.store.UpdateApp(ctx, app); err != nil {
		e.t.Fatalf("assign droplet: %v", err)
	}
	return ctApp{Name: name, Space: app.SpaceGUID, GUID: app.GUID, Droplet: d.GUID}
}

// runTask is cf run-task's POST; it must answer 202 with the task.
func (e *ctEnv) runTask(appGUID string, body map[string]any) map[string]any {
	e.t.Helper()
	return e.expect(e.sendJSON("POST", "/v3/apps/"+appGUID+"/tasks", body), http.StatusAccepted)
}

func (e *ctEnv) task(guid string) map[string]any {
	e.t.Helper()
	return e.expect(e.get("/v3/tasks/"+guid), http.StatusOK)
}

func (e *ctEnv) complete(guid string, failed bool, reason string) {
	e.t.Helper()
	e.api.HandleTaskCompleted(context.Background(), pando.Task{GUID: guid, Kind: pando.TaskRun, State: pando.TaskCompleted, Failed: failed, FailureReason: reason})
}

func TestContract23And24_runTaskAndTasks(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, true)
	app := e.push("myapp")
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/environment_variables", map[string]any{"var": map[string]any{"GREETING": "hello"}}), http.StatusOK)
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"memory_in_mb": 512}), http.StatusAccepted)

	// 23: cf run-task myapp --command "echo hi" --name t1
	e.appsNamed("myapp", app.Space)
	task := e.runTask(app.GUID, map[string]any{"command": "echo hi", "name": "t1"})
	guid := ctStr(task, "guid")
	for path, want := range map[string]any{
		"name": "t1", "sequence_id": 1.0, "command": "echo hi", "state": pando.AppTaskRunning,
		"memory_in_mb": 512.0, "disk_in_mb": 1024.0, "log_rate_limit_in_bytes_per_second": float64(DefaultLogRateLimit),
		"droplet_guid": app.Droplet, "relationships.app.data.guid": app.GUID,
		"links.self.href": e.base + "/v3/tasks/" + guid, "links.app.href": e.base + "/v3/apps/" + app.GUID,
		"links.cancel.href": e.base + "/v3/tasks/" + guid + "/actions/cancel", "links.cancel.method": "POST",
		"links.droplet.href": e.base + "/v3/droplets/" + app.Droplet,
	} {
		if got := ctJ(task, path); got != want {
			t.Errorf("task %s = %v, want %v", path, got, want)
		}
	}
	if r, ok := task["result"].(map[string]any); !ok || r["failure_reason"] != nil {
		t.Errorf("result = %v, want failure_reason null", task["result"])
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if _, err := time.Parse(time.RFC3339, ctStr(task, k)); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}

	// What the runtime was asked to run.
	run := tk.run(t, guid)
	rr := run.Run
	if run.Kind != pando.TaskRun || rr == nil {
		t.Fatalf("desired task %+v is not a run task", run)
	}
	if rr.Name != "t1" || rr.Command != "echo hi" || rr.AppGUID != app.GUID || rr.AppName != "myapp" ||
		rr.SpaceName != SeedSpaceName || rr.OrgName == "" || rr.DropletKey != pando.DropletBlobKey(app.Droplet) ||
		rr.DropletSHA256 == "" || rr.MemoryMB != 512 || rr.DiskMB != 1024 || rr.LogRateLimitBytes != DefaultLogRateLimit {
		t.Errorf("run request = %+v", rr)
	}
	if len(rr.Env) < 2 || rr.Env[0].Name != "VCAP_APPLICATION" || !slices.Contains(rr.Env, pando.EnvVar{Name: "GREETING", Value: "hello"}) {
		t.Fatalf("env = %v, want VCAP_APPLICATION first and the app's variables", rr.Env)
	}
	var vcap map[string]any
	if err := json.Unmarshal([]byte(rr.Env[0].Value), &vcap); err != nil {
		t.Fatalf("VCAP_APPLICATION: %v", err)
	}
	if vcap["application_name"] != "myapp" || ctNum(vcap, "limits.mem") != 512 || ctNum(vcap, "limits.disk") != 1024 {
		t.Errorf("VCAP_APPLICATION = %v", vcap)
	}

	// A task without a name gets CF's 8 hex digits, and the next id.
	second := e.runTask(app.GUID, map[string]any{"command": "rake db:migrate", "memory_in_mb": 128, "disk_in_mb": 256})
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(ctStr(second, "name")) || ctNum(second, "sequence_id") != 2 ||
		ctNum(second, "memory_in_mb") != 128 || ctNum(second, "disk_in_mb") != 256 {
		t.Errorf("second task = %v", second)
	}

	// 24: cf tasks myapp
	e.appsNamed("myapp", app.Space)
	list := e.list(e.get("/v3/apps/" + app.GUID + "/tasks?per_page=5000"))
	if len(list) != 2 {
		t.Fatalf("tasks = %v", list)
	}
	if ctNum(list[0], "sequence_id") != 1 || list[0]["name"] != "t1" || list[0]["state"] != pando.AppTaskRunning ||
		list[0]["command"] != "echo hi" || ctStr(list[0], "created_at") == "" {
		t.Errorf("tasks[0] = %v", list[0])
	}

	// The task ends: SUCCEEDED, or FAILED with the cell's reason.
	e.complete(guid, false, "")
	if got := e.task(guid); got["state"] != pando.AppTaskSucceeded || ctJ(got, "result.failure_reason") != nil {
		t.Errorf("after success: %v", got)
	}
	reason := "APP/TASK/" + ctStr(second, "name") + " Exited with status 3"
	e.complete(ctStr(second, "guid"), true, reason)
	if got := e.task(ctStr(second, "guid")); got["state"] != pando.AppTaskFailed || ctJ(got, "result.failure_reason") != reason {
		t.Errorf("after failure: %v", got)
	}

	events := e.list(e.get("/v3/audit_events?types=audit.app.task.create&target_guids=" + app.GUID))
	if len(events) != 2 || ctStr(events[0], "data.task_guid") != guid || ctStr(events[0], "data.request.name") != "t1" {
		t.Errorf("task create events = %v", events)
	}
	if strings.Contains(string(must(json.Marshal(events))), "echo hi") {
		t.Errorf("an audit event shows the task's command")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTasks_pendingUntilTheRuntimeRunsIt(t *testing.T) {
	t.Parallel()
	e, _ := tkNew(t, false)
	app := e.tkStagedApp("worker")
	task := e.runTask(app.GUID, map[string]any{"command": "sleep 1"})
	guid := ctStr(task, "guid")
	if task["state"] != pando.AppTaskPending {
		t.Fatalf("state = %v, want PENDING until a cell runs it", task["state"])
	}
	// Limits default to the web process's.
	if ctNum(task, "memory_in_mb") != 256 || ctNum(task, "disk_in_mb") != 1024 {
		t.Errorf("limits = %v/%v, want the web process's 256/1024", task["memory_in_mb"], task["disk_in_mb"])
	}
	ctx := context.Background()
	// Events of other kinds and states change nothing.
	e.api.HandleTaskChanged(ctx, pando.Task{GUID: guid, Kind: pando.TaskStaging, State: pando.TaskRunning})
	e.api.HandleTaskChanged(ctx, pando.Task{GUID: guid, Kind: pando.TaskRun, State: pando.TaskPending})
	if got := e.task(guid); got["state"] != pando.AppTaskPending {
		t.Fatalf("state = %v after unrelated events", got["state"])
	}
	e.api.HandleTaskChanged(ctx, pando.Task{GUID: guid, Kind: pando.TaskRun, State: pando.TaskRunning})
	if got := e.task(guid); got["state"] != pando.AppTaskRunning {
		t.Fatalf("state = %v after the runtime ran it, want RUNNING", got["state"])
	}
	e.complete(guid, true, "APP/TASK/x Exited with status 1")
	// A late RUNNING event and a second completion change nothing.
	e.api.HandleTaskChanged(ctx, pando.Task{GUID: guid, Kind: pando.TaskRun, State: pando.TaskRunning})
	e.complete(guid, false, "")
	if got := e.task(guid); got["state"] != pando.AppTaskFailed || ctJ(got, "result.failure_reason") != "APP/TASK/x Exited with status 1" {
		t.Errorf("task = %v, want the first completion kept", got)
	}
	// Unknown tasks are ignored.
	e.api.HandleTaskChanged(ctx, pando.Task{GUID: "nope", Kind: pando.TaskRun, State: pando.TaskRunning})
	e.complete("nope", false, "")
}

func TestTasks_createIsValidated(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, true)
	app := e.tkStagedApp("worker")
	other := e.tkStagedApp("other")
	bare := e.expect(e.sendJSON("POST", "/v3/apps", map[string]any{"name": "bare", "relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": app.Space}}}}), http.StatusCreated)

	ctx := context.Background()
	failed := pando.Droplet{GUID: "failed-droplet", AppGUID: app.GUID, State: pando.DropletFailed, LifecycleType: pando.LifecycleBuildpack}
	if err := e.store.CreateDroplet(ctx, failed); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		app    string
		body   string
		status int
		detail string
	}{
		{"no droplet", ctStr(bare, "guid"), `{"command":"echo hi"}`, 422, "Task must have a droplet. Assign current droplet to app."},
		{"no command", app.GUID, `{"name":"t1"}`, 422, "Command must be provided"},
		{"blank command", app.GUID, `{"command":"  "}`, 422, "Command must be provided"},
		{"template", app.GUID, `{"template":{"process":{"guid":"x"}}}`, 422, ""},
		{"long command", app.GUID, `{"command":"` + strings.Repeat("x", maxTaskCommandLen+1) + `"}`, 422, ""},
		{"empty name", app.GUID, `{"command":"x","name":""}`, 422, "Name must not be empty"},
		{"long name", app.GUID, `{"command":"x","name":"` + strings.Repeat("n", 256) + `"}`, 422, ""},
		{"control name", app.GUID, `{"command":"x","name":"a\nb"}`, 422, ""},
		{"zero memory", app.GUID, `{"command":"x","memory_in_mb":0}`, 422, ""},
		{"huge disk", app.GUID, `{"command":"x","disk_in_mb":1000000}`, 422, ""},
		{"memory string", app.GUID, `{"command":"x","memory_in_mb":"1G"}`, 400, ""},
		{"unknown droplet", app.GUID, `{"command":"x","droplet_guid":"nope"}`, 422, ""},
		{"droplet of another app", app.GUID, `{"command":"x","droplet_guid":"` + other.Droplet + `"}`, 422, ""},
		{"failed droplet", app.GUID, `{"command":"x","droplet_guid":"failed-droplet"}`, 422, ""},
		{"not json", app.GUID, `{"command":`, 400, ""},
		{"unknown app", "nope", `{"command":"x"}`, 404, "App not found"},
	} {
		r := e.send("POST", "/v3/apps/"+tc.app+"/tasks", "application/json", []byte(tc.body))
		if r.Status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.Status, tc.status, r.Body)
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		first, err := ctFirstCFError(body)
		if err != nil {
			t.Errorf("%s: %v in %s", tc.name, err, r.Body)
			continue
		}
		if tc.detail != "" && first["detail"] != tc.detail {
			t.Errorf("%s: detail %q, want %q", tc.name, first["detail"], tc.detail)
		}
	}
	tk.mu.Lock()
	runs := len(tk.runs)
	tk.mu.Unlock()
	if runs != 0 {
		t.Errorf("refused requests desired %d tasks", runs)
	}
	if all := e.list(e.get("/v3/tasks")); len(all) != 0 {
		t.Errorf("refused requests created tasks: %v", all)
	}
	// A named droplet of the app is used instead of the current one.
	d2 := pando.Droplet{GUID: "older-droplet", AppGUID: app.GUID, State: pando.DropletStaged, LifecycleType: pando.LifecycleBuildpack, Stack: "host"}
	if err := e.store.CreateDroplet(ctx, d2); err != nil {
		t.Fatal(err)
	}
	task := e.runTask(app.GUID, map[string]any{"command": "x", "droplet_guid": d2.GUID})
	if task["droplet_guid"] != d2.GUID || tk.run(t, ctStr(task, "guid")).Run.DropletKey != pando.DropletBlobKey(d2.GUID) {
		t.Errorf("task with droplet_guid = %v", task)
	}
}

func TestTasks_cancel(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, true)
	app := e.tkStagedApp("worker")
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "sleep 100", "name": "long"}), "guid")

	// cf terminate-task worker 1: find by sequence id, then cancel.
	found := e.list(e.get("/v3/apps/" + app.GUID + "/tasks?sequence_ids=1"))
	if len(found) != 1 || ctStr(found[0], "guid") != guid {
		t.Fatalf("task by sequence id = %v", found)
	}
	c := e.expect(e.action("/v3/tasks/"+guid+"/actions/cancel"), http.StatusAccepted)
	if c["state"] != pando.AppTaskCanceling || c["guid"] != guid {
		t.Errorf("cancel answered %v, want CANCELING", c)
	}
	if got := tk.cancels(); !slices.Equal(got, []string{guid}) {
		t.Errorf("runtime cancels = %v", got)
	}
	// Cancelling again asks the runtime again and stays CANCELING.
	e.expect(e.action("/v3/tasks/"+guid+"/actions/cancel"), http.StatusAccepted)
	// The runtime reports the end.
	e.complete(guid, true, TaskCancelledReason)
	if got := e.task(guid); got["state"] != pando.AppTaskFailed || ctJ(got, "result.failure_reason") != TaskCancelledReason {
		t.Errorf("cancelled task = %v", got)
	}
	e.expectCFError(e.action("/v3/tasks/"+guid+"/actions/cancel"), 422, "CF-UnprocessableEntity", "Task state is FAILED and therefore cannot be canceled")

	done := ctStr(e.runTask(app.GUID, map[string]any{"command": "true"}), "guid")
	e.complete(done, false, "")
	e.expectCFError(e.action("/v3/tasks/"+done+"/actions/cancel"), 422, "", "Task state is SUCCEEDED and therefore cannot be canceled")
	e.expectCFError(e.action("/v3/tasks/nope/actions/cancel"), 404, "", "Task not found")
	e.expectCFError(e.get("/v3/tasks/nope"), 404, "CF-ResourceNotFound", "Task not found")

	// A task the runtime lost ends at once.
	lost := ctStr(e.runTask(app.GUID, map[string]any{"command": "sleep 100"}), "guid")
	tk.forget(lost)
	if c := e.expect(e.action("/v3/tasks/"+lost+"/actions/cancel"), http.StatusAccepted); c["state"] != pando.AppTaskFailed || ctJ(c, "result.failure_reason") != TaskCancelledReason {
		t.Errorf("cancel of a lost task = %v", c)
	}

	events := e.list(e.get("/v3/audit_events?types=audit.app.task.cancel&target_guids=" + app.GUID))
	if len(events) != 2 || ctStr(events[0], "data.task_guid") != guid || ctStr(events[0], "actor.name") != "admin" {
		t.Errorf("cancel events = %v", events)
	}
}

func TestTasks_placementFailureFailsTheTask(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, false)
	app := e.tkStagedApp("worker")

	// The BBS reports a task that fits on no cell as a completion.
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "x", "memory_in_mb": 60000}), "guid")
	e.complete(guid, true, "insufficient resources: memory")
	if got := e.task(guid); got["state"] != pando.AppTaskFailed || ctJ(got, "result.failure_reason") != "insufficient resources: memory" {
		t.Errorf("unplaced task = %v", got)
	}

	// A runtime that refuses the task outright.
	tk.mu.Lock()
	tk.refuse = errors.New("no cells registered")
	tk.mu.Unlock()
	task := e.runTask(app.GUID, map[string]any{"command": "x"})
	if task["state"] != pando.AppTaskFailed || !strings.Contains(ctStr(task, "result.failure_reason"), "no cells registered") {
		t.Errorf("refused task = %v", task)
	}
}

func TestTasks_listFilters(t *testing.T) {
	t.Parallel()
	e, _ := tkNew(t, true)
	a := e.tkStagedApp("a")
	b := e.tkStagedApp("b")
	var guids []string
	for _, n := range []string{"x", "y", "x"} {
		guids = append(guids, ctStr(e.runTask(a.GUID, map[string]any{"command": "c", "name": n}), "guid"))
	}
	other := ctStr(e.runTask(b.GUID, map[string]any{"command": "c", "name": "x"}), "guid")
	e.complete(guids[1], false, "")

	names := func(r ctResp) []string {
		var out []string
		for _, t := range e.list(r) {
			out = append(out, ctStr(t, "guid"))
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"/v3/tasks", []string{guids[0], guids[1], guids[2], other}},
		{"/v3/tasks?app_guids=" + a.GUID, guids},
		{"/v3/tasks?names=x", []string{guids[0], guids[2], other}},
		{"/v3/tasks?names=x&app_guids=" + b.GUID, []string{other}},
		{"/v3/tasks?states=SUCCEEDED", []string{guids[1]}},
		{"/v3/tasks?states=RUNNING,SUCCEEDED&app_guids=" + a.GUID, guids},
		{"/v3/tasks?guids=" + other + "," + guids[0], []string{guids[0], other}},
		{"/v3/tasks?space_guids=" + a.Space, []string{guids[0], guids[1], guids[2], other}},
		{"/v3/tasks?space_guids=nope", nil},
		{"/v3/tasks?organization_guids=nope", nil},
		{"/v3/tasks?order_by=-created_at&app_guids=" + a.GUID, []string{guids[2], guids[1], guids[0]}},
		{"/v3/apps/" + a.GUID + "/tasks?sequence_ids=2", []string{guids[1]}},
		{"/v3/apps/" + a.GUID + "/tasks?sequence_ids=1,3&states=RUNNING", []string{guids[0], guids[2]}},
		{"/v3/apps/" + b.GUID + "/tasks", []string{other}},
		{"/v3/apps/" + a.GUID + "/tasks?names=y", []string{guids[1]}},
	} {
		if got := names(e.get(tc.query)); !slices.Equal(got, tc.want) {
			t.Errorf("GET %s = %v, want %v", tc.query, got, tc.want)
		}
	}
	e.expectCFError(e.get("/v3/tasks?states=DONE"), 400, "CF-BadQueryParameter", "")
	e.expectCFError(e.get("/v3/apps/"+a.GUID+"/tasks?sequence_ids=one"), 400, "CF-BadQueryParameter", "")
	e.expectCFError(e.get("/v3/apps/nope/tasks"), 404, "", "App not found")

	// Pages link absolutely to the next one.
	page := e.expect(e.get("/v3/apps/"+a.GUID+"/tasks?per_page=2"), http.StatusOK)
	next := ctStr(page, "pagination.next.href")
	if ctNum(page, "pagination.total_results") != 3 || !strings.HasPrefix(next, e.base+"/v3/apps/"+a.GUID+"/tasks?") {
		t.Fatalf("pagination = %v", page["pagination"])
	}
	if got := names(e.get(next)); !slices.Equal(got, guids[2:]) {
		t.Errorf("page 2 = %v", got)
	}
}

func TestTasks_deletingTheAppCancelsItsTasks(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, true)
	app := e.tkStagedApp("worker")
	running := ctStr(e.runTask(app.GUID, map[string]any{"command": "sleep 100"}), "guid")
	done := ctStr(e.runTask(app.GUID, map[string]any{"command": "true"}), "guid")
	e.complete(done, false, "")

	e.completeJob(e.send("DELETE", "/v3/apps/"+app.GUID, "application/json", nil))
	if got := tk.cancels(); !slices.Equal(got, []string{running}) {
		t.Errorf("runtime cancels = %v, want only the running task", got)
	}
	e.expectCFError(e.get("/v3/tasks/"+running), 404, "", "Task not found")
	// The runtime's report of the cancelled task finds nothing to update.
	e.complete(running, true, TaskCancelledReason)
	if all := e.list(e.get("/v3/tasks")); len(all) != 0 {
		t.Errorf("tasks after delete = %v", all)
	}
}

func TestTasks_restoreFailsUnfinishedTasks(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, false)
	app := e.tkStagedApp("worker")
	ctx := context.Background()
	task := func() string { return ctStr(e.runTask(app.GUID, map[string]any{"command": "x"}), "guid") }
	pending, running, canceling, succeeded, adopted := task(), task(), task(), task(), task()
	for _, g := range []string{running, adopted} {
		e.api.HandleTaskChanged(ctx, pando.Task{GUID: g, Kind: pando.TaskRun, State: pando.TaskRunning})
	}
	e.expect(e.action("/v3/tasks/"+canceling+"/actions/cancel"), http.StatusAccepted)
	e.complete(succeeded, false, "")

	inFlight, err := e.api.InFlight(ctx)
	if err != nil {
		t.Fatalf("InFlight: %v", err)
	}
	slices.Sort(inFlight)
	want := []string{pending, running, canceling, adopted}
	slices.Sort(want)
	if !slices.Equal(inFlight, want) {
		t.Errorf("InFlight = %v, want %v", inFlight, want)
	}
	// The server restarts: the runtime holds only what a cell claimed.
	tk.mu.Lock()
	tk.state = map[string]string{adopted: pando.TaskRunning}
	tk.mu.Unlock()
	if err := e.api.Restore(ctx); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	for guid, want := range map[string][2]any{
		pending:   {pando.AppTaskFailed, TaskInterruptedReason},
		running:   {pando.AppTaskFailed, TaskInterruptedReason},
		canceling: {pando.AppTaskFailed, TaskCancelledReason},
		succeeded: {pando.AppTaskSucceeded, nil},
		adopted:   {pando.AppTaskRunning, nil},
	} {
		if got := e.task(guid); got["state"] != want[0] || ctJ(got, "result.failure_reason") != want[1] {
			t.Errorf("task %s after restore = %v %v, want %v", guid, got["state"], ctJ(got, "result.failure_reason"), want)
		}
	}
}

func TestTasks_waitAnswersWhenTheTaskEnds(t *testing.T) {
	t.Parallel()
	e, _ := tkNew(t, true)
	app := e.tkStagedApp("worker")
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "x"}), "guid")

	// Without wait it answers at once.
	if got := e.expect(e.get("/pando/v1/tasks/"+guid), http.StatusOK); got["state"] != pando.AppTaskRunning {
		t.Fatalf("state = %v", got["state"])
	}
	type result struct {
		resp ctResp
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r := e.get("/pando/v1/tasks/" + guid + "?wait=20s")
		done <- result{r, time.Since(start)}
	}()
	// Finish the task once the long poll waits for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.api.mu.Lock()
		_, waiting := e.api.taskWaiters[guid]
		e.api.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long poll never waited for the task")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.complete(guid, true, "APP/TASK/x Exited with status 2")
	res := <-done
	got := e.expect(res.resp, http.StatusOK)
	if got["state"] != pando.AppTaskFailed || ctJ(got, "result.failure_reason") != "APP/TASK/x Exited with status 2" {
		t.Errorf("long poll answered %v", got)
	}
	if res.took > 10*time.Second {
		t.Errorf("long poll took %v: it was not woken by the end", res.took)
	}
	// A finished task answers at once even with wait.
	if got := e.expect(e.get("/pando/v1/tasks/"+guid+"?wait=20s"), http.StatusOK); got["state"] != pando.AppTaskFailed {
		t.Errorf("state = %v", got["state"])
	}
	e.expectCFError(e.get("/pando/v1/tasks/nope?wait=1s"), 404, "", "Task not found")
}

func TestTasks_finishedOnesBeyondTheNewestHundredArePruned(t *testing.T) {
	t.Parallel()
	e, _ := tkNew(t, false)
	app := e.tkStagedApp("busy")
	var guids []string
	for i := 0; i < keepFinishedTasks+2; i++ {
		task := e.runTask(app.GUID, map[string]any{"command": "true"})
		guid := ctStr(task, "guid")
		guids = append(guids, guid)
		e.complete(guid, false, "")
	}
	ctx := context.Background()
	left, err := e.store.ListAppTasks(ctx, []string{app.GUID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != keepFinishedTasks {
		t.Fatalf("tasks kept = %d, want %d", len(left), keepFinishedTasks)
	}
	for _, gone := range guids[:2] {
		if _, err := e.store.GetAppTask(ctx, gone); !pando.IsNotFound(err) {
			t.Errorf("oldest task %s kept (err %v)", gone, err)
		}
	}
	if left[len(left)-1].GUID != guids[len(guids)-1] {
		t.Errorf("newest task pruned")
	}
}

// A task gets the service binding files the app asks for now (as it gets
// the app's bindings now), not only after a restart as instances do.
func TestTasks_getTheAppsBindingFilesFeature(t *testing.T) {
	t.Parallel()
	e, tk := tkNew(t, true)
	app := e.tkStagedApp("worker")
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "x"}), "guid")
	if got := tk.run(t, guid).Run.BindingFiles; got != "" {
		t.Errorf("without the feature the task has BindingFiles=%q, want none", got)
	}
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/features/"+pando.AppFeatureServiceBindingK8s, map[string]any{"enabled": true}), http.StatusOK)
	guid = ctStr(e.runTask(app.GUID, map[string]any{"command": "x"}), "guid")
	if got := tk.run(t, guid).Run.BindingFiles; got != pando.AppFeatureServiceBindingK8s {
		t.Errorf("the task has BindingFiles=%q, want %q", got, pando.AppFeatureServiceBindingK8s)
	}
}
