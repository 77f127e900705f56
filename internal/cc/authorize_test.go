package cc

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pandoplatform/pando"
)

// TestAuthorize_scopesGateEveryEndpoint: a token's scopes decide what it
// may do, as in CF: read for reads, write for writes, admin for platform
// operations; admin may do everything.
func TestAuthorize_scopesGateEveryEndpoint(t *testing.T) {
	e := ptNew(t, nil)
	bp := e.ok(e.do("GET", "/v3/buildpacks", "", nil), http.StatusOK)["resources"].([]any)[0].(map[string]any)["guid"].(string)
	space := e.space().GUID
	newApp := func() string {
		return `{"name":"app-` + uuid.NewString()[:8] + `","relationships":{"space":{"data":{"guid":"` + space + `"}}}}`
	}
	const (
		none     = ""
		read     = ScopeRead
		readOnly = ScopeAdminReadOnly
		auditor  = ScopeGlobalAuditor
		user     = ScopeRead + "," + ScopeWrite
		write    = ScopeWrite
		admin    = ScopeAdmin
	)
	type req struct{ method, path, body string }
	reads := []req{
		{"GET", "/v3/apps", ""},
		{"GET", "/v3/buildpacks", ""},
		{"GET", "/v3/stacks", ""},
		{"GET", "/v3/organizations", ""},
		{"GET", "/v3/no-such-thing", ""},
	}
	writes := []req{
		{"POST", "/v3/apps", ""}, // body per call: names must differ
		{"POST", "/v3/routes", `{}`},
		{"DELETE", "/v3/apps/" + uuid.NewString(), ""},
	}
	admins := []req{
		{"POST", "/v3/buildpacks", `{"name":"x_buildpack"}`},
		{"PATCH", "/v3/buildpacks/" + bp, `{"enabled":true}`},
		{"DELETE", "/v3/buildpacks/" + uuid.NewString(), ""},
		{"POST", "/v3/buildpacks/" + bp + "/upload", ""},
		{"GET", "/pando/v1/cells", ""},
		{"POST", "/pando/v1/cells/cell-a/drain", ""},
		{"PATCH", "/v3/feature_flags/diego_docker", `{"enabled":true}`},
	}
	send := func(scopes string, r req) int {
		t.Helper()
		body := r.body
		if r.method == "POST" && r.path == "/v3/apps" {
			body = newApp()
		}
		rec := e.doAs("bearer scopes:"+scopes, r.method, r.path, body)
		if rec.Code == http.StatusForbidden {
			var b struct {
				Errors []struct {
					Code   int    `json:"code"`
					Title  string `json:"title"`
					Detail string `json:"detail"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || len(b.Errors) != 1 ||
				b.Errors[0].Code != 10003 || b.Errors[0].Title != "CF-NotAuthorized" ||
				b.Errors[0].Detail != "You are not authorized to perform the requested action" {
				t.Errorf("%s %s with [%s]: 403 body %s is not CF's NotAuthorized", r.method, r.path, scopes, rec.Body)
			}
		}
		return rec.Code
	}
	check := func(scopes string, rs []req, allowed bool) {
		t.Helper()
		for _, r := range rs {
			code := send(scopes, r)
			if allowed && code == http.StatusForbidden {
				t.Errorf("%s %s with [%s]: 403, want it allowed", r.method, r.path, scopes)
			}
			if !allowed && code != http.StatusForbidden {
				t.Errorf("%s %s with [%s]: %d, want 403", r.method, r.path, scopes, code)
			}
		}
	}
	check(none, reads, false)
	check(none, writes, false)
	check(none, admins, false)
	for _, s := range []string{read, readOnly, auditor} {
		check(s, reads, true)
		check(s, writes, false)
		check(s, admins, false)
	}
	check(write, reads, false)
	check(write, writes, true)
	check(user, reads, true)
	check(user, writes, true)
	check(user, admins, false)
	check(admin, reads, true)
	check(admin, writes, true)
	check(admin, admins, true)
}

// TestAuthorize_aUserTokenFromUAAIsNoAdmin runs the real token path: a
// user who is not an admin gets read and write scopes, works with apps,
// and is refused platform operations; admin is not.
func TestAuthorize_aUserTokenFromUAAIsNoAdmin(t *testing.T) {
	e := ctNew(t, ctOpts{noLogin: true})
	hash, err := e.uaa.HashPassword("dev-pass")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(t.Context(), pando.User{GUID: uuid.NewString(), Name: "dev", PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tok := e.auth("dev", "dev-pass")
	if s := ctStr(tok, "scope"); strings.Contains(s, ScopeAdmin) || !strings.Contains(s, ScopeRead) || !strings.Contains(s, ScopeWrite) {
		t.Fatalf("a user's scopes = %q, want read and write, no admin", s)
	}
	e.expect(e.get("/v3/apps"), http.StatusOK)
	e.expectCFError(e.send("POST", "/v3/buildpacks", "application/json", []byte(`{"name":"mine_buildpack"}`)),
		http.StatusForbidden, "CF-NotAuthorized", "You are not authorized to perform the requested action")
	tok = e.auth("admin", ctAdminPass)
	for _, want := range []string{ScopeRead, ScopeWrite, ScopeAdmin} {
		if !strings.Contains(ctStr(tok, "scope"), want) {
			t.Errorf("admin's scopes %q lack %s", ctStr(tok, "scope"), want)
		}
	}
	e.expect(e.send("POST", "/v3/buildpacks", "application/json", []byte(`{"name":"mine_buildpack"}`)), http.StatusCreated)
}
