package cli

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// serveMore answers what fakeTeam.serve does not: deleting and sharing
// domains, deleting routes, updating service instances and space quotas.
// ft.mu is held.
func (ft *fakeTeam) serveMore(w http.ResponseWriter, r *http.Request, route string, in map[string]any) bool {
	f := ft.f
	p, q := r.URL.Path, r.URL.Query()
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/") // v3, kind, guid, ...
	switch {
	case strings.HasPrefix(route, "DELETE /v3/domains/") && len(parts) == 3:
		ft.deleted = append(ft.deleted, p)
		for n, g := range ft.domains {
			if g == parts[2] {
				delete(ft.domains, n)
			}
		}
		ft.job(w)
	case strings.HasPrefix(route, "POST /v3/domains/") && strings.HasSuffix(p, "/relationships/shared_organizations"):
		g := parts[2]
		if ft.domainOrg[g] == "" {
			f.cfError(w, 422, 10008, "CF-UnprocessableEntity", "Domains can not be shared with other organizations unless they are scoped to an organization.")
			return true
		}
		var data []any
		for _, o := range in["data"].([]any) {
			ft.shared[g] = append(ft.shared[g], o.(map[string]any)["guid"].(string))
		}
		for _, o := range ft.shared[g] {
			data = append(data, map[string]any{"guid": o})
		}
		f.writeJSON(w, 200, map[string]any{"data": data})
	case strings.HasPrefix(route, "DELETE /v3/domains/") && len(parts) == 6 && parts[4] == "shared_organizations":
		g, org := parts[2], parts[5]
		i := slices.Index(ft.shared[g], org)
		if i < 0 {
			f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("Unable to unshare domain from organization with guid '%s'. Ensure the domain is shared to this organization.", org))
			return true
		}
		ft.shared[g] = slices.Delete(ft.shared[g], i, i+1)
		ft.deleted = append(ft.deleted, p)
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(route, "DELETE /v3/routes/") && len(parts) == 3:
		ft.deleted = append(ft.deleted, p)
		delete(ft.routes, parts[2])
		ft.job(w)
	case strings.HasPrefix(route, "PATCH /v3/service_instances/") && len(parts) == 3:
		for n, g := range ft.services {
			if g == parts[2] {
				f.writeJSON(w, 200, map[string]any{"guid": g, "name": n, "type": "user-provided"})
				return true
			}
		}
		f.cfError(w, 404, 10010, "CF-ResourceNotFound", "Service instance not found")
	case route == "GET /v3/space_quotas":
		var items []any
		for _, sq := range ft.spaceQuotas {
			org := sq["relationships"].(map[string]any)["organization"].(map[string]any)["data"].(map[string]any)["guid"]
			if (q.Get("names") == "" || q.Get("names") == sq["name"]) && (q.Get("organization_guids") == "" || q.Get("organization_guids") == org) {
				items = append(items, sq)
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "POST /v3/space_quotas":
		for _, sq := range ft.spaceQuotas {
			if sq["name"] == in["name"] {
				f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("Space Quota '%s' already exists.", in["name"]))
				return true
			}
		}
		g := ft.guid("space-quota")
		sq := map[string]any{"guid": g, "name": in["name"], "apps": in["apps"], "routes": in["routes"],
			"relationships": map[string]any{"organization": in["relationships"].(map[string]any)["organization"],
				"spaces": map[string]any{"data": []any{}}}}
		ft.spaceQuotas[g] = sq
		f.writeJSON(w, 201, sq)
	case strings.HasPrefix(route, "POST /v3/space_quotas/") && strings.HasSuffix(p, "/relationships/spaces"):
		sq, ok := ft.spaceQuotas[parts[2]]
		if !ok {
			f.cfError(w, 404, 10010, "CF-ResourceNotFound", "Space quota not found")
			return true
		}
		spaces := sq["relationships"].(map[string]any)["spaces"].(map[string]any)
		spaces["data"] = append(spaces["data"].([]any), in["data"].([]any)...)
		f.writeJSON(w, 200, map[string]any{"data": spaces["data"]})
	case strings.HasPrefix(route, "DELETE /v3/space_quotas/") && len(parts) == 6:
		ft.deleted = append(ft.deleted, p)
		if sq, ok := ft.spaceQuotas[parts[2]]; ok {
			spaces := sq["relationships"].(map[string]any)["spaces"].(map[string]any)
			spaces["data"] = slices.DeleteFunc(spaces["data"].([]any), func(x any) bool { return x.(map[string]any)["guid"] == parts[5] })
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}
