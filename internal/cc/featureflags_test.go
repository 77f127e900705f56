package cc

import (
	"fmt"

	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pando "github.com/pandoplatform/pando"
)

// A non-admin user's token: ptAuth gives it the user "other-guid", whom
// ffDeveloperIn makes a space developer.
const ffDeveloper = "bearer scopes:" + ScopeRead + "," + ScopeWrite

// ffDeveloperIn makes ffDeveloper's user a space developer in the seeded
// space (and a user of its org, which a space role needs).
func (e *ptEnv) ffDeveloperIn() {
	e.t.Helper()
	if err := e.store.CreateUser(e.t.Context(), pando.User{GUID: "other-guid", Name: "someone", PasswordHash: "x"}); err != nil {
		e.t.Fatal(err)
	}
	sp := e.space()
	grant := func(typ, rel, guid string) {
		e.post("/v3/roles", `{"type":"`+typ+`","relationships":{"`+rel+`":{"data":{"guid":"`+guid+`"}},"user":{"data":{"guid":"other-guid"}}}}`)
	}
	grant("organization_user", "organization", sp.OrgGUID)
	grant("space_developer", "space", sp.GUID)
}

func TestFeatureFlags_onlyAdminsChangeThem(t *testing.T) {
	e := ptNew(t, nil)
	e.ffDeveloperIn()
	rec := e.doAs(ffDeveloper, "PATCH", "/v3/feature_flags/task_creation", `{"enabled":false}`)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "CF-NotAuthorized") {
		t.Fatalf("developer PATCH: %d %s, want 403 CF-NotAuthorized", rec.Code, rec.Body)
	}
	if rec := e.doAs(ffDeveloper, "GET", "/v3/feature_flags/task_creation", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"enabled":true`) {
		t.Errorf("developer GET: %d %s", rec.Code, rec.Body)
	}
	if d := e.cfErr(e.do("PATCH", "/v3/feature_flags/task_creation", "application/json", strings.NewReader(`{"custom_error_message":"`+strings.Repeat("x", 1001)+`"}`)), 422); !strings.Contains(d["detail"].(string), "too long") {
		t.Errorf("long message: %v", d)
	}
}

// TestFeatureFlags_disabledFlagsRefuseNonAdmins: each enforced flag, once
// off, refuses what it guards with CF's FeatureDisabled (or the custom
// message) to a developer, while an admin still may.
func TestFeatureFlags_disabledFlagsRefuseNonAdmins(t *testing.T) {
	e := ptNew(t, func(c *Config) { c.DockerEnabled = true })
	e.ffDeveloperIn()
	app := e.startedApp("flagged")
	space := e.space().GUID
	pkg := e.ok(e.doJSON("POST", "/v3/packages", map[string]any{"type": "bits", "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app.GUID}}}}), http.StatusCreated)["guid"].(string)
	// NAME in a body becomes a new name on every request.
	docker := `{"name":"NAME","lifecycle":{"type":"docker","data":{}},"relationships":{"space":{"data":{"guid":"` + space + `"}}}}`
	n := 0
	send := func(auth, method, path, body string) *httptest.ResponseRecorder {
		n++
		return e.doAs(auth, method, path, strings.ReplaceAll(body, "NAME", fmt.Sprintf("n%d", n)))
	}
	cases := []struct {
		flag                string
		method, path, body  string
		adminStatus, okCode int
	}{
		{FlagDiegoDocker, "POST", "/v3/apps", docker, http.StatusCreated, http.StatusCreated},
		{FlagTaskCreation, "POST", "/v3/apps/" + app.GUID + "/tasks", `{"command":"true"}`, http.StatusAccepted, http.StatusAccepted},
		{FlagAppScaling, "POST", "/v3/apps/" + app.GUID + "/processes/web/actions/scale", `{"instances":2}`, http.StatusAccepted, http.StatusAccepted},
		{FlagEnvVarVisibility, "GET", "/v3/apps/" + app.GUID + "/env", "", http.StatusOK, http.StatusOK},
		{FlagSpaceDeveloperEnvVarVisibility, "GET", "/v3/apps/" + app.GUID + "/env", "", http.StatusOK, http.StatusOK},
		{FlagSpaceDeveloperEnvVarVisibility, "GET", "/v3/apps/" + app.GUID + "/environment_variables", "", http.StatusOK, http.StatusOK},
		{FlagRouteCreation, "POST", "/v3/routes", `{"host":"NAME","relationships":{"space":{"data":{"guid":"` + space + `"}},"domain":{"data":{"guid":"` + e.domain().GUID + `"}}}}`, http.StatusCreated, http.StatusCreated},
		{FlagAppBitsUpload, "POST", "/v3/packages/" + pkg + "/upload", "", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.flag+tc.path[strings.LastIndex(tc.path, "/"):], func(t *testing.T) {
			body := tc.body
			if tc.okCode != 0 {
				if rec := send(ffDeveloper, tc.method, tc.path, body); rec.Code != tc.okCode {
					t.Fatalf("flag on: %d %s, want %d", rec.Code, rec.Body, tc.okCode)
				}
			}
			e.ok(e.doJSON("PATCH", "/v3/feature_flags/"+tc.flag, map[string]any{"enabled": false}), http.StatusOK)
			defer func() {
				e.ok(e.doJSON("PATCH", "/v3/feature_flags/"+tc.flag, map[string]any{"enabled": true, "custom_error_message": nil}), http.StatusOK)
			}()
			rec := send(ffDeveloper, tc.method, tc.path, body)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"CF-FeatureDisabled"`) ||
				!strings.Contains(rec.Body.String(), "Feature Disabled: "+tc.flag) || !strings.Contains(rec.Body.String(), "330002") {
				t.Fatalf("flag off: %d %s, want 403 Feature Disabled: %s", rec.Code, rec.Body, tc.flag)
			}
			e.ok(e.doJSON("PATCH", "/v3/feature_flags/"+tc.flag, map[string]any{"custom_error_message": "ask the platform team"}), http.StatusOK)
			if rec := send(ffDeveloper, tc.method, tc.path, body); !strings.Contains(rec.Body.String(), `"ask the platform team"`) {
				t.Errorf("custom message: %d %s", rec.Code, rec.Body)
			}
			if tc.adminStatus != 0 {
				if rec := send("bearer test", tc.method, tc.path, body); rec.Code != tc.adminStatus {
					t.Errorf("admin with flag off: %d %s, want %d", rec.Code, rec.Body, tc.adminStatus)
				}
			}
		})
	}
}

func TestFeatureFlags_resourceMatchingOffMatchesNothing(t *testing.T) {
	e := ptNew(t, nil)
	sha := "0123456789abcdef0123456789abcdef01234567"
	if _, err := e.blobs.Put(t.Context(), "resources/"+sha, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	body := `{"resources":[{"checksum":{"value":"` + sha + `"},"size_in_bytes":1,"path":"a","mode":"644"}]}`
	if got := ptResources(e.ok(e.do("POST", "/v3/resource_matches", "application/json", strings.NewReader(body)), http.StatusCreated)); len(got) != 1 {
		t.Fatalf("flag on: matched %v, want the cached file", got)
	}
	e.ok(e.doJSON("PATCH", "/v3/feature_flags/resource_matching", map[string]any{"enabled": false}), http.StatusOK)
	if got := ptResources(e.ok(e.do("POST", "/v3/resource_matches", "application/json", strings.NewReader(body)), http.StatusCreated)); len(got) != 0 {
		t.Errorf("flag off: matched %v, want nothing", got)
	}
}
