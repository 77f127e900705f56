package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDomains_sharedPrivateShareUnshareAndDelete(t *testing.T) {
	h, f, ft := teamHarness(t)
	h.mustRun("create-shared-domain", "apps.example.com")
	h.mustRun("create-private-domain", "myorg", "shop.example.com")
	b := ft.body("POST /v3/domains")
	if len(b) != 2 || b[0]["name"] != "apps.example.com" || b[0]["relationships"] != nil {
		t.Fatalf("domain bodies = %v", b)
	}
	if org := b[1]["relationships"].(map[string]any)["organization"].(map[string]any)["data"].(map[string]any)["guid"]; org != orgGUID {
		t.Errorf("private domain's org = %v, want %s", org, orgGUID)
	}
	if err := h.run("create-private-domain", "nope", "x.example.com"); err == nil || !strings.Contains(err.Error(), "organization 'nope' not found") {
		t.Errorf("private domain of a missing org: %v", err)
	}

	ft.orgs["partners"] = "org-partners"
	shop := ft.domains["shop.example.com"]
	h.mustRun("share-private-domain", "partners", "shop.example.com")
	if got := ft.body("POST /v3/domains/" + shop + "/relationships/shared_organizations"); len(got) != 1 ||
		got[0]["data"].([]any)[0].(map[string]any)["guid"] != "org-partners" {
		t.Errorf("share bodies = %v", got)
	}
	if err := h.run("share-private-domain", "partners", "apps.example.com"); err == nil ||
		err.Error() != "domain apps.example.com is a shared domain: only private domains are shared with orgs" {
		t.Errorf("share a shared domain: %v", err)
	}
	// Without -f and without a yes, nothing is unshared.
	h.env.streams.In = strings.NewReader("n\n")
	if out := h.mustRun("unshare-private-domain", "partners", "shop.example.com"); !strings.Contains(out, "Unshare cancelled") {
		t.Errorf("unshare answered no: %s", out)
	}
	if len(ft.deleted) != 0 {
		t.Fatalf("deleted after a no: %v", ft.deleted)
	}
	h.mustRun("unshare-private-domain", "partners", "shop.example.com", "-f")
	if want := "/v3/domains/" + shop + "/relationships/shared_organizations/org-partners"; !slices.Equal(ft.deleted, []string{want}) {
		t.Errorf("deleted = %v, want %s", ft.deleted, want)
	}
	// The API's refusal of a second unshare is shown.
	if err := h.run("unshare-private-domain", "partners", "shop.example.com", "-f"); err == nil || !strings.Contains(err.Error(), "Ensure the domain is shared to this organization") {
		t.Errorf("unshare twice: %v", err)
	}

	// delete-domain waits for the job; a missing domain is not an error.
	ft.deleted = nil
	out := h.mustRun("delete-domain", "shop.example.com", "-f")
	if !strings.Contains(out, "OK") || !slices.Equal(ft.deleted, []string{"/v3/domains/" + shop}) {
		t.Errorf("delete-domain: %s, deleted %v", out, ft.deleted)
	}
	reqs := f.requests()
	if i := requestIndex(reqs, "DELETE /v3/domains/"+shop); i < 0 || requestIndex(reqs[i:], "GET /v3/jobs/job-team") < 0 {
		t.Errorf("no job poll after the DELETE: %v", reqs)
	}
	if out := h.mustRun("delete-domain", "shop.example.com", "-f"); !strings.Contains(out, "Domain shop.example.com does not exist.") {
		t.Errorf("delete a missing domain: %s", out)
	}
	ft.jobFails = "The domain is in use"
	if err := h.run("delete-shared-domain", "apps.example.com", "-f"); err == nil || !strings.Contains(err.Error(), "delete domain apps.example.com: The domain is in use") {
		t.Errorf("failed job: %v", err)
	}
}

