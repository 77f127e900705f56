package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// fakeTeam adds orgs, spaces, users, roles, quotas, service instances,
// bindings, domains and routes to fakeCF, answering in the shapes of
// shared/cf-traces 28-44. It keeps what is created, so verbs can be
// chained, and records each mutating request's JSON body.
type fakeTeam struct {
	f  *fakeCF
	mu sync.Mutex
	n  int

	orgs        map[string]string // name -> guid
	spaces      map[string]string // orgGUID/name -> guid
	spaceName   map[string]string // guid -> name
	users       map[string]string // name -> guid
	roles       []map[string]string
	quotas      map[string]string // name -> guid
	services    map[string]string // name -> guid
	bindings    map[string][2]string
	domains     map[string]string         // name -> guid
	domainOrg   map[string]string         // guid -> owning org guid (private domains)
	shared      map[string][]string       // domain guid -> orgs it is shared with
	spaceQuotas map[string]map[string]any // guid -> quota as the API shows it
	routes      map[string]map[string]any
	jobFails    string                      // jobs end FAILED with this detail when set
	deny        map[string]string           // "METHOD path" -> the 403's CF title
	bodies      map[string][]map[string]any // "METHOD path" -> bodies
	deleted     []string
}

func newFakeTeam(f *fakeCF) *fakeTeam {
	ft := &fakeTeam{
		f:           f,
		orgs:        map[string]string{"myorg": orgGUID},
		spaces:      map[string]string{orgGUID + "/dev": spaceGUID},
		spaceName:   map[string]string{spaceGUID: "dev"},
		users:       map[string]string{"admin": "u1"},
		quotas:      map[string]string{},
		services:    map[string]string{},
		bindings:    map[string][2]string{},
		domains:     map[string]string{"localhost": "dom-localhost"},
		domainOrg:   map[string]string{},
		shared:      map[string][]string{},
		spaceQuotas: map[string]map[string]any{},
		routes:      map[string]map[string]any{},
		deny:        map[string]string{},
		bodies:      map[string][]map[string]any{},
	}
	f.mu.Lock()
	f.extra = ft.serve
	f.mu.Unlock()
	return ft
}

func (ft *fakeTeam) guid(kind string) string {
	ft.n++
	return fmt.Sprintf("%s-%04d", kind, ft.n)
}

func (ft *fakeTeam) body(route string) []map[string]any {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.bodies[route]
}

func named(name, guid string) map[string]any { return map[string]any{"guid": guid, "name": name} }

func rel(guid string) map[string]any {
	if guid == "" {
		return map[string]any{"data": nil}
	}
	return map[string]any{"data": map[string]any{"guid": guid}}
}

// job answers 202 with a job that completes, or fails with jobFails.
func (ft *fakeTeam) job(w http.ResponseWriter) {
	w.Header().Set("Location", ft.f.url()+"/v3/jobs/job-team")
	w.WriteHeader(http.StatusAccepted)
}

