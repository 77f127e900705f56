package cc

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// TestContract_teamVerbs replays traces 28-35, 04, 43 and 44 in order:
// cf create-org, create-org-quota, set-org-quota, create-space (with the
// roles the CLI gives its creator, a repeat answered as it expects),
// create-user (UAA, then CC), set-space-role, set-org-role, space-users;
// the new user logs in and targets the space (04); delete-space and
// delete-org finish as jobs on the first poll.
func TestContract_teamVerbs(t *testing.T) {
	e := ctNew(t, ctOpts{})
	// 28 cf create-org o1
	org := e.expect(e.sendJSON("POST", "/v3/organizations", map[string]any{"name": "o1", "suspended": false}), http.StatusCreated)
	orgGUID := ctStr(org, "guid")
	// The trace's stub answered a null quota; CF gives a new org its
	// default quota, and the CLI reads neither.
	defaults := e.list(e.get("/v3/organization_quotas?names=default"))
	if ctStr(org, "links.self.href") != e.base+"/v3/organizations/"+orgGUID || len(defaults) != 1 || ctJ(org, "relationships.quota.data.guid") != ctStr(defaults[0], "guid") {
		t.Errorf("org: %v (default quotas %v)", org, defaults)
	}
	lookupOrg := func() {
		t.Helper()
		if l := e.list(e.get("/v3/organizations?names=o1&page=1&per_page=1")); len(l) != 1 || ctStr(l[0], "guid") != orgGUID {
			t.Fatalf("org lookup: %v", l)
		}
	}
	// 29 cf create-org-quota q1 -m 512M (the CLI's defaults for the rest)
	q := e.expect(e.sendJSON("POST", "/v3/organization_quotas", map[string]any{
		"name": "q1", "apps": map[string]any{"total_memory_in_mb": 512},
		"routes":   map[string]any{"total_routes": 0, "total_reserved_ports": 0},
		"services": map[string]any{"total_service_instances": 0, "paid_services_allowed": false},
	}), http.StatusCreated)
	// 30 cf set-org-quota o1 q1
	lookupOrg()
	if l := e.list(e.get("/v3/organization_quotas?names=q1&page=1&per_page=1")); len(l) != 1 {
		t.Fatalf("quota lookup: %v", l)
	}
	e.expect(e.sendJSON("POST", "/v3/organization_quotas/"+ctStr(q, "guid")+"/relationships/organizations",
		map[string]any{"data": []any{map[string]any{"guid": orgGUID}}}), http.StatusOK)

	// 31 cf create-space A -o o1
	lookupOrg()
	sp := e.expect(e.sendJSON("POST", "/v3/spaces", map[string]any{"name": "A",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": orgGUID}}}}), http.StatusCreated)
	spGUID := ctStr(sp, "guid")
	role := func(typ, rel, guid string, user map[string]any) ctResp {
		return e.sendJSON("POST", "/v3/roles", map[string]any{"type": typ, "relationships": map[string]any{
			rel: map[string]any{"data": map[string]any{"guid": guid}}, "user": map[string]any{"data": user}}})
	}
	admin := map[string]any{"username": "admin", "origin": "uaa"}
	e.expect(role("organization_user", "organization", orgGUID, admin), http.StatusCreated)
	e.expect(role("space_manager", "space", spGUID, admin), http.StatusCreated)
	// The CLI's RoleAlreadyExistsError: a repeat must match its pattern.
	again := role("organization_user", "organization", orgGUID, admin)
	if again.Status != http.StatusUnprocessableEntity || !regexp.MustCompile(`User '.*' already has '.*' role`).Match(again.Body) {
		t.Errorf("repeated role: %s", again)
	}
	e.expect(role("space_developer", "space", spGUID, admin), http.StatusCreated)

	// 32 cf create-user dev dev-pw: UAA (at links.uaa), then CC.
	filter := "/Users?filter=" + url.QueryEscape(`userName eq "dev" and origin eq "uaa"`)
	if l := e.expect(e.send("GET", filter, "application/json", nil, ctWithHeader("Connection", "close")), http.StatusOK); ctNum(l, "totalResults") != 0 {
		t.Fatalf("user filter: %v", l)
	}
	u := e.expect(e.sendJSON("POST", "/Users", map[string]any{"userName": "dev", "password": "dev-pw", "origin": "",
		"name": map[string]any{"familyName": "dev", "givenName": "dev"}, "emails": []any{map[string]any{"value": "dev", "primary": true}}}), http.StatusCreated)
	devGUID := ctStr(u, "id")
	if cu := e.expect(e.sendJSON("POST", "/v3/users", map[string]any{"guid": devGUID}), http.StatusCreated); ctStr(cu, "username") != "dev" {
		t.Errorf("CC user: %v", cu)
	}

	// 33 cf set-space-role dev o1 A SpaceDeveloper
	lookupOrg()
	if l := e.list(e.get("/v3/spaces?names=A&organization_guids=" + orgGUID + "&page=1&per_page=1")); len(l) != 1 {
		t.Fatalf("space lookup: %v", l)
	}
	e.expect(role("organization_user", "organization", orgGUID, map[string]any{"username": "dev"}), http.StatusCreated)
	e.expect(role("space_developer", "space", spGUID, map[string]any{"username": "dev"}), http.StatusCreated)
	// 34 cf set-org-role dev o1 OrgManager
	lookupOrg()
	e.expect(role("organization_manager", "organization", orgGUID, map[string]any{"username": "dev"}), http.StatusCreated)

	// 35 cf space-users o1 A: users by role type, their presentation names.
	roles := e.expect(e.get("/v3/roles?include=user&space_guids="+spGUID), http.StatusOK)
	byUser := map[string]string{}
	for _, x := range ctJ(roles, "included.users").([]any) {
		byUser[ctStr(x, "guid")] = ctStr(x, "presentation_name") + " (" + ctStr(x, "origin") + ")"
	}
	var devRoles []string
	for _, r := range ctJ(roles, "resources").([]any) {
		if byUser[ctStr(r, "relationships.user.data.guid")] == "" {
			t.Errorf("role %v: its user is not included", r)
		}
		if ctStr(r, "relationships.user.data.guid") == devGUID {
			devRoles = append(devRoles, ctStr(r, "type"))
		}
	}
	if byUser[devGUID] != "dev (uaa)" || len(devRoles) != 1 || devRoles[0] != "space_developer" {
		t.Errorf("space users: %v, dev's roles %v", byUser, devRoles)
	}

	// The new user: cf auth dev dev-pw, then 04 cf target -o o1 -s A.
	e.auth("dev", "dev-pw")
	lookupOrg()
	if l := e.list(e.get("/v3/spaces?names=A&organization_guids=" + orgGUID + "&page=1&per_page=1")); len(l) != 1 || ctStr(l[0], "guid") != spGUID {
		t.Fatalf("dev's space lookup: %v", l)
	}
	// As org manager, dev may delete the space (43) but not the org (44).
	lookupOrg()
	if job := e.completeJob(e.send("DELETE", "/v3/spaces/"+spGUID, "application/json", nil)); ctStr(job, "operation") != "space.delete" {
		t.Errorf("delete-space job: %v", job)
	}
	e.expectCFError(e.send("DELETE", "/v3/organizations/"+orgGUID, "application/json", nil), http.StatusForbidden, "CF-NotAuthorized", "You are not authorized to perform the requested action")
	e.auth("admin", ctAdminPass)
	if job := e.completeJob(e.send("DELETE", "/v3/organizations/"+orgGUID, "application/json", nil)); ctStr(job, "operation") != "organization.delete" {
		t.Errorf("delete-org job: %v", job)
	}
	if l := e.list(e.get("/v3/organizations?names=o1&page=1&per_page=1")); len(l) != 0 {
		t.Errorf("org after delete-org: %v", l)
	}
}
