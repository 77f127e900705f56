package cc

import (
	"net/http"
	"strings"
	"testing"
)

// TestJobs_readByTheirUserAndAdmins: a job names the resource it worked on
// (its links carry the GUID), so another org's user who learns a job's URL
// gets the 404 of a job that does not exist; its user and admins read it.
func TestJobs_readByTheirUserAndAdmins(t *testing.T) {
	e := tnNew(t)
	f := e.tnFixture()
	rec := e.doAs("bearer user:dev", "DELETE", "/v3/apps/"+f.app, "")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("dev deletes an app: %d %s", rec.Code, rec.Body.String())
	}
	path := strings.TrimPrefix(rec.Header().Get("Location"), ptBase)
	job := e.ok(e.doAs("bearer user:dev", "GET", path, ""), http.StatusOK)
	if app, _ := job["links"].(map[string]any)["app"].(map[string]any); job["state"] != "COMPLETE" || app["href"] != ptBase+"/v3/apps/"+f.app {
		t.Errorf("the user's job: %v", job)
	}
	e.ok(e.doAs("bearer test", "GET", path, ""), http.StatusOK)
	for _, who := range []string{"other", "aud", "mgr"} {
		err := e.cfErr(e.doAs("bearer user:"+who, "GET", path, ""), http.StatusNotFound)
		if err["title"] != "CF-ResourceNotFound" || err["detail"] != "Job not found" {
			t.Errorf("%s reads dev's job: %v", who, err)
		}
		if strings.Contains(e.doAs("bearer user:"+who, "GET", path, "").Body.String(), f.app) {
			t.Errorf("%s's answer names the app", who)
		}
	}
}
