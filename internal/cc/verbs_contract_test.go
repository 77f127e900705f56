package cc

// Contract tests for the cf CLI's everyday verbs of shared/cf-traces
// 38-42 (terminate-task, restart-app-instance, feature flags, environment
// variable groups): each replays the CLI's requests in order, with its
// headers and bodies, and checks what the CLI reads.

import (
	"net/http"
	"slices"
	"testing"

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
