package cc

import (
	"net/http"
	"slices"
)

// Scopes of the caller's token the API checks, as Cloud Controller does:
// reads need cloud_controller.read, writes cloud_controller.write, platform
// operations cloud_controller.admin, which also grants the other two.
const (
	ScopeRead          = "cloud_controller.read"
	ScopeWrite         = "cloud_controller.write"
	ScopeAdmin         = "cloud_controller.admin"
	ScopeAdminReadOnly = "cloud_controller.admin_read_only"
	ScopeGlobalAuditor = "cloud_controller.global_auditor"
)

// access is what an endpoint needs of its caller.
type access int

const (
	accessRead access = iota
	accessWrite
	accessAdmin
)

// adminOnly are the platform operations Pando serves: they change what
// every user of the platform gets (buildpacks) or show its machinery
// (cells). Every other endpoint needs read or write access by its method.
// (Stacks, orgs and spaces are read-only in Pando.)
var adminOnly = map[string]bool{
	"POST /v3/buildpacks":                                                  true,
	"PATCH /v3/buildpacks/{guid}":                                          true,
	"DELETE /v3/buildpacks/{guid}":                                         true,
	"POST /v3/buildpacks/{guid}/upload":                                    true,
	"GET /pando/v1/cells":                                                  true,
	"POST /pando/v1/cells/{id}/drain":                                      true,
	"POST /pando/v1/cells/{id}/undrain":                                    true,
	"PATCH /v3/feature_flags/{name}":                                       true,
	"POST /v3/app_usage_events/actions/destructively_purge_all_and_reseed": true,
	"PATCH /v3/environment_variable_groups/{name}":                         true,
}

// accessFor is what the endpoint registered as pattern needs; method is
// the request's, for requests no pattern matched.
func accessFor(pattern, method string) access {
	if adminOnly[pattern] {
		return accessAdmin
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return accessRead
	}
	return accessWrite
}

// allows reports whether id may do what need asks. This is the one place
// the API decides who may do what; user roles in orgs and spaces will
// narrow it here.
func (id Identity) allows(need access) bool {
	if id.hasScope(ScopeAdmin) {
		return true
	}
	switch need {
	case accessRead:
		return id.hasScope(ScopeRead) || id.hasScope(ScopeAdminReadOnly) || id.hasScope(ScopeGlobalAuditor)
	case accessWrite:
		return id.hasScope(ScopeWrite)
	}
	return false
}

func (id Identity) hasScope(s string) bool { return slices.Contains(id.Scopes, s) }

// authorize answers CF's 403 to callers whose token lacks the scope the
// endpoint needs. It runs after requireAuth, on every authenticated
// request, with the pattern of the endpoint the mux chose.
func (a *API) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := a.authed.Handler(r)
		need := accessFor(pattern, r.Method)
		id := identityFrom(r.Context())
		if !id.allows(need) {
			a.log.Debug("request refused: token lacks scope", "method", r.Method, "path", r.URL.Path, "user_name", id.UserName, "need", need)
			writeCFError(w, http.StatusForbidden, 10003, "CF-NotAuthorized", "You are not authorized to perform the requested action")
			return
		}
		// Then the caller's roles in orgs and spaces (permissions.go).
		r, ok := a.enforceRoles(w, r, id, pattern)
		if !ok {
			return
		}
		next.ServeHTTP(w, r)
	})
}
