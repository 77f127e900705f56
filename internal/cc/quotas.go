package cc

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/pandoplatform/pando"
)

// Org and space quotas (cf create-org-quota, set-org-quota,
// create-space-quota, set-space-quota) and their enforcement: starting or
// scaling an app, creating a route or a task past a quota of its org or
// space is refused with CF's error text.

func (a *API) registerQuotaRoutes(h func(string, handlerFunc)) {
	h("GET /v3/organization_quotas", a.listQuotasHandler(pando.QuotaOrg))
	h("POST /v3/organization_quotas", a.postQuota(pando.QuotaOrg))
	h("GET /v3/organization_quotas/{guid}", a.getQuotaHandler(pando.QuotaOrg))
	h("PATCH /v3/organization_quotas/{guid}", a.patchQuota(pando.QuotaOrg))
	h("DELETE /v3/organization_quotas/{guid}", a.deleteQuotaHandler(pando.QuotaOrg))
	h("POST /v3/organization_quotas/{guid}/relationships/organizations", a.applyOrgQuota)
	h("GET /v3/space_quotas", a.listQuotasHandler(pando.QuotaSpace))
	h("POST /v3/space_quotas", a.postQuota(pando.QuotaSpace))
	h("GET /v3/space_quotas/{guid}", a.getQuotaHandler(pando.QuotaSpace))
	h("PATCH /v3/space_quotas/{guid}", a.patchQuota(pando.QuotaSpace))
	h("DELETE /v3/space_quotas/{guid}", a.deleteQuotaHandler(pando.QuotaSpace))
	h("POST /v3/space_quotas/{guid}/relationships/spaces", a.applySpaceQuota)
	h("DELETE /v3/space_quotas/{guid}/relationships/spaces/{space_guid}", a.removeSpaceQuota)
}

func quotaTitle(kind string) string {
	if kind == pando.QuotaOrg {
		return "Organization quota"
	}
	return "Space quota"
}

func (a *API) presentQuota(ctx context.Context, q pando.Quota) map[string]any {
	l := q.Limits
	num := func(v *int64) any {
		if v == nil {
			return nil
		}
		return *v
	}
	out := map[string]any{
		"guid":       q.GUID,
		"name":       q.Name,
		"created_at": ts(q.CreatedAt),
		"updated_at": ts(q.UpdatedAt),
		"apps": map[string]any{
			"total_memory_in_mb": num(l.TotalMemoryMB), "per_process_memory_in_mb": num(l.PerProcessMemoryMB),
			"total_instances": num(l.TotalInstances), "per_app_tasks": num(l.PerAppTasks),
			"log_rate_limit_in_bytes_per_second": num(l.LogRateLimit),
		},
		"services": map[string]any{
			"paid_services_allowed": l.PaidServicesAllowed, "total_service_instances": num(l.TotalServiceInstances),
			"total_service_keys": num(l.TotalServiceKeys),
		},
		"routes": map[string]any{"total_routes": num(l.TotalRoutes), "total_reserved_ports": num(l.TotalReservedPorts)},
	}
	var users []any
	if q.Kind == pando.QuotaOrg {
		out["domains"] = map[string]any{"total_domains": num(l.TotalDomains)}
		orgs, _ := a.store.ListOrgs(ctx, nil, nil)
		for _, o := range orgs {
			if o.QuotaGUID == q.GUID {
				users = append(users, map[string]any{"guid": o.GUID})
			}
		}
		out["relationships"] = map[string]any{"organizations": map[string]any{"data": orEmpty(users)}}
		out["links"] = map[string]any{"self": link(a.url("/v3/organization_quotas/%s", q.GUID))}
		return out
	}
	spaces, _ := a.store.ListSpaces(ctx, nil, nil, []string{q.OrgGUID})
	for _, s := range spaces {
		if s.QuotaGUID == q.GUID {
			users = append(users, map[string]any{"guid": s.GUID})
		}
	}
	out["relationships"] = map[string]any{
		"organization": rel(q.OrgGUID),
		"spaces":       map[string]any{"data": orEmpty(users)},
	}
	out["links"] = map[string]any{
		"self":         link(a.url("/v3/space_quotas/%s", q.GUID)),
		"organization": link(a.url("/v3/organizations/%s", q.OrgGUID)),
	}
	return out
}

