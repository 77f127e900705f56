package cc

import (
	"net/http"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// stagingEnvOf stages a new bits package of app and returns the staging
// request's environment.
func (e *ptEnv) stagingEnvOf(app pando.App) map[string]string {
	e.t.Helper()
	pkg := e.ok(e.doJSON("POST", "/v3/packages", map[string]any{"type": "bits", "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app.GUID}}}}), http.StatusCreated)["guid"].(string)
	ct, body := ptMultipart(e.t, "bits", "app.zip", ptZip(e.t, map[string]string{"app.py": "print('hi')"}))
	e.ok(e.do("POST", "/v3/packages/"+pkg+"/upload", ct, body), http.StatusOK)
	build := e.ok(e.doJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}}), http.StatusCreated)["guid"].(string)
	// The staging the BBS was asked to run.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		for _, tk := range e.rt.stagingTasks() {
			if tk.Kind == pando.TaskStaging && tk.Staging.BuildGUID == build {
				return envOf(tk.Staging.Env)
			}
		}
	}
	e.t.Fatalf("no staging task for build %s", build)
	return nil
}

// TestStaging_getsTheWebProcessCommandGivenWithPushC: buildpacks that
// cannot guess a start command (python_buildpack) learn whether the user
// gave one.
func TestStaging_getsTheWebProcessCommandGivenWithPushC(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("py")
	if env := e.stagingEnvOf(app); env["PANDO_START_COMMAND"] != "" {
		t.Fatalf("PANDO_START_COMMAND = %q without a command", env["PANDO_START_COMMAND"])
	}
	e.ok(e.doJSON("PATCH", "/v3/processes/"+app.GUID, map[string]any{"command": "python app.py"}), http.StatusOK)
	if env := e.stagingEnvOf(app); env["PANDO_START_COMMAND"] != "python app.py" {
		t.Fatalf("PANDO_START_COMMAND = %q, want the web process's command", env["PANDO_START_COMMAND"])
	}
}
