package cc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// viaRouter sends a request as the router's system routes hand it over:
// with the URLs its client used.
func (e *ptEnv) viaRouter(u ExternalURLs, method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequestWithContext(WithExternalURLs(e.t.Context(), u), method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "bearer test")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec
}

var routerURLs = ExternalURLs{
	API: "https://api.sys.test:8443", Login: "https://login.sys.test:8443",
	UAA: "https://uaa.sys.test:8443", LogCache: "https://log-cache.sys.test:8443",
	Router: "https://api.sys.test:8443",
}

func TestRoot_throughTheRouterAdvertisesTheSystemHosts(t *testing.T) {
	e := ptNew(t, nil)
	links := e.ok(e.viaRouter(routerURLs, "GET", "/", ""), http.StatusOK)["links"].(map[string]any)
	for k, want := range map[string]string{
		"self": routerURLs.API, "login": routerURLs.Login, "uaa": routerURLs.UAA, "log_cache": routerURLs.LogCache,
		"pando_router": routerURLs.Router,
	} {
		if got := links[k].(map[string]any)["href"]; got != want {
			t.Errorf("links.%s = %v, want %s", k, got, want)
		}
	}
	if got := links["cloud_controller_v3"].(map[string]any)["href"]; got != routerURLs.API+"/v3" {
		t.Errorf("cloud_controller_v3 = %v", got)
	}
	info := e.ok(e.viaRouter(routerURLs, "GET", "/v3/info", ""), http.StatusOK)
	if got := info["links"].(map[string]any)["self"].(map[string]any)["href"]; got != routerURLs.API+"/v3/info" {
		t.Errorf("/v3/info self = %v", got)
	}
}

func TestLinks_throughTheRouterPointWhereTheClientCameFrom(t *testing.T) {
	e := ptNew(t, nil)
	byIP := ExternalURLs{API: "https://127.0.0.1", Login: "https://127.0.0.1", UAA: "https://127.0.0.1", LogCache: "https://127.0.0.1"}

	// Pagination: the cf CLI follows next.href verbatim.
	rec := e.viaRouter(byIP, "GET", "/v3/buildpacks?per_page=1", "")
	body := rec.Body.String()
	page := e.ok(rec, http.StatusOK)
	next := page["pagination"].(map[string]any)["next"].(map[string]any)["href"].(string)
	if !strings.HasPrefix(next, "https://127.0.0.1/v3/buildpacks?") {
		t.Errorf("next.href = %s", next)
	}
	if strings.Contains(body, ptBase) {
		t.Errorf("a link still points at %s: %s", ptBase, body)
	}

	// A job's Location: the cf CLI polls it.
	bp := ptResources(page)[0]["guid"].(string)
	rec = e.viaRouter(byIP, "DELETE", "/v3/buildpacks/"+bp, "")
	if rec.Code != http.StatusAccepted || !strings.HasPrefix(rec.Header().Get("Location"), "https://127.0.0.1/v3/jobs/") {
		t.Errorf("DELETE buildpack: %d Location %q", rec.Code, rec.Header().Get("Location"))
	}

	// User data that merely contains the API's URL is not a link.
	app := e.startedApp("myapp")
	rec = e.viaRouter(byIP, "PATCH", "/v3/apps/"+app.GUID+"/environment_variables", `{"var":{"CALLBACK":"`+ptBase+`/v3/x","QUOTED":"\"href\":\"`+ptBase+`"}}`)
	vars := e.ok(rec, http.StatusOK)["var"].(map[string]any)
	if vars["CALLBACK"] != ptBase+"/v3/x" || vars["QUOTED"] != `"href":"`+ptBase {
		t.Errorf("env vars rewritten: %v", vars)
	}

	// Straight to the API's own address: links as configured.
	if rec := e.do("GET", "/v3/buildpacks?per_page=1", "", nil); !strings.Contains(rec.Body.String(), `"href":"`+ptBase+`/v3/buildpacks?`) {
		t.Errorf("direct request lost its links: %s", rec.Body.String())
	}
}