func (ft *fakeTeam) serve(w http.ResponseWriter, r *http.Request) bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	f := ft.f
	p, q := r.URL.Path, r.URL.Query()
	route := r.Method + " " + p
	var in map[string]any
	if r.Method == "POST" || r.Method == "PATCH" || r.Method == "PUT" {
		_ = json.NewDecoder(r.Body).Decode(&in)
		ft.bodies[route] = append(ft.bodies[route], in)
	}
	switch title := ft.deny[route]; title {
	case "":
	case "CF-FeatureDisabled":
		f.cfError(w, 403, 330002, title, "Feature Disabled: route_creation")
		return true
	default:
		f.cfError(w, 403, 10003, title, "You are not authorized to perform the requested action")
		return true
	}
	str := func(m map[string]any, keys ...string) string {
		var v any = m
		for _, k := range keys {
			mm, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = mm[k]
		}
		s, _ := v.(string)
		return s
	}
	switch {
	case route == "GET /v3/jobs/job-team":
		if ft.jobFails != "" {
			f.writeJSON(w, 200, map[string]any{"guid": "job-team", "state": "FAILED", "errors": []any{map[string]any{"code": 10008, "title": "CF-UnprocessableEntity", "detail": ft.jobFails}}})
		} else {
			f.writeJSON(w, 200, map[string]any{"guid": "job-team", "state": "COMPLETE", "errors": []any{}})
		}
	case route == "GET /v3/organizations":
		var items []any
		for n, g := range ft.orgs {
			if names := q.Get("names"); names == "" || names == n {
				items = append(items, named(n, g))
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/organizations":
		name := str(in, "name")
		if _, ok := ft.orgs[name]; ok {
			f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("Organization '%s' already exists.", name))
			return true
		}
		ft.orgs[name] = ft.guid("org")
		f.writeJSON(w, 201, named(name, ft.orgs[name]))
	case strings.HasPrefix(route, "DELETE /v3/organizations/"), strings.HasPrefix(route, "DELETE /v3/spaces/"),
		strings.HasPrefix(route, "DELETE /v3/service_instances/"), strings.HasPrefix(route, "DELETE /v3/roles/"),
		strings.HasPrefix(route, "DELETE /v3/service_credential_bindings/"), strings.HasPrefix(route, "DELETE /v3/users/"):
		ft.deleted = append(ft.deleted, p)
		ft.job(w)
	case route == "GET /v3/spaces":
		var items []any
		for k, g := range ft.spaces {
			org, name, _ := strings.Cut(k, "/")
			if (q.Get("names") == "" || q.Get("names") == name) && (q.Get("organization_guids") == "" || q.Get("organization_guids") == org) {
				items = append(items, named(name, g))
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/spaces":
		name, org := str(in, "name"), str(in, "relationships", "organization", "data", "guid")
		g := ft.guid("space")
		ft.spaces[org+"/"+name], ft.spaceName[g] = g, name
		f.writeJSON(w, 201, named(name, g))
	case route == "GET /Users":
		var res []any
		for n, g := range ft.users {
			if strings.Contains(q.Get("filter"), `"`+n+`"`) {
				res = append(res, map[string]any{"id": g, "userName": n})
			}
		}
		f.writeJSON(w, 200, map[string]any{"resources": res, "totalResults": len(res)})
	case route == "POST /Users":
		name := str(in, "userName")
		if _, ok := ft.users[name]; ok {
			f.writeJSON(w, 409, map[string]any{"error": "scim_resource_already_exists", "error_description": "Username already in use: " + name})
			return true
		}
		ft.users[name] = ft.guid("user")
		f.writeJSON(w, 201, map[string]any{"id": ft.users[name], "userName": name})
	case route == "POST /v3/users":
		f.writeJSON(w, 201, map[string]any{"guid": str(in, "guid")})
	case strings.HasPrefix(route, "DELETE /Users/"):
		ft.deleted = append(ft.deleted, p)
		f.writeJSON(w, 200, map[string]any{})
	case strings.HasPrefix(route, "PUT /Users/") && strings.HasSuffix(p, "/password"):
		f.mu.Lock()
		ok := str(in, "oldPassword") == f.password
		if ok {
			f.password = str(in, "password")
		}
		f.mu.Unlock()
		if !ok {
			f.writeJSON(w, 401, map[string]any{"error": "unauthorized", "error_description": "Old password is incorrect"})
			return true
		}
		f.writeJSON(w, 200, map[string]any{"status": "ok"})
	case route == "POST /v3/roles":
		typ, user := str(in, "type"), str(in, "relationships", "user", "data", "username")
		org, space := str(in, "relationships", "organization", "data", "guid"), str(in, "relationships", "space", "data", "guid")
		uid, ok := ft.users[user]
		if !ok {
			f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("No user exists with the username '%s'.", user))
			return true
		}
		for _, x := range ft.roles {
			if x["type"] == typ && x["user"] == uid && x["org"] == org && x["space"] == space {
				f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("User '%s' already has '%s' role in %s.", user, typ, "it"))
				return true
			}
		}
		g := ft.guid("role")
		ft.roles = append(ft.roles, map[string]string{"guid": g, "type": typ, "user": uid, "org": org, "space": space})
		f.writeJSON(w, 201, map[string]any{"guid": g, "type": typ})
	case route == "GET /v3/roles":
		if q.Get("include") != "user" {
			f.t.Errorf("roles listed without include=user: %s", r.URL.RawQuery)
		}
		var items, users []any
		for _, x := range ft.roles {
			if (q.Get("space_guids") != "" && q.Get("space_guids") != x["space"]) ||
				(q.Get("organization_guids") != "" && q.Get("organization_guids") != x["org"]) ||
				(q.Get("types") != "" && !strings.Contains(","+q.Get("types")+",", ","+x["type"]+",")) {
				continue
			}
			items = append(items, map[string]any{"guid": x["guid"], "type": x["type"], "relationships": map[string]any{
				"user": rel(x["user"]), "organization": rel(x["org"]), "space": rel(x["space"])}})
			for n, g := range ft.users {
				if g == x["user"] {
					users = append(users, map[string]any{"guid": g, "username": n, "presentation_name": n, "origin": "uaa"})
				}
			}
		}
		l := f.list(items...)
		l["included"] = map[string]any{"users": users}
		f.writeJSON(w, 200, l)
	case route == "GET /v3/organization_quotas":
		var items []any
		for n, g := range ft.quotas {
			if q.Get("names") == "" || q.Get("names") == n {
				items = append(items, map[string]any{"guid": g, "name": n, "apps": map[string]any{"total_memory_in_mb": 1024},
					"relationships": map[string]any{"organizations": map[string]any{"data": []any{map[string]any{"guid": orgGUID}}}}})
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/organization_quotas":
		ft.quotas[str(in, "name")] = ft.guid("quota")
		f.writeJSON(w, 201, map[string]any{"guid": ft.quotas[str(in, "name")], "name": str(in, "name")})
	case strings.HasPrefix(route, "POST /v3/organization_quotas/"):
		f.writeJSON(w, 200, map[string]any{"data": in["data"]})
	case route == "POST /v3/service_instances":
		name := str(in, "name")
		ft.services[name] = ft.guid("si")
		f.writeJSON(w, 201, map[string]any{"guid": ft.services[name], "name": name, "type": "user-provided"})
	case route == "GET /v3/service_instances":
		var items []any
		for n, g := range ft.services {
			if q.Get("names") == "" || q.Get("names") == n {
				items = append(items, map[string]any{"guid": g, "name": n, "type": "user-provided"})
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/service_credential_bindings":
		app, si := str(in, "relationships", "app", "data", "guid"), str(in, "relationships", "service_instance", "data", "guid")
		g := ft.guid("binding")
		ft.bindings[g] = [2]string{app, si}
		f.writeJSON(w, 201, map[string]any{"guid": g})
	case route == "GET /v3/service_credential_bindings":
		var items []any
		for g, b := range ft.bindings {
			if (q.Get("app_guids") == "" || q.Get("app_guids") == b[0]) && (q.Get("service_instance_guids") == "" || strings.Contains(q.Get("service_instance_guids"), b[1])) {
				items = append(items, map[string]any{"guid": g, "type": "app", "relationships": map[string]any{"app": rel(b[0]), "service_instance": rel(b[1])}})
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "GET /v3/domains":
		var items []any
		for n, g := range ft.domains {
			if q.Get("names") == "" || q.Get("names") == n {
				items = append(items, map[string]any{"guid": g, "name": n, "relationships": map[string]any{"organization": rel(ft.domainOrg[g])}})
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/domains":
		ft.domains[str(in, "name")] = ft.guid("domain")
		ft.domainOrg[ft.domains[str(in, "name")]] = str(in, "relationships", "organization", "data", "guid")
		f.writeJSON(w, 201, map[string]any{"guid": ft.domains[str(in, "name")], "name": str(in, "name")})
	case route == "GET /v3/routes" && q.Get("domain_guids") != "":
		var items []any
		for _, rt := range ft.routes {
			if rt["domain"] == q.Get("domain_guids") && rt["host"] == q.Get("hosts") && rt["path"] == q.Get("paths") {
				items = append(items, rt)
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/routes":
		g := ft.guid("route")
		path, _ := in["path"].(string)
		for _, rt := range ft.routes {
			if rt["host"] == str(in, "host") && rt["path"] == path && rt["domain"] == str(in, "relationships", "domain", "data", "guid") {
				f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("Route already exists with host '%s' for domain 'd'.", str(in, "host")))
				return true
			}
		}
		ft.routes[g] = map[string]any{"guid": g, "host": str(in, "host"), "path": path, "domain": str(in, "relationships", "domain", "data", "guid"),
			"url": str(in, "host") + ".example.com" + path, "destinations": []any{}}
		f.writeJSON(w, 201, ft.routes[g])
	case strings.HasPrefix(route, "POST /v3/routes/") && strings.HasSuffix(p, "/destinations"):
		g := strings.Split(p, "/")[3]
		if rt, ok := ft.routes[g]; ok {
			for _, d := range in["destinations"].([]any) {
				app := d.(map[string]any)["app"].(map[string]any)["guid"].(string)
				rt["destinations"] = append(rt["destinations"].([]any), map[string]any{"guid": "dest-" + app, "app": map[string]any{"guid": app}})
			}
		}
		f.writeJSON(w, 200, map[string]any{"destinations": []any{}})
	case strings.HasPrefix(route, "DELETE /v3/routes/") && strings.Contains(p, "/destinations/"):
		ft.deleted = append(ft.deleted, p)
		w.WriteHeader(204)
	default:
		return ft.serveMore(w, r, route, in)
	}
	return true
}