func TestDomains_refusalsSayWhichRoleIsNeeded(t *testing.T) {
	h, _, ft := teamHarness(t)
	ft.deny["POST /v3/domains"] = "CF-NotAuthorized"
	ft.domains["shop.example.com"], ft.domainOrg["dom-shop"] = "dom-shop", orgGUID
	ft.orgs["partners"] = "org-partners"
	ft.deny["POST /v3/domains/dom-shop/relationships/shared_organizations"] = "CF-NotAuthorized"
	ft.deny["DELETE /v3/domains/dom-shop"] = "CF-NotAuthorized"
	ft.deny["DELETE /v3/domains/dom-localhost"] = "CF-NotAuthorized"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create-shared-domain", "a.example.com"}, "create domain a.example.com: not authorized: admin rights needed (logged in as admin)"},
		{[]string{"create-private-domain", "myorg", "b.example.com"}, "create domain b.example.com: not authorized: org manager role in org myorg needed (logged in as admin)"},
		{[]string{"share-private-domain", "partners", "shop.example.com"}, "share domain shop.example.com: not authorized: org manager role in orgs myorg and partners needed (logged in as admin)"},
		{[]string{"delete-domain", "shop.example.com", "-f"}, "delete domain shop.example.com: not authorized: org manager role in org myorg needed (logged in as admin)"},
		{[]string{"delete-domain", "localhost", "-f"}, "delete domain localhost: not authorized: admin rights needed (logged in as admin)"},
	} {
		if err := h.run(tc.args...); err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestCreateAndDeleteRoute(t *testing.T) {
	h, f, ft := teamHarness(t)
	ft.domains["example.com"] = "dom-example"
	out := h.mustRun("create-route", "example.com", "--hostname", "www", "--path", "api")
	if !strings.Contains(out, "Route www.example.com/api has been created.") {
		t.Errorf("create-route output: %s", out)
	}
	rb := ft.body("POST /v3/routes")
	if len(rb) != 1 || rb[0]["host"] != "www" || rb[0]["path"] != "/api" ||
		rb[0]["relationships"].(map[string]any)["space"].(map[string]any)["data"].(map[string]any)["guid"] != spaceGUID {
		t.Fatalf("route bodies = %v", rb)
	}
	// Again: as cf, an existing route is reported, not an error.
	if out := h.mustRun("create-route", "example.com", "--hostname", "www", "--path", "/api"); !strings.Contains(out, "Route www.example.com/api already exists.") {
		t.Errorf("create-route twice: %s", out)
	}
	if err := h.run("create-route", "nope.com"); err == nil || !strings.Contains(err.Error(), "domain 'nope.com' not found") {
		t.Errorf("route on a missing domain: %v", err)
	}

	var routeGUID string
	for g := range ft.routes {
		routeGUID = g
	}
	h.env.streams.In = strings.NewReader("\n")
	if out := h.mustRun("delete-route", "example.com", "--hostname", "www", "--path", "/api"); !strings.Contains(out, "Delete cancelled") || len(ft.deleted) != 0 {
		t.Fatalf("delete-route without a yes: %s, deleted %v", out, ft.deleted)
	}
	h.env.streams.In = strings.NewReader("y\n")
	h.mustRun("delete-route", "example.com", "--hostname", "www", "--path", "/api")
	if !slices.Equal(ft.deleted, []string{"/v3/routes/" + routeGUID}) {
		t.Errorf("deleted = %v, want the route %s", ft.deleted, routeGUID)
	}
	reqs := f.requests()
	if i := requestIndex(reqs, "DELETE /v3/routes/"+routeGUID); i < 0 || requestIndex(reqs[i:], "GET /v3/jobs/job-team") < 0 {
		t.Errorf("no job poll after the DELETE: %v", reqs)
	}
	if out := h.mustRun("delete-route", "example.com", "--hostname", "www", "--path", "/api", "-f"); !strings.Contains(out, "route www.example.com/api does not exist") {
		t.Errorf("delete a missing route: %s", out)
	}
	ft.deny["POST /v3/routes"] = "CF-NotAuthorized"
	if err := h.run("create-route", "example.com", "-n", "x"); err == nil ||
		err.Error() != "create route x.example.com: not authorized: space developer role in space dev needed (logged in as admin)" {
		t.Errorf("refused create-route: %v", err)
	}
}

func TestUpdateUserProvidedService_sendsOnlyWhatIsGiven(t *testing.T) {
	h, f, ft := teamHarness(t)
	h.mustRun("cups", "db", "-p", `{"pw":"old"}`, "-t", "sql")
	si := ft.services["db"]
	if out := h.mustRun("uups", "db", "-p", `{"pw":"new"}`, "-t", ""); strings.Contains(out, "TIP") {
		t.Errorf("restart tip without bound apps: %s", out)
	}
	f.mu.Lock()
	f.appExists = true
	f.mu.Unlock()
	h.mustRun("bind-service", "myapp", "db")
	if out := h.mustRun("update-user-provided-service", "db", "-l", "syslog://logs.example.com:514"); !strings.Contains(out, "TIP: Use 'pando restart APP' for myapp to get the change.") {
		t.Errorf("uups of a bound instance: %s", out)
	}
	b := ft.body("PATCH /v3/service_instances/" + si)
	if len(b) != 2 {
		t.Fatalf("PATCH bodies = %v", b)
	}
	if c, _ := b[0]["credentials"].(map[string]any); c["pw"] != "new" || len(b[0]) != 2 {
		t.Errorf("first PATCH = %v, want only credentials and tags", b[0])
	}
	if tags, ok := b[0]["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf("-t '' sent tags %#v, want []", b[0]["tags"])
	}
	if b[1]["syslog_drain_url"] != "syslog://logs.example.com:514" || len(b[1]) != 1 {
		t.Errorf("second PATCH = %v, want only the syslog drain URL", b[1])
	}

	err := h.run("uups", "db")
	if err == nil || err.Error() != "nothing to change: give -p CREDENTIALS, -l SYSLOG_DRAIN_URL, -r ROUTE_SERVICE_URL or -t TAGS" {
		t.Errorf("uups without flags: %v", err)
	}
	if err := h.run("uups", "nope", "-t", "x"); err == nil || !strings.Contains(err.Error(), "service instance 'nope' not found in org myorg / space dev") {
		t.Errorf("uups a missing instance: %v", err)
	}
	if err := h.run("uups", "db", "-p", "[1]"); err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
		t.Errorf("uups bad credentials: %v", err)
	}
	ft.deny["PATCH /v3/service_instances/"+si] = "CF-NotAuthorized"
	if err := h.run("uups", "db", "-t", "x"); err == nil ||
		err.Error() != "update service instance db: not authorized: space developer role in space dev needed (logged in as admin)" {
		t.Errorf("refused uups: %v", err)
	}
	if n := len(ft.body("PATCH /v3/service_instances/" + si)); n != 3 {
		t.Errorf("%d PATCHes, want 3 (the refused one included)", n)
	}
}