func orEmpty(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// quotaBody is a quota request: name, the limit groups as raw fields (a
// field left out keeps its value; null is unlimited), and relationships.
type quotaBody struct {
	Name          *string                               `json:"name"`
	Groups        map[string]map[string]json.RawMessage `json:"-"`
	Relationships struct {
		Organization  *relBody `json:"organization"`
		Organizations *struct {
			Data []struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"organizations"`
		Spaces *struct {
			Data []struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"spaces"`
	} `json:"relationships"`
}

func readQuotaBody(r *http.Request) (quotaBody, error) {
	var raw map[string]json.RawMessage
	if err := readJSON(r, &raw); err != nil {
		return quotaBody{}, err
	}
	var in quotaBody
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &in); err != nil {
		return in, pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: invalid request body")
	}
	in.Groups = map[string]map[string]json.RawMessage{}
	for _, g := range []string{"apps", "services", "routes", "domains"} {
		if v, ok := raw[g]; ok {
			m := map[string]json.RawMessage{}
			if err := json.Unmarshal(v, &m); err != nil {
				return in, invalid("%s must be an object", g)
			}
			in.Groups[g] = m
		}
	}
	return in, nil
}

// apply sets the limits the body names on l.
func (in quotaBody) apply(l *pando.QuotaLimits) error {
	fields := map[string]map[string]**int64{
		"apps": {
			"total_memory_in_mb": &l.TotalMemoryMB, "per_process_memory_in_mb": &l.PerProcessMemoryMB,
			"total_instances": &l.TotalInstances, "per_app_tasks": &l.PerAppTasks,
			"log_rate_limit_in_bytes_per_second": &l.LogRateLimit,
		},
		"services": {"total_service_instances": &l.TotalServiceInstances, "total_service_keys": &l.TotalServiceKeys},
		"routes":   {"total_routes": &l.TotalRoutes, "total_reserved_ports": &l.TotalReservedPorts},
		"domains":  {"total_domains": &l.TotalDomains},
	}
	for g, vals := range in.Groups {
		for k, raw := range vals {
			if g == "services" && k == "paid_services_allowed" {
				if err := json.Unmarshal(raw, &l.PaidServicesAllowed); err != nil {
					return invalid("Paid services allowed must be a boolean")
				}
				continue
			}
			dst, ok := fields[g][k]
			if !ok {
				return invalid("Unknown field(s): '%s' in %s", k, g)
			}
			var v *int64
			if err := json.Unmarshal(raw, &v); err != nil || (v != nil && (*v < 0 || *v > 1<<40)) {
				return invalid("%s %s must be a non-negative integer or null", g, k)
			}
			*dst = v
		}
	}
	return nil
}

func (a *API) postQuota(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		in, err := readQuotaBody(r)
		if err != nil {
			return err
		}
		if in.Name == nil || *in.Name == "" {
			return invalid("Name can't be blank")
		}
		if err := checkName(quotaTitle(kind), *in.Name); err != nil {
			return err
		}
		now := a.now()
		q := pando.Quota{GUID: a.newGUID(), Kind: kind, Name: *in.Name, CreatedAt: now, UpdatedAt: now}
		if err := in.apply(&q.Limits); err != nil {
			return err
		}
		p := permsFrom(ctx)
		if kind == pando.QuotaSpace {
			if in.Relationships.Organization == nil || in.Relationships.Organization.guid() == "" {
				return invalid("Relationships Organization must be provided")
			}
			q.OrgGUID = in.Relationships.Organization.guid()
			if _, err := a.store.GetOrg(ctx, q.OrgGUID); err != nil || !p.seesOrg(q.OrgGUID) {
				return invalid("Organization with guid '%s' does not exist, or you do not have access to it.", q.OrgGUID)
			}
			if !p.managesOrg(q.OrgGUID) {
				return errNotAuthorized()
			}
		} else if !p.admin {
			return errNotAuthorized()
		}
		if err := a.store.CreateQuota(ctx, q); err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				if kind == pando.QuotaOrg {
					return invalid("Organization Quota '%s' already exists.", q.Name)
				}
				return invalid("Space Quota '%s' already exists.", q.Name)
			}
			return err
		}
		writeJSON(w, http.StatusCreated, a.presentQuota(ctx, q))
		return nil
	}
}

// quotaFor reads the quota in the path, of kind.
func (a *API) quotaFor(ctx context.Context, kind, guid string) (pando.Quota, error) {
	q, err := a.store.GetQuota(ctx, guid)
	if err == nil && q.Kind != kind {
		err = pando.Errorf(pando.ENotFound, "quota %s not found", guid)
	}
	return q, asNotFound(err, quotaTitle(kind))
}

func (a *API) listQuotasHandler(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		q := r.URL.Query()
		qs, err := a.store.ListQuotas(ctx, kind, splitList(q, "guids"), splitList(q, "names"), splitList(q, "organization_guids"))
		if err != nil {
			return err
		}
		if p := permsFrom(ctx); kind == pando.QuotaSpace && !p.readAll {
			qs = slices.DeleteFunc(qs, func(x pando.Quota) bool { return !p.seesOrg(x.OrgGUID) })
		}
		paginate(a, w, r, qs, func(x pando.Quota) sortable {
			return sortable{name: x.Name, createdAt: x.CreatedAt, updatedAt: x.UpdatedAt}
		}, func(x pando.Quota) any { return a.presentQuota(ctx, x) })
		return nil
	}
}

