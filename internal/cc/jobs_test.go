package cc

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
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

// Finished jobs older than CF's 90 days go when a job is recorded (at
// most hourly); one still processing stays.
func TestJobs_finishedOnesOlderThan90DaysArePruned(t *testing.T) {
	e := tnNew(t)
	ctx := t.Context()
	long := time.Now().Add(-91 * 24 * time.Hour)
	for _, j := range []pando.Job{
		{GUID: "old-done", Operation: "space.delete", State: pando.JobComplete, CreatedAt: long, UpdatedAt: long},
		{GUID: "old-busy", Operation: "space.delete", State: pando.JobProcessing, CreatedAt: long, UpdatedAt: long},
		{GUID: "young-done", Operation: "space.delete", State: pando.JobFailed, CreatedAt: time.Now().Add(-89 * 24 * time.Hour), UpdatedAt: long},
	} {
		if err := e.store.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	sp := e.post("/v3/spaces", `{"name":"doomed","relationships":{"organization":{"data":{"guid":"`+e.space().OrgGUID+`"}}}}`)
	if job := e.job(e.do("DELETE", "/v3/spaces/"+sp["guid"].(string), "", nil)); job["state"] != "COMPLETE" {
		t.Fatalf("delete space: %v", job)
	}
	for guid, want := range map[string]bool{"old-done": false, "old-busy": true, "young-done": true} {
		_, err := e.store.GetJob(ctx, guid)
		if got := err == nil; got != want {
			t.Errorf("job %s kept %v, want %v (%v)", guid, got, want, err)
		}
	}
}
