package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func teamHarness(t *testing.T) (*harness, *fakeCF, *fakeTeam) {
	t.Helper()
	f := newFakeCF(t)
	ft := newFakeTeam(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	return h, f, ft
}

func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	before := len(h.out.String())
	if err := h.run(args...); err != nil {
		h.t.Fatalf("pando %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, h.out, h.err)
	}
	return h.out.String()[before:]
}

// requestIndex is the position of the first recorded request starting
// with prefix, or -1.
func requestIndex(reqs []string, prefix string) int {
	return slices.IndexFunc(reqs, func(r string) bool { return strings.HasPrefix(r, prefix) })
}

func TestTeam_adminCreatesOrgSpaceUserAndRole(t *testing.T) {
	h, f, ft := teamHarness(t)
	h.mustRun("create-org", "o1")
	h.mustRun("create-space", "A", "-o", "o1")
	h.env.streams.In = strings.NewReader("dev-pw\n")
	h.mustRun("create-user", "dev")
	out := h.mustRun("set-space-role", "dev", "o1", "A", "SpaceDeveloper")
	if !strings.Contains(out, "OK") {
		t.Errorf("set-space-role output: %s", out)
	}

	users := ft.body("POST /Users")
	if len(users) != 1 || users[0]["userName"] != "dev" || users[0]["password"] != "dev-pw" {
		t.Fatalf("POST /Users bodies = %v", users)
	}
	if cc := ft.body("POST /v3/users"); len(cc) != 1 || cc[0]["guid"] != ft.users["dev"] {
		t.Errorf("POST /v3/users bodies = %v, want the UAA id %s", cc, ft.users["dev"])
	}
	// create-space made the creator manager and developer (as cf); then
	// set-space-role gave dev an org role before the space role.
	var got []string
	for _, b := range ft.body("POST /v3/roles") {
		got = append(got, b["type"].(string)+":"+b["relationships"].(map[string]any)["user"].(map[string]any)["data"].(map[string]any)["username"].(string))
	}
	want := []string{"organization_user:admin", "space_manager:admin", "space_developer:admin", "organization_user:dev", "space_developer:dev"}
	if !slices.Equal(got, want) {
		t.Errorf("roles created = %v, want %v", got, want)
	}

	// A repeat is not an error, as with cf.
	out = h.mustRun("set-space-role", "dev", "o1", "A", "spacedeveloper")
	if !strings.Contains(out, "User 'dev' already has role SpaceDeveloper in space A.") {
		t.Errorf("repeat output: %s", out)
	}
	out = h.mustRun("space-users", "o1", "A")
	if !strings.Contains(out, "SPACE DEVELOPER\n  admin (uaa)\n  dev (uaa)\n") || !strings.Contains(out, "SPACE AUDITOR\n  No SPACE AUDITOR found") {
		t.Errorf("space-users output:\n%s", out)
	}
	reqs := f.requests()
	if i := requestIndex(reqs, "GET /v3/roles?"); i < 0 || !strings.Contains(reqs[i], "include=user") || !strings.Contains(reqs[i], "space_guids="+ft.spaces[ft.orgs["o1"]+"/A"]) {
		t.Errorf("roles request = %v", reqs)
	}

	// Unknown user and bad role names are one clear line each.
	err := h.run("set-space-role", "nobody", "o1", "A", "SpaceDeveloper")
	if err == nil || err.Error() != "user 'nobody' not found: create it with 'pando create-user nobody'" {
		t.Errorf("unknown user: %v", err)
	}
	err = h.run("set-org-role", "dev", "o1", "Boss")
	if err == nil || !strings.Contains(err.Error(), `invalid role "Boss": want one of OrgManager, BillingManager, OrgAuditor, OrgUser`) {
		t.Errorf("bad role: %v", err)
	}

	// unset removes exactly dev's role.
	h.mustRun("unset-space-role", "dev", "o1", "A", "SpaceDeveloper")
	var devRole string
	for _, x := range ft.roles {
		if x["type"] == "space_developer" && x["user"] == ft.users["dev"] {
			devRole = x["guid"]
		}
	}
	if !slices.Contains(ft.deleted, "/v3/roles/"+devRole) || len(ft.deleted) != 1 {
		t.Errorf("deleted = %v, want only dev's role %s", ft.deleted, devRole)
	}
}

func TestTarget_savesTheSpaceAndAppVerbsUseIt(t *testing.T) {
	h, f, ft := teamHarness(t)
	ft.spaces[orgGUID+"/staging"] = "space-staging"
	h.mustRun("target", "-o", "myorg", "-s", "staging")
	if cfg := h.config(); cfg.SpaceGUID != "space-staging" || cfg.SpaceName != "staging" || cfg.OrgName != "myorg" {
		t.Fatalf("config after target = %+v", cfg)
	}
	out := h.mustRun("apps")
	if !strings.Contains(out, "space staging") {
		t.Errorf("apps output: %s", out)
	}
	reqs := f.requests()
	if i := requestIndex(reqs, "GET /v3/apps?"); i < 0 || !strings.Contains(reqs[i], "space_guids=space-staging") {
		t.Errorf("apps asked for another space: %v", reqs)
	}

	// -o alone with several spaces targets the org, as cf does.
	h.mustRun("target", "-o", "myorg")
	if err := h.run("target", "-o", "myorg", "-s", "nope"); err == nil || !strings.Contains(err.Error(), "space 'nope' not found in org myorg") {
		t.Errorf("target a missing space: %v", err)
	}
}

func TestDeleteSpace_waitsForTheJobAndForgetsTheTarget(t *testing.T) {
	h, f, ft := teamHarness(t)
	ft.jobFails = "Deletion of space dev failed because one or more resources within could not be deleted."
	err := h.run("delete-space", "dev", "-f")
	if err == nil || !strings.Contains(err.Error(), "delete space dev: Deletion of space dev failed") {
		t.Fatalf("failed job: %v", err)
	}
	if h.config().SpaceGUID != spaceGUID {
		t.Errorf("a failed delete forgot the target")
	}
	ft.mu.Lock()
	ft.jobFails = ""
	ft.mu.Unlock()
	out := h.mustRun("delete-space", "dev", "-f")
	if !strings.Contains(out, "OK") || !strings.Contains(out, "No space targeted now") {
		t.Errorf("output: %s", out)
	}
	if cfg := h.config(); cfg.SpaceGUID != "" || cfg.OrgGUID != orgGUID {
		t.Errorf("config after deleting the targeted space = %+v", cfg)
	}
	reqs := f.requests()
	if i := requestIndex(reqs, "DELETE /v3/spaces/"+spaceGUID); i < 0 || requestIndex(reqs[i:], "GET /v3/jobs/job-team") < 0 {
		t.Errorf("no job poll after the DELETE: %v", reqs)
	}
	out = h.mustRun("delete-org", "gone", "-f")
	if !strings.Contains(out, "Org gone does not exist.") {
		t.Errorf("delete a missing org: %s", out)
	}
}

func TestNotAuthorized_saysWhichRoleIsNeeded(t *testing.T) {
	h, f, ft := teamHarness(t)
	ft.deny["POST /v3/organizations"] = "CF-NotAuthorized"
	ft.deny["POST /v3/service_instances"] = "CF-NotAuthorized"
	ft.deny["POST /v3/spaces"] = "CF-NotAuthorized"
	ft.deny["POST /v3/routes"] = "CF-FeatureDisabled"
	f.mu.Lock()
	f.appExists = true
	f.mu.Unlock()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create-org", "o2"}, "not authorized: admin rights needed (logged in as admin)"},
		{[]string{"create-space", "S"}, "not authorized: org manager role in org myorg needed (logged in as admin)"},
		{[]string{"cups", "db", "-p", `{"a":"b"}`}, "not authorized: space developer role in space dev needed (logged in as admin)"},
		// A feature flag's refusal keeps its own words.
		{[]string{"map-route", "myapp", "localhost", "--hostname", "x"}, "create route x.localhost: Feature Disabled: route_creation (CF-FeatureDisabled)"},
	} {
		err := h.run(tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestUserProvidedService_credentialsFromAFileBindAndUnbind(t *testing.T) {
	h, f, ft := teamHarness(t)
	f.mu.Lock()
	f.appExists = true
	f.mu.Unlock()
	creds := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(creds, []byte(`{"user":"u","port":5432}`), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mustRun("create-user-provided-service", "db", "-p", "@"+creds, "-l", "syslog://logs.example.com:514", "-t", "sql, main")
	b := ft.body("POST /v3/service_instances")
	if len(b) != 1 {
		t.Fatalf("bodies = %v", b)
	}
	c := b[0]["credentials"].(map[string]any)
	if b[0]["type"] != "user-provided" || c["user"] != "u" || c["port"] != float64(5432) || b[0]["syslog_drain_url"] != "syslog://logs.example.com:514" ||
		b[0]["relationships"].(map[string]any)["space"].(map[string]any)["data"].(map[string]any)["guid"] != spaceGUID {
		t.Errorf("body = %v", b[0])
	}
	if tags, _ := b[0]["tags"].([]any); len(tags) != 2 || tags[0] != "sql" || tags[1] != "main" {
		t.Errorf("tags = %v", b[0]["tags"])
	}
	if err := h.run("cups", "bad", "-p", "not json"); err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
		t.Errorf("bad credentials: %v", err)
	}

	out := h.mustRun("bind-service", "myapp", "db")
	if !strings.Contains(out, "TIP: Use 'pando restart myapp'") {
		t.Errorf("bind output: %s", out)
	}
	bb := ft.body("POST /v3/service_credential_bindings")
	if len(bb) != 1 || bb[0]["type"] != "app" {
		t.Fatalf("binding bodies = %v", bb)
	}
	out = h.mustRun("services")
	if !strings.Contains(out, "db     user-provided   myapp") {
		t.Errorf("services output:\n%s", out)
	}
	h.mustRun("unbind-service", "myapp", "db")
	if len(ft.deleted) != 1 || !strings.HasPrefix(ft.deleted[0], "/v3/service_credential_bindings/") {
		t.Errorf("deleted = %v", ft.deleted)
	}
	if err := h.run("bind-service", "myapp", "nope"); err == nil || !strings.Contains(err.Error(), "service instance 'nope' not found in org myorg / space dev") {
		t.Errorf("bind a missing instance: %v", err)
	}
}

func TestCreateQuota_sendsOnlyTheLimitsGiven(t *testing.T) {
	h, _, ft := teamHarness(t)
	h.mustRun("create-quota", "small", "-m", "1G", "-a", "10", "-r", "-1")
	b := ft.body("POST /v3/organization_quotas")
	if len(b) != 1 {
		t.Fatalf("bodies = %v", b)
	}
	apps := b[0]["apps"].(map[string]any)
	routes := b[0]["routes"].(map[string]any)
	if apps["total_memory_in_mb"] != float64(1024) || apps["total_instances"] != float64(10) || len(apps) != 2 {
		t.Errorf("apps = %v", apps)
	}
	if v, ok := routes["total_routes"]; !ok || v != nil || len(routes) != 1 {
		t.Errorf("routes = %v, want total_routes null (unlimited) only", routes)
	}
	if _, ok := b[0]["services"]; ok {
		t.Errorf("services sent though not given: %v", b[0])
	}
	if err := h.run("create-quota", "bad", "-a", "many"); err == nil || !strings.Contains(err.Error(), `--app-instances: "many" is not a count`) {
		t.Errorf("bad count: %v", err)
	}
	h.mustRun("set-quota", "myorg", "small")
	if a := ft.body("POST /v3/organization_quotas/" + ft.quotas["small"] + "/relationships/organizations"); len(a) != 1 {
		t.Errorf("apply bodies = %v", a)
	}
	out := h.mustRun("quotas")
	if !strings.Contains(out, "small") || !strings.Contains(out, "1G") || !strings.Contains(out, "myorg") {
		t.Errorf("quotas output:\n%s", out)
	}
}

func TestMapRoute_createsTheRouteWhenMissingThenMapsIt(t *testing.T) {
	h, f, ft := teamHarness(t)
	f.mu.Lock()
	f.appExists = true
	f.mu.Unlock()
	h.mustRun("create-domain", "example.com")
	h.mustRun("map-route", "myapp", "example.com", "--hostname", "www", "--path", "api")
	rb := ft.body("POST /v3/routes")
	if len(rb) != 1 || rb[0]["host"] != "www" || rb[0]["path"] != "/api" {
		t.Fatalf("route bodies = %v", rb)
	}
	// Mapping again reuses the route.
	h.mustRun("map-route", "myapp", "example.com", "--hostname", "www", "--path", "/api")
	if rb := ft.body("POST /v3/routes"); len(rb) != 1 {
		t.Errorf("route created twice: %v", rb)
	}
	h.mustRun("unmap-route", "myapp", "example.com", "--hostname", "www", "--path", "/api")
	if len(ft.deleted) != 2 || ft.deleted[0] != ft.deleted[1] || !strings.HasSuffix(ft.deleted[0], "/destinations/dest-"+appGUID) {
		t.Errorf("deleted = %v", ft.deleted)
	}
	if err := h.run("map-route", "myapp", "nope.com"); err == nil || !strings.Contains(err.Error(), "domain 'nope.com' not found") {
		t.Errorf("missing domain: %v", err)
	}
}

func TestPasswd_changesItAndLogsInAgainWithTheNewOne(t *testing.T) {
	h, f, _ := teamHarness(t)
	before := h.config().RefreshToken
	h.env.streams.In = strings.NewReader("wrong\nnew-pw\n")
	if err := h.run("passwd"); err == nil || err.Error() != "password not changed: the current password is wrong" {
		t.Fatalf("wrong current password: %v", err)
	}
	h.env.streams.In = strings.NewReader("secret\nnew-pw\n")
	h.mustRun("passwd")
	f.mu.Lock()
	pw := f.password
	last := f.grants[len(f.grants)-1]
	f.mu.Unlock()
	if pw != "new-pw" || last.Get("grant_type") != "password" || last.Get("password") != "new-pw" {
		t.Errorf("password %q, last grant %v", pw, last)
	}
	if h.config().RefreshToken == before {
		t.Errorf("tokens not renewed after passwd")
	}
}

func TestEveryVerb_hasAHelpExample(t *testing.T) {
	h := newHarness(t)
	for _, c := range append(h.env.commands(), h.env.cellDrainCmd()) {
		if strings.TrimSpace(c.Example) == "" || !strings.Contains(c.Example, "pando ") {
			t.Errorf("pando %s has no --help example", c.Name())
		}
		if c.Short == "" {
			t.Errorf("pando %s has no short help", c.Name())
		}
	}
}

func TestAppVerbs_refusalSaysWhichRoleIsNeeded(t *testing.T) {
	h, f, ft := teamHarness(t)
	f.mu.Lock()
	f.appExists, f.appState = true, "STARTED"
	f.mu.Unlock()
	ft.deny["POST /v3/apps/"+appGUID+"/actions/stop"] = "CF-NotAuthorized"
	err := h.run("stop", "myapp")
	if err == nil || err.Error() != "not authorized: space developer role in space dev needed (logged in as admin)" {
		t.Errorf("stop refused: %v", err)
	}
}

func TestSpaces_withoutATargetUseTheOnlyOrg(t *testing.T) {
	h, _, ft := teamHarness(t)
	cfg := h.config()
	cfg.OrgGUID, cfg.OrgName, cfg.SpaceGUID, cfg.SpaceName = "", "", "", ""
	if err := h.env.saveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if out := h.mustRun("spaces"); !strings.Contains(out, "Getting spaces in org myorg") || !strings.Contains(out, "\ndev\n") {
		t.Errorf("spaces output: %s", out)
	}
	ft.orgs["other"] = "org-other"
	if err := h.run("spaces"); err == nil || !strings.Contains(err.Error(), "no org targeted: use -o ORG") {
		t.Errorf("spaces with two orgs and none targeted: %v", err)
	}
	if out := h.mustRun("spaces", "-o", "other"); !strings.Contains(out, "No spaces found.") {
		t.Errorf("spaces -o other: %s", out)
	}
}
