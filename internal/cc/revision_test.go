package cc

import (
	"context"
	"net/http"
	"testing"
)

// A revision keeps the droplet and env it started with until the app
// restarts, even when the server (and so the in-memory runtime) restarts.
func TestRevision_envChangesWaitForARestartEvenAcrossAServerRestart(t *testing.T) {
	e := ctNew(t, ctOpts{})
	ctx := context.Background()
	app := e.push("pinned")
	envOf := func() map[string]string {
		t.Helper()
		lrp, ok := e.rt.desiredLRP(app.GUID)
		if !ok {
			t.Fatal("no desired LRP")
		}
		m := map[string]string{}
		for _, v := range lrp.Env {
			m[v.Name] = v.Value
		}
		return m
	}
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/environment_variables", map[string]any{"var": map[string]any{"LATER": "yes"}}), http.StatusOK)
	if _, ok := envOf()["LATER"]; ok {
		t.Fatal("a new env var reached the running revision without a restart")
	}

	// A server restart: a new BBS knows nothing and the API re-desires
	// from the CCDB.
	e = e.restarted()
	if _, ok := envOf()["LATER"]; ok {
		t.Fatal("a new env var reached the running revision through a server restart")
	}

	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	if envOf()["LATER"] != "yes" {
		t.Fatalf("after restart, env = %v, want LATER=yes", envOf())
	}
	stored, err := e.store.GetApp(ctx, app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.RunningDropletGUID == "" || stored.RunningDropletGUID != stored.DropletGUID {
		t.Errorf("running droplet %q, current %q", stored.RunningDropletGUID, stored.DropletGUID)
	}
}
