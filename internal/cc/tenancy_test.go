package cc

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/logs"
)

// tnAuth: "bearer test" is admin; "bearer user:<guid>" a user with the
// ordinary user scopes.
type tnAuth struct{}

func (tnAuth) Authenticate(r *http.Request) (Identity, error) {
	h := r.Header.Get("Authorization")
	if strings.EqualFold(h, "bearer test") {
		return Identity{UserGUID: "admin-guid", UserName: "admin", Scopes: []string{ScopeAdmin, ScopeRead, ScopeWrite}}, nil
	}
	if g, ok := strings.CutPrefix(h, "bearer user:"); ok {
		return Identity{UserGUID: g, UserName: g, Scopes: []string{ScopeRead, ScopeWrite}}, nil
	}
	return Identity{}, errors.New("bad token")
}

func tnNew(t *testing.T, mods ...func(*Config)) *ptEnv {
	t.Helper()
	e := ptNew(t, func(c *Config) {
		c.Auth = tnAuth{}
		for _, m := range mods {
			m(c)
		}
	})
	for _, u := range []string{"admin-guid", "mgr", "dev", "aud", "other", "newbie"} {
		name := u
		if u == "admin-guid" {
			name = "admin"
		}
		if err := e.store.CreateUser(t.Context(), pando.User{GUID: u, Name: name, PasswordHash: "x", Admin: u == "admin-guid"}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *ptEnv) post(path, body string) map[string]any {
	e.t.Helper()
	return e.ok(e.do("POST", path, "application/json", strings.NewReader(body)), http.StatusCreated)
}

// TestTenancy_cfCLIFlow replays what cf create-org, create-space,
// create-user (its CC half), set-space-role, space-users, target and
// delete-space send (shared/cf-traces 28, 31-33, 35, 04, 43).
func TestTenancy_cfCLIFlow(t *testing.T) {
	e := tnNew(t)
	org := e.post("/v3/organizations", `{"name":"o1","suspended":false}`)
	orgGUID := org["guid"].(string)
	if org["name"] != "o1" || org["relationships"].(map[string]any)["quota"] == nil {
		t.Fatalf("org: %v", org)
	}
	e.cfErr(e.do("POST", "/v3/organizations", "application/json", strings.NewReader(`{"name":"o1"}`)), http.StatusUnprocessableEntity)

	// cf create-space A -o o1
	found := ptResources(e.ok(e.do("GET", "/v3/organizations?names=o1&page=1&per_page=1", "", nil), http.StatusOK))
	if len(found) != 1 || found[0]["guid"] != orgGUID {
		t.Fatalf("org lookup: %v", found)
	}
	sp := e.post("/v3/spaces", `{"name":"A","relationships":{"organization":{"data":{"guid":"`+orgGUID+`"}}}}`)
	spGUID := sp["guid"].(string)
	role := func(typ, rel, guid, user string) string {
		return `{"type":"` + typ + `","relationships":{"` + rel + `":{"data":{"guid":"` + guid + `"}},"user":{"data":` + user + `}}}`
	}
	admin := `{"username":"admin","origin":"uaa"}`
	e.post("/v3/roles", role("organization_user", "organization", orgGUID, admin))
	e.post("/v3/roles", role("space_manager", "space", spGUID, admin))
	dup := e.cfErr(e.do("POST", "/v3/roles", "application/json", strings.NewReader(role("organization_user", "organization", orgGUID, admin))), http.StatusUnprocessableEntity)
	if !regexp.MustCompile(`User '.*' already has '.*' role.*`).MatchString(dup["detail"].(string)) {
		t.Errorf("repeated role: %v (the cf CLI ignores only its RoleAlreadyExists text)", dup)
	}
	e.post("/v3/roles", role("space_developer", "space", spGUID, admin))

	// cf create-user's CC half: the UAA user exists already.
	u := e.post("/v3/users", `{"guid":"dev"}`)
	if u["username"] != "dev" || u["presentation_name"] != "dev" || u["origin"] != "uaa" {
		t.Errorf("user: %v", u)
	}
	e.cfErr(e.do("POST", "/v3/users", "application/json", strings.NewReader(`{"guid":"nobody"}`)), http.StatusUnprocessableEntity)

	// A space role needs an org role first, as CF says.
	noOrg := e.cfErr(e.do("POST", "/v3/roles", "application/json", strings.NewReader(role("space_developer", "space", spGUID, `{"username":"dev"}`))), http.StatusUnprocessableEntity)
	if noOrg["detail"] != "Users cannot be assigned roles in a space if they do not have a role in that space's organization." {
		t.Errorf("space role without org role: %v", noOrg)
	}
	// cf set-space-role dev o1 A SpaceDeveloper
	ct := e.ok(e.do("GET", "/v3/spaces?names=A&organization_guids="+orgGUID+"&page=1&per_page=1", "", nil), http.StatusOK)
	if r := ptResources(ct); len(r) != 1 || r[0]["guid"] != spGUID {
		t.Fatalf("space lookup: %v", r)
	}
	e.post("/v3/roles", role("organization_user", "organization", orgGUID, `{"username":"dev"}`))
	devRole := e.post("/v3/roles", role("space_developer", "space", spGUID, `{"username":"dev"}`))

	// cf space-users o1 A
	list := e.ok(e.do("GET", "/v3/roles?include=user&space_guids="+spGUID, "", nil), http.StatusOK)
	if n := len(ptResources(list)); n != 3 {
		t.Errorf("space roles: %d, want 3", n)
	}
	names := map[string]bool{}
	for _, x := range list["included"].(map[string]any)["users"].([]any) {
		names[x.(map[string]any)["presentation_name"].(string)] = true
	}
	if !names["dev"] || !names["admin"] {
		t.Errorf("included users: %v", names)
	}

	// The developer now sees the org and space (cf target -o o1 -s A).
	dev := "bearer user:dev"
	if r := ptResources(e.ok(e.doAs(dev, "GET", "/v3/organizations?names=o1&page=1&per_page=1", ""), http.StatusOK)); len(r) != 1 {
		t.Errorf("dev's org lookup: %v", r)
	}
	if r := ptResources(e.ok(e.doAs(dev, "GET", "/v3/spaces?names=A&organization_guids="+orgGUID+"&page=1&per_page=1", ""), http.StatusOK)); len(r) != 1 {
		t.Errorf("dev's space lookup: %v", r)
	}
	e.ok(e.doAs(dev, "POST", "/v3/apps", `{"name":"devapp","relationships":{"space":{"data":{"guid":"`+spGUID+`"}}}}`), http.StatusCreated)

	// The org role a space role rests on cannot go first.
	orgRoles := ptResources(e.ok(e.do("GET", "/v3/roles?types=organization_user&user_guids=dev", "", nil), http.StatusOK))
	if len(orgRoles) != 1 {
		t.Fatalf("dev's org roles: %v", orgRoles)
	}
	e.cfErr(e.do("DELETE", "/v3/roles/"+orgRoles[0]["guid"].(string), "", nil), http.StatusUnprocessableEntity)

	// unset-space-role: the developer loses the space.
	e.job(e.do("DELETE", "/v3/roles/"+devRole["guid"].(string), "", nil))
	if r := ptResources(e.ok(e.doAs(dev, "GET", "/v3/spaces", ""), http.StatusOK)); len(r) != 0 {
		t.Errorf("spaces after unset-space-role: %v", r)
	}

	// Role changes are audited as CF records them.
	evs, err := e.store.ListEvents(t.Context(), pando.EventFilter{Types: []string{"audit.user.space_developer_add", "audit.user.space_developer_remove"}, TargetGUIDs: []string{"dev"}})
	if err != nil || len(evs) != 2 || evs[0].SpaceGUID != spGUID || evs[0].OrgGUID != orgGUID || evs[1].ActorName != "admin" {
		t.Errorf("role events: %+v %v", evs, err)
	}

	// cf delete-space A: the app, its web LRP and the route go too.
	app := e.startedApp("inA")
	app.SpaceGUID = spGUID
	if err := e.store.UpdateApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	procs, _ := e.store.ListProcesses(t.Context(), nil, []string{app.GUID})
	if err := e.rt.board.DesireLRP(t.Context(), pando.DesiredLRP{ProcessGUID: procs[0].GUID}); err != nil {
		t.Fatal(err)
	}
	e.post("/v3/routes", `{"host":"ina","relationships":{"space":{"data":{"guid":"`+spGUID+`"}},"domain":{"data":{"guid":"`+e.domain().GUID+`"}}}}`)
	job := e.job(e.do("DELETE", "/v3/spaces/"+spGUID, "", nil))
	if job["state"] != "COMPLETE" || job["operation"] != "space.delete" {
		t.Fatalf("delete-space job: %v", job)
	}
	e.cfErr(e.do("GET", "/v3/spaces/"+spGUID, "", nil), http.StatusNotFound)
	if apps, _ := e.store.ListApps(t.Context(), pando.AppFilter{SpaceGUIDs: []string{spGUID}}); len(apps) != 0 {
		t.Errorf("apps left: %v", apps)
	}
	if _, ok := e.rt.desiredLRP(procs[0].GUID); ok {
		t.Error("the deleted app's LRP is still desired")
	}
	if rts, _ := e.store.ListRoutes(t.Context(), pando.RouteFilter{SpaceGUIDs: []string{spGUID}}); len(rts) != 0 {
		t.Errorf("routes left: %v", rts)
	}
	// cf delete-org o1
	job = e.job(e.do("DELETE", "/v3/organizations/"+orgGUID, "", nil))
	if job["state"] != "COMPLETE" {
		t.Fatalf("delete-org job: %v", job)
	}
	e.cfErr(e.do("GET", "/v3/organizations/"+orgGUID, "", nil), http.StatusNotFound)
}

// tnFixture is org1 (spaces A and B, an app in A) and org2 (space C),
// with mgr managing org1, dev developing and aud auditing in A, and
// other developing in C.
type tnFixture struct {
	org1, org2, spaceA, spaceB, spaceC, app, proc, route, role string
}

func (e *ptEnv) tnFixture() tnFixture {
	e.t.Helper()
	var f tnFixture
	f.org1 = e.post("/v3/organizations", `{"name":"org1"}`)["guid"].(string)
	f.org2 = e.post("/v3/organizations", `{"name":"org2"}`)["guid"].(string)
	space := func(name, org string) string {
		return e.post("/v3/spaces", `{"name":"`+name+`","relationships":{"organization":{"data":{"guid":"`+org+`"}}}}`)["guid"].(string)
	}
	f.spaceA, f.spaceB, f.spaceC = space("A", f.org1), space("B", f.org1), space("C", f.org2)
	grant := func(typ, rel, guid, user string) string {
		return e.post("/v3/roles", `{"type":"`+typ+`","relationships":{"`+rel+`":{"data":{"guid":"`+guid+`"}},"user":{"data":{"guid":"`+user+`"}}}}`)["guid"].(string)
	}
	grant("organization_manager", "organization", f.org1, "mgr")
	for _, u := range []string{"dev", "aud"} {
		grant("organization_user", "organization", f.org1, u)
	}
	grant("organization_user", "organization", f.org2, "other")
	f.role = grant("space_developer", "space", f.spaceA, "dev")
	grant("space_auditor", "space", f.spaceA, "aud")
	grant("space_developer", "space", f.spaceC, "other")
	f.app = e.post("/v3/apps", `{"name":"a1","relationships":{"space":{"data":{"guid":"`+f.spaceA+`"}}}}`)["guid"].(string)
	e.post("/v3/apps", `{"name":"c1","relationships":{"space":{"data":{"guid":"`+f.spaceC+`"}}}}`)
	procs, err := e.store.ListProcesses(e.t.Context(), nil, []string{f.app})
	if err != nil || len(procs) == 0 {
		e.t.Fatalf("processes: %v %v", procs, err)
	}
	f.proc = procs[0].GUID
	f.route = e.post("/v3/routes", `{"host":"a1","relationships":{"space":{"data":{"guid":"`+f.spaceA+`"}},"domain":{"data":{"guid":"`+e.domain().GUID+`"}}}}`)["guid"].(string)
	return f
}

// TestTenancy_everyEndpointHasARule: an endpoint without an access rule
// would be refused to everyone but admins; adding one means deciding who
// may use it.
func TestTenancy_everyEndpointHasARule(t *testing.T) {
	e := tnNew(t)
	if len(e.api.patterns) < 60 {
		t.Fatalf("only %d endpoints registered", len(e.api.patterns))
	}
	for _, p := range e.api.patterns {
		if _, ok := accessRules[p]; !ok {
			t.Errorf("%s has no entry in accessRules", p)
		}
	}
}

// TestTenancy_authorizationMatrix: every endpoint × {no token, admin, org
// manager, space developer, space auditor, other org's user}, on org1's
// resources. Mutating requests are sent only where they must be refused.
func TestTenancy_authorizationMatrix(t *testing.T) {
	e := tnNew(t)
	f := e.tnFixture()
	guidFor := map[string]string{
		"app": f.app, "process": f.proc, "route": f.route, "space": f.spaceA, "org": f.org1, "role": f.role,
	}
	// CF's answers on the endpoints the cf CLI uses most, per caller.
	type row struct {
		method, path, body                string
		none, admin, mgr, dev, aud, other int
	}
	createApp := `{"name":"x%s","relationships":{"space":{"data":{"guid":"` + f.spaceA + `"}}}}`
	rows := []row{
		{"GET", "/v3/apps/" + f.app, "", 401, 200, 200, 200, 200, 404},
		{"GET", "/v3/apps/" + f.app + "/env", "", 401, 200, 403, 200, 403, 404},
		{"GET", "/v3/apps/" + f.app + "/environment_variables", "", 401, 200, 403, 200, 403, 404},
		{"PATCH", "/v3/apps/" + f.app, `{}`, 401, 200, 403, 200, 403, 404},
		{"POST", "/v3/apps/" + f.app + "/actions/stop", ``, 401, 200, 403, 200, 403, 404},
		{"POST", "/v3/apps", createApp, 401, 201, 403, 201, 403, 422},
		{"POST", "/v3/spaces/" + f.spaceA + "/actions/apply_manifest", "", 401, 0, 403, 0, 403, 404},
		{"GET", "/v3/spaces/" + f.spaceA, "", 401, 200, 200, 200, 200, 404},
		{"GET", "/v3/spaces/" + f.spaceB, "", 401, 200, 200, 404, 404, 404},
		{"PATCH", "/v3/spaces/" + f.spaceA, `{}`, 401, 200, 200, 403, 403, 404},
		{"GET", "/v3/organizations/" + f.org1, "", 401, 200, 200, 200, 200, 404},
		{"GET", "/v3/organizations/" + f.org2, "", 401, 200, 404, 404, 404, 200},
		{"PATCH", "/v3/organizations/" + f.org1, `{}`, 401, 200, 200, 403, 403, 404},
		{"DELETE", "/v3/organizations/" + f.org2, "", 401, 0, 404, 404, 404, 403},
		{"POST", "/v3/organizations", `{"name":"new%s"}`, 401, 201, 403, 403, 403, 403},
		{"POST", "/v3/spaces", `{"name":"s%s","relationships":{"organization":{"data":{"guid":"` + f.org1 + `"}}}}`, 401, 201, 201, 403, 403, 422},
		{"POST", "/v3/roles", `{"type":"organization_user","relationships":{"organization":{"data":{"guid":"` + f.org1 + `"}},"user":{"data":{"guid":"newbie%s"}}}}`, 401, 0, 0, 403, 403, 422},
		{"GET", "/v3/routes/" + f.route, "", 401, 200, 200, 200, 200, 404},
		{"DELETE", "/v3/routes/" + f.route, "", 401, 0, 403, 0, 403, 404},
		{"GET", "/v3/processes/" + f.proc, "", 401, 200, 200, 200, 200, 404},
		{"POST", "/v3/processes/" + f.proc + "/actions/scale", `{"instances":1}`, 401, 0, 403, 0, 403, 404},
		{"POST", "/v3/buildpacks", `{"name":"b%s"}`, 401, 0, 403, 403, 403, 403},
		{"GET", "/pando/v1/cells", "", 401, 200, 403, 403, 403, 403},
		{"POST", "/pando/v1/cells/no-such-cell/drain", "", 401, 404, 403, 403, 403, 403},
		{"POST", "/v3/users", `{"guid":"newbie"}`, 401, 0, 403, 403, 403, 403},
		{"GET", "/v3/domains", "", 401, 200, 200, 200, 200, 200},
		{"POST", "/v3/domains", `{"name":"shared%s.test"}`, 401, 201, 403, 403, 403, 403},
		{"POST", "/v3/domains", `{"name":"private%s.test","relationships":{"organization":{"data":{"guid":"` + f.org1 + `"}}}}`, 401, 201, 201, 403, 403, 422},
	}
	callers := []string{"", "bearer test", "bearer user:mgr", "bearer user:dev", "bearer user:aud", "bearer user:other"}
	n := 0
	for _, r := range rows {
		want := []int{r.none, r.admin, r.mgr, r.dev, r.aud, r.other}
		for i, c := range callers {
			if want[i] == 0 {
				continue // allowed, but would change the fixture
			}
			n++
			body := r.body
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, fmt.Sprint(n))
			}
			if strings.Contains(r.path, "/v3/roles") || strings.Contains(body, "newbie") {
				body = strings.ReplaceAll(body, fmt.Sprintf("newbie%d", n), "newbie")
			}
			rec := e.doAs(c, r.method, r.path, body)
			if rec.Code != want[i] {
				t.Errorf("%s %s as %q: %d, want %d (%s)", r.method, r.path, c, rec.Code, want[i], strings.TrimSpace(rec.Body.String()))
			}
			if want[i] == 403 && !strings.Contains(rec.Body.String(), "CF-NotAuthorized") {
				t.Errorf("%s %s as %q: 403 without CF-NotAuthorized: %s", r.method, r.path, c, rec.Body.String())
			}
		}
	}

	// Every endpoint: no token is 401; the other org's user never sees
	// org1's resources (404) and is refused admin endpoints; the auditor
	// can read what they see but changes nothing.
	for _, p := range e.api.patterns {
		method, pattern, _ := strings.Cut(p, " ")
		ru := accessRules[p]
		path := pattern
		for kind, g := range guidFor {
			if ru.kind == kind {
				path = strings.ReplaceAll(path, "{"+ru.param+"}", g)
			}
		}
		path = strings.NewReplacer("{guid}", "does-not-exist", "{type}", "web", "{name}", "ssh", "{dest}", "does-not-exist").Replace(path)
		if rec := e.doAs("", method, path, "{}"); rec.Code != 401 {
			t.Errorf("%s %s without a token: %d", method, path, rec.Code)
		}
		other := e.doAs("bearer user:other", method, path, "{}")
		switch {
		case (ru.need == needAdmin || ru.need == needReadAll) && ru.kind == "":
			if other.Code != 403 {
				t.Errorf("%s %s (admin only) as another org's user: %d", method, path, other.Code)
			}
		case ru.kind != "" && guidFor[ru.kind] != "":
			if other.Code != 404 {
				t.Errorf("%s %s as another org's user: %d, want 404 (%s)", method, path, other.Code, other.Body.String())
			}
			if ru.need == needWrite || ru.need == needOperate || ru.need == needEnv || ru.need == needManage || ru.need == needAdmin {
				if aud := e.doAs("bearer user:aud", method, path, "{}"); aud.Code != 403 && !(ru.kind == "org" && ru.need != needManage) {
					t.Errorf("%s %s as space auditor: %d, want 403", method, path, aud.Code)
				}
			} else if method == "GET" {
				// 404s for what the resource lacks (no current droplet) are fine.
				aud := e.doAs("bearer user:aud", method, path, "")
				if aud.Code == 403 || aud.Code == 404 && strings.Contains(aud.Body.String(), `"`+notFoundTitles[ru.kind]+` not found"`) {
					t.Errorf("%s %s as space auditor: %d %s", method, path, aud.Code, aud.Body.String())
				}
			}
		}
	}

	// Process commands are hidden from those who may not read env.
	procAs := func(c string) any {
		return e.ok(e.doAs(c, "GET", "/v3/processes/"+f.proc, ""), http.StatusOK)["command"]
	}
	if got := procAs("bearer user:aud"); got != "[PRIVATE DATA HIDDEN]" {
		t.Errorf("process command as space auditor: %v", got)
	}
	if got := procAs("bearer user:dev"); got == "[PRIVATE DATA HIDDEN]" {
		t.Errorf("process command hidden from the space developer")
	}

	// Task commands likewise: left out of the task for the auditor, shown
	// to the space developer, on the task and in lists.
	task, err := e.store.CreateAppTask(t.Context(), pando.AppTask{GUID: "task-1", AppGUID: f.app, Name: "t1",
		Command: "rake db:migrate PASSWORD=s3cret", State: pando.AppTaskRunning})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v3/tasks/" + task.GUID, "/v3/apps/" + f.app + "/tasks", "/v3/tasks"} {
		one := func(c string) map[string]any {
			m := e.ok(e.doAs(c, "GET", path, ""), http.StatusOK)
			if _, list := m["resources"]; list {
				rs := ptResources(m)
				if len(rs) != 1 {
					t.Fatalf("GET %s as %s: %d tasks, want 1", path, c, len(rs))
				}
				return rs[0]
			}
			return m
		}
		if cmd, ok := one("bearer user:aud")["command"]; ok {
			t.Errorf("GET %s as space auditor shows the task's command %v", path, cmd)
		}
		if cmd := one("bearer user:dev")["command"]; cmd != task.Command {
			t.Errorf("GET %s as space developer: command %v, want %q", path, cmd, task.Command)
		}
	}

	// A space supporter operates apps (start, stop, restart, scale) but
	// changes nothing else and reads no environment.
	for _, r := range []string{
		`{"type":"organization_user","relationships":{"organization":{"data":{"guid":"` + f.org1 + `"}},"user":{"data":{"guid":"newbie"}}}}`,
		`{"type":"space_supporter","relationships":{"space":{"data":{"guid":"` + f.spaceA + `"}},"user":{"data":{"guid":"newbie"}}}}`,
	} {
		e.post("/v3/roles", r)
	}
	sup := "bearer user:newbie"
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v3/apps/" + f.app + "/actions/stop", "", 200},
		{"POST", "/v3/processes/" + f.proc + "/actions/scale", `{"instances":1}`, 202},
		{"PATCH", "/v3/apps/" + f.app, `{}`, 403},
		{"GET", "/v3/apps/" + f.app + "/env", "", 403},
		{"DELETE", "/v3/routes/" + f.route, "", 403},
	} {
		if rec := e.doAs(sup, c.method, c.path, c.body); rec.Code != c.want {
			t.Errorf("%s %s as space supporter: %d, want %d", c.method, c.path, rec.Code, c.want)
		}
	}

	// Lists show only what the caller sees.
	count := func(c, path string) int {
		return len(ptResources(e.ok(e.doAs(c, "GET", path, ""), http.StatusOK)))
	}
	inA, err := e.store.ListApps(t.Context(), pando.AppFilter{SpaceGUIDs: []string{f.spaceA}})
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.store.ListApps(t.Context(), pando.AppFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == len(inA) {
		t.Fatal("the fixture needs apps outside space A")
	}
	if n := count("bearer user:dev", "/v3/apps"); n != len(inA) {
		t.Errorf("dev sees %d apps, want the %d in space A", n, len(inA))
	}
	if n := count("bearer user:other", "/v3/apps"); n != 1 {
		t.Errorf("other sees %d apps, want 1 (in space C)", n)
	}
	if n := count("bearer user:other", "/v3/routes"); n != 0 {
		t.Errorf("other sees %d routes, want 0", n)
	}
	if n := count("bearer user:mgr", "/v3/spaces"); n < 2 {
		t.Errorf("org manager sees %d spaces, want A, B and the ones created", n)
	}
	if n := count("bearer user:dev", "/v3/spaces"); n != 1 {
		t.Errorf("dev sees %d spaces, want 1", n)
	}
	if n := count("bearer user:other", "/v3/organizations"); n != 1 {
		t.Errorf("other sees %d orgs, want 1", n)
	}
}

// TestTenancy_logsFollowTheApp: log-cache reads and Pando's log stream,
// mounted on the API's mux, show an app's logs only to those who see it.
func TestTenancy_logsFollowTheApp(t *testing.T) {
	e := tnNew(t, func(c *Config) { c.AuthedRoutes = logs.New(logs.Config{}).Routes })
	f := e.tnFixture()
	// The stream follows until the client leaves: only its refusal is
	// checked.
	if rec := e.doAs("bearer user:other", "GET", "/pando/v1/logs/"+f.app+"/stream", ""); rec.Code != http.StatusNotFound {
		t.Errorf("log stream as another org's user: %d", rec.Code)
	}
	path := "/api/v1/read/" + f.app
	if rec := e.doAs("bearer user:dev", "GET", path, ""); rec.Code != http.StatusOK {
		t.Errorf("GET %s as the app's developer: %d %s", path, rec.Code, rec.Body.String())
	}
	if rec := e.doAs("bearer user:other", "GET", path, ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET %s as another org's user: %d", path, rec.Code)
	}
	if rec := e.doAs("bearer user:other", "GET", "/api/v1/info", ""); rec.Code != http.StatusOK {
		t.Errorf("log-cache info: %d", rec.Code)
	}
}