func (a *API) getQuotaHandler(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := a.quotaFor(r.Context(), kind, r.PathValue("guid"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, a.presentQuota(r.Context(), q))
		return nil
	}
}

func (a *API) patchQuota(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		q, err := a.quotaFor(ctx, kind, r.PathValue("guid"))
		if err != nil {
			return err
		}
		in, err := readQuotaBody(r)
		if err != nil {
			return err
		}
		if in.Name != nil {
			if err := checkName(quotaTitle(kind), *in.Name); err != nil {
				return err
			}
		}
		// Re-read in the write's transaction: the limits another request
		// set meanwhile stay.
		err = a.inTx(ctx, func(ctx context.Context) error {
			cur, err := a.db(ctx).GetQuota(ctx, q.GUID)
			if err != nil {
				return asNotFound(err, quotaTitle(kind))
			}
			q = cur
			if in.Name != nil {
				q.Name = *in.Name
			}
			if err := in.apply(&q.Limits); err != nil {
				return err
			}
			q.UpdatedAt = a.now()
			return a.db(ctx).UpdateQuota(ctx, q)
		})
		if err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				return invalid("%s '%s' already exists.", quotaTitle(kind), q.Name)
			}
			return err
		}
		writeJSON(w, http.StatusOK, a.presentQuota(ctx, q))
		return nil
	}
}

func (a *API) deleteQuotaHandler(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		q, err := a.quotaFor(ctx, kind, r.PathValue("guid"))
		if err != nil {
			return err
		}
		job := a.runJob(ctx, kind+"_quota.delete", "", "", func(ctx context.Context) error {
			return a.store.DeleteQuota(ctx, q.GUID)
		})
		a.writeJobAccepted(w, job)
		return nil
	}
}

type guidList struct {
	Data []struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

func (a *API) applyOrgQuota(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q, err := a.quotaFor(ctx, pando.QuotaOrg, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var in guidList
	if err := readJSON(r, &in); err != nil {
		return err
	}
	// Each org is re-read in the write's transaction: a rename meanwhile stays.
	for _, d := range in.Data {
		err := a.inTx(ctx, func(ctx context.Context) error {
			o, err := a.db(ctx).GetOrg(ctx, d.GUID)
			if err != nil {
				return invalid("Organizations with guids [\"%s\"] do not exist, or you do not have access to them.", d.GUID)
			}
			o.QuotaGUID, o.UpdatedAt = q.GUID, a.now()
			return a.db(ctx).UpdateOrg(ctx, o)
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data":  a.presentQuota(ctx, q)["relationships"].(map[string]any)["organizations"].(map[string]any)["data"],
		"links": map[string]any{"self": link(a.url("/v3/organization_quotas/%s/relationships/organizations", q.GUID))},
	})
	return nil
}

func (a *API) applySpaceQuota(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q, err := a.quotaFor(ctx, pando.QuotaSpace, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var in guidList
	if err := readJSON(r, &in); err != nil {
		return err
	}
	// Each space is re-read in the write's transaction: a rename meanwhile stays.
	for _, d := range in.Data {
		err := a.inTx(ctx, func(ctx context.Context) error {
			sp, err := a.db(ctx).GetSpace(ctx, d.GUID)
			if err != nil || sp.OrgGUID != q.OrgGUID {
				return invalid("Spaces with guids [\"%s\"] do not exist within the organization specified, or you do not have access to them.", d.GUID)
			}
			sp.QuotaGUID, sp.UpdatedAt = q.GUID, a.now()
			return a.db(ctx).UpdateSpace(ctx, sp)
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data":  a.presentQuota(ctx, q)["relationships"].(map[string]any)["spaces"].(map[string]any)["data"],
		"links": map[string]any{"self": link(a.url("/v3/space_quotas/%s/relationships/spaces", q.GUID))},
	})
	return nil
}

func (a *API) removeSpaceQuota(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q, err := a.quotaFor(ctx, pando.QuotaSpace, r.PathValue("guid"))
	if err != nil {
		return err
	}
	// Re-read in the write's transaction: a rename meanwhile stays.
	err = a.inTx(ctx, func(ctx context.Context) error {
		sp, err := a.db(ctx).GetSpace(ctx, r.PathValue("space_guid"))
		if err != nil || sp.QuotaGUID != q.GUID {
			return invalid("Unable to remove quota from space with guid '%s'. Ensure the space quota is applied to this space.", r.PathValue("space_guid"))
		}
		sp.QuotaGUID, sp.UpdatedAt = "", a.now()
		return a.db(ctx).UpdateSpace(ctx, sp)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
