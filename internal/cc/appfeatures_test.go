package cc

import (
	"net/http"
	"testing"

	"github.com/pandoplatform/pando"
)

// TestAppFeatures_fileBindingsEnabledByDeveloperReachLRPAtRestart: a space
// developer enables service-binding-k8s (cf curl -X PATCH
// /v3/apps/:guid/features/service-binding-k8s), an auditor reads but
// cannot change it, the two file features exclude each other, and the
// LRP asks the cell for the files from the next start.
func TestAppFeatures_fileBindingsEnabledByDeveloperReachLRPAtRestart(t *testing.T) {
	e, app := svNew(t)
	base := "/v3/apps/" + app.GUID + "/features"

	list := ptResources(decodeBody(t, e.doAs(svAud, "GET", base, ""), http.StatusOK))
	got := map[string]any{}
	for _, f := range list {
		got[f["name"].(string)] = f["enabled"]
	}
	for _, name := range []string{"ssh", pando.AppFeatureServiceBindingK8s, pando.AppFeatureFileVCAPServices} {
		if got[name] != false {
			t.Errorf("feature %s: enabled=%v, want listed and false (list %v)", name, got[name], list)
		}
	}

	decodeBody(t, e.doAs(svAud, "PATCH", base+"/service-binding-k8s", `{"enabled":true}`), http.StatusForbidden)
	decodeBody(t, e.doAs(svDev, "PATCH", base+"/nope", `{"enabled":true}`), http.StatusNotFound)
	decodeBody(t, e.doAs(svDev, "PATCH", base+"/service-binding-k8s", `{}`), http.StatusUnprocessableEntity)
	decodeBody(t, e.doAs(svDev, "PATCH", base+"/ssh", `{"enabled":true}`), http.StatusUnprocessableEntity)
	f := decodeBody(t, e.doAs(svDev, "PATCH", base+"/service-binding-k8s", `{"enabled":true}`), http.StatusOK)
	if f["name"] != pando.AppFeatureServiceBindingK8s || f["enabled"] != true {
		t.Fatalf("PATCH answered %v", f)
	}
	f = decodeBody(t, e.doAs(svAud, "GET", base+"/service-binding-k8s", ""), http.StatusOK)
	if f["enabled"] != true {
		t.Fatalf("GET after enable answered %v", f)
	}
	conflict := decodeBody(t, e.doAs(svDev, "PATCH", base+"/file-based-vcap-services", `{"enabled":true}`), http.StatusUnprocessableEntity)
	if conflict["errors"] == nil {
		t.Fatalf("enabling both answered %v", conflict)
	}

	// Not before the next start, even when something else re-desires it.
	decodeBody(t, e.doAs(svDev, "POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", `{"instances":2}`), http.StatusAccepted)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.Instances != 2 || lrp.BindingFiles != "" {
		t.Fatalf("before a restart: LRP instances=%d BindingFiles=%q, want 2 and none", lrp.Instances, lrp.BindingFiles)
	}
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/actions/restart", "", nil), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.BindingFiles != pando.AppFeatureServiceBindingK8s {
		t.Fatalf("LRP BindingFiles=%q after restart, want %q", lrp.BindingFiles, pando.AppFeatureServiceBindingK8s)
	}

	decodeBody(t, e.doAs(svDev, "PATCH", base+"/service-binding-k8s", `{"enabled":false}`), http.StatusOK)
	decodeBody(t, e.doAs(svDev, "PATCH", base+"/file-based-vcap-services", `{"enabled":true}`), http.StatusOK)
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/actions/restart", "", nil), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.BindingFiles != pando.AppFeatureFileVCAPServices {
		t.Fatalf("LRP BindingFiles=%q after restart, want %q", lrp.BindingFiles, pando.AppFeatureFileVCAPServices)
	}
}
