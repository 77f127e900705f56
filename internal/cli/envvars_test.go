package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEnvVars serves an app's user environment variables.
type fakeEnvVars struct {
	mu      sync.Mutex
	vars    map[string]string
	patches int
}

func (fe *fakeEnvVars) serve(f *fakeCF) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		fe.mu.Lock()
		defer fe.mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "GET /v3/apps/" + appGUID + "/env":
			f.writeJSON(w, 200, map[string]any{"environment_variables": fe.vars})
		case "PATCH /v3/apps/" + appGUID + "/environment_variables":
			fe.patches++
			var body struct {
				Var map[string]*string `json:"var"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				f.t.Errorf("PATCH env body: %v", err)
			}
			for k, v := range body.Var {
				if v == nil {
					delete(fe.vars, k)
				} else {
					fe.vars[k] = *v
				}
			}
			f.writeJSON(w, 200, map[string]any{"var": fe.vars})
		default:
			return false
		}
		return true
	}
}

// unset-env of a variable the app does not have says so, in cf's words,
// changes nothing and gives no restage tip; one it has is removed.
func TestUnsetEnv_saysWhenTheVariableWasNotSet(t *testing.T) {
	f := newFakeCF(t)
	f.appExists = true
	fe := &fakeEnvVars{vars: map[string]string{"GREETING": "hi"}}
	f.mu.Lock()
	f.extra = fe.serve(f)
	f.mu.Unlock()
	h := newHarness(t)
	h.loggedIn(f, time.Hour)

	out := h.mustRun("unset-env", "myapp", "NOPE")
	if !strings.Contains(out, "Env variable NOPE was not set.\nOK\n") || strings.Contains(out, "TIP") {
		t.Errorf("unset-env of an unset variable:\n%s", out)
	}
	fe.mu.Lock()
	if fe.patches != 0 {
		t.Errorf("%d PATCH requests for a variable that was not set", fe.patches)
	}
	fe.mu.Unlock()

	out = h.mustRun("unset-env", "myapp", "GREETING")
	if strings.Contains(out, "was not set") || !strings.Contains(out, "OK\n\nTIP: Use 'pando restage myapp'") {
		t.Errorf("unset-env of a set variable:\n%s", out)
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if _, still := fe.vars["GREETING"]; still || fe.patches != 1 {
		t.Errorf("after unset-env: vars %v, %d PATCH requests", fe.vars, fe.patches)
	}
}

// set-env on a docker app tips restart, not restage: its staging does not
// read the environment, and a restage would move it to wherever its tag
// points now.
func TestSetEnv_tipsRestartForADockerApp(t *testing.T) {
	for _, docker := range []bool{false, true} {
		f := newFakeCF(t)
		f.appExists, f.dockerApp = true, docker
		fe := &fakeEnvVars{vars: map[string]string{}}
		f.mu.Lock()
		f.extra = fe.serve(f)
		f.mu.Unlock()
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		out := h.mustRun("set-env", "myapp", "GREETING", "hola")
		restage := strings.Contains(out, "'pando restage myapp'")
		if restage == docker || !strings.Contains(out, "'pando restart myapp'") {
			t.Errorf("docker %v: set-env said:\n%s", docker, out)
		}
	}
}