func TestSpaceQuotas_createSetListUnset(t *testing.T) {
	h, f, ft := teamHarness(t)
	h.mustRun("create-space-quota", "small", "-m", "512M", "-a", "2", "-r", "3")
	b := ft.body("POST /v3/space_quotas")
	if len(b) != 1 {
		t.Fatalf("bodies = %v", b)
	}
	apps := b[0]["apps"].(map[string]any)
	if apps["total_memory_in_mb"] != float64(512) || apps["total_instances"] != float64(2) || len(apps) != 2 ||
		b[0]["routes"].(map[string]any)["total_routes"] != float64(3) {
		t.Errorf("body = %v", b[0])
	}
	if org := b[0]["relationships"].(map[string]any)["organization"].(map[string]any)["data"].(map[string]any)["guid"]; org != orgGUID {
		t.Errorf("quota's org = %v, want the targeted %s", org, orgGUID)
	}
	if out := h.mustRun("create-space-quota", "small"); !strings.Contains(out, "Space quota small already exists in org myorg.") {
		t.Errorf("create twice: %s", out)
	}

	var qGUID string
	for g := range ft.spaceQuotas {
		qGUID = g
	}
	h.mustRun("set-space-quota", "dev", "small")
	if a := ft.body("POST /v3/space_quotas/" + qGUID + "/relationships/spaces"); len(a) != 1 ||
		a[0]["data"].([]any)[0].(map[string]any)["guid"] != spaceGUID {
		t.Errorf("apply bodies = %v", a)
	}
	out := h.mustRun("space-quotas")
	if !strings.Contains(out, "Getting space quotas for org myorg") || !regexp.MustCompile(`(?m)^small\s+512M\s+unlimited\s+2\s+3\s+unlimited\s+unlimited\s+unlimited\s+dev$`).MatchString(out) {
		t.Errorf("space-quotas output:\n%s", out)
	}
	// -o names another org than the targeted one.
	ft.orgs["other"] = "org-other"
	if out := h.mustRun("space-quotas", "-o", "other"); !strings.Contains(out, "Getting space quotas for org other") || !strings.Contains(out, "No space quotas found.") {
		t.Errorf("space-quotas -o other:\n%s", out)
	}
	if reqs := f.requests(); !strings.Contains(reqs[len(reqs)-1], "organization_guids=org-other") {
		t.Errorf("last request %s, want the space quotas of org-other", reqs[len(reqs)-1])
	}
	if err := h.run("set-space-quota", "dev", "small", "-o", "other"); err == nil || !strings.Contains(err.Error(), "space 'dev' not found in org other") {
		t.Errorf("set-space-quota -o other: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set-space-quota", "nope", "small"}, "space 'nope' not found in org myorg"},
		{[]string{"set-space-quota", "dev", "big"}, "space quota 'big' not found in org myorg: 'pando space-quotas' lists them"},
		{[]string{"create-space-quota", "bad", "-m", "lots"}, "--total-memory"},
	} {
		if err := h.run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}

	h.mustRun("unset-space-quota", "dev", "small")
	if want := "/v3/space_quotas/" + qGUID + "/relationships/spaces/" + spaceGUID; !slices.Equal(ft.deleted, []string{want}) {
		t.Errorf("deleted = %v, want %s", ft.deleted, want)
	}
	if out := h.mustRun("unset-space-quota", "dev", "small"); !strings.Contains(out, "Space quota small is not applied to space dev.") || len(ft.deleted) != 1 {
		t.Errorf("unset twice: %s (deleted %v)", out, ft.deleted)
	}
	ft.deny["POST /v3/space_quotas"] = "CF-NotAuthorized"
	if err := h.run("create-space-quota", "other"); err == nil ||
		err.Error() != "create space quota other: not authorized: org manager role in org myorg needed (logged in as admin)" {
		t.Errorf("refused create-space-quota: %v", err)
	}
}
