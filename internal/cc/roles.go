package cc

import (
	"context"
	"net/http"
	"slices"

	"github.com/pandoplatform/pando"
)

// Roles: users' roles in orgs and spaces (cf set-org-role, set-space-role,
// unset-*, org-users, space-users). Who may grant them is CF's: admins and
// org managers in their orgs; space managers too in their spaces.

func (a *API) registerRoleRoutes(h func(string, handlerFunc)) {
	h("GET /v3/roles", a.listRoles)
	h("POST /v3/roles", a.postRole)
	h("GET /v3/roles/{guid}", a.getRole)
	h("DELETE /v3/roles/{guid}", a.deleteRoleHandler)
}

func (a *API) presentRole(r pando.Role) map[string]any {
	links := map[string]any{
		"self": link(a.url("/v3/roles/%s", r.GUID)),
		"user": link(a.url("/v3/users/%s", r.UserGUID)),
	}
	if r.SpaceGUID != "" {
		links["space"] = link(a.url("/v3/spaces/%s", r.SpaceGUID))
	} else {
		links["organization"] = link(a.url("/v3/organizations/%s", r.OrgGUID))
	}
	return map[string]any{
		"guid":       r.GUID,
		"type":       r.Type,
		"created_at": ts(r.CreatedAt),
		"updated_at": ts(r.UpdatedAt),
		"relationships": map[string]any{
			"user":         rel(r.UserGUID),
			"organization": rel(r.OrgGUID),
			"space":        rel(r.SpaceGUID),
		},
		"links": links,
	}
}

type roleBody struct {
	Type          string `json:"type"`
	Relationships struct {
		User struct {
			Data struct {
				GUID     string `json:"guid"`
				Username string `json:"username"`
				Origin   string `json:"origin"`
			} `json:"data"`
		} `json:"user"`
		Organization *struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"organization"`
		Space *struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"space"`
	} `json:"relationships"`
}

func (a *API) postRole(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in roleBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	rels := in.Relationships
	role := pando.Role{GUID: a.newGUID(), Type: in.Type}
	switch {
	case pando.IsOrgRole(in.Type):
		if rels.Organization == nil || rels.Organization.Data.GUID == "" {
			return invalid("Relationships Organization can't be blank for an organization role")
		}
		role.OrgGUID = rels.Organization.Data.GUID
	case pando.IsSpaceRole(in.Type):
		if rels.Space == nil || rels.Space.Data.GUID == "" {
			return invalid("Relationships Space can't be blank for a space role")
		}
		role.SpaceGUID = rels.Space.Data.GUID
	default:
		return invalid("Type must be one of the allowed types [\"organization_auditor\", \"organization_manager\", \"organization_billing_manager\", \"organization_user\", \"space_auditor\", \"space_manager\", \"space_developer\", \"space_supporter\"]")
	}
	p := permsFrom(ctx)
	// Where the role goes, and whether the caller may grant it there.
	var orgGUID, where string
	if role.SpaceGUID != "" {
		sp, err := a.store.GetSpace(ctx, role.SpaceGUID)
		if err != nil || !p.seesSpace(sp.GUID) {
			if err != nil && !pando.IsNotFound(err) {
				return err
			}
			return invalid("Invalid space. Ensure that the space exists and you have access to it.")
		}
		if err := p.check(target{space: sp.GUID, org: sp.OrgGUID}, needManage, "Space"); err != nil {
			return err
		}
		orgGUID, where = sp.OrgGUID, "space '"+sp.Name+"'"
	} else {
		o, err := a.store.GetOrg(ctx, role.OrgGUID)
		if err != nil || !p.seesOrg(o.GUID) {
			if err != nil && !pando.IsNotFound(err) {
				return err
			}
			return invalid("Invalid organization. Ensure that the organization exists and you have access to it.")
		}
		if !p.managesOrg(o.GUID) {
			return errNotAuthorized()
		}
		orgGUID, where = o.GUID, "organization '"+o.Name+"'"
	}
	u, err := a.roleUser(ctx, in)
	if err != nil {
		return err
	}
	role.UserGUID = u.GUID
	if role.SpaceGUID != "" {
		inOrg, err := a.store.ListRoles(ctx, pando.RoleFilter{UserGUIDs: []string{u.GUID}, OrgGUIDs: []string{orgGUID}})
		if err != nil {
			return err
		}
		if len(inOrg) == 0 {
			return invalid("Users cannot be assigned roles in a space if they do not have a role in that space's organization.")
		}
	}
	role.CreatedAt = a.now()
	role.UpdatedAt = role.CreatedAt
	if err := a.store.CreateRole(ctx, role); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("User '%s' already has '%s' role in %s.", u.Name, role.Type, where)
		}
		return err
	}
	a.recordRoleEvent(ctx, role, u.Name, "add")
	writeJSON(w, http.StatusCreated, a.presentRole(role))
	return nil
}

// recordRoleEvent records CF's audit.user.<role type>_add/_remove event,
// targeting the user, in the role's space or org.
func (a *API) recordRoleEvent(ctx context.Context, role pando.Role, userName, verb string) {
	org := role.OrgGUID
	if role.SpaceGUID != "" {
		if sp, err := a.store.GetSpace(ctx, role.SpaceGUID); err == nil {
			org = sp.OrgGUID
		}
	}
	a.recordTenancyEvent(ctx, "audit.user."+role.Type+"_"+verb, "user", role.UserGUID, userName, role.SpaceGUID, org)
}

// roleUser finds the user a role is for, by GUID or by username (origin
// uaa, the only one Pando has).
func (a *API) roleUser(ctx context.Context, in roleBody) (pando.User, error) {
	d := in.Relationships.User.Data
	if d.GUID != "" {
		u, err := a.store.GetUser(ctx, d.GUID)
		if pando.IsNotFound(err) {
			return u, invalid("Invalid user. Ensure that the user exists and you have access to it.")
		}
		return u, err
	}
	if d.Username == "" {
		return pando.User{}, invalid("Relationships User can't be blank")
	}
	if d.Origin != "" && d.Origin != "uaa" {
		return pando.User{}, invalid("No user exists with the username '%s' and origin '%s'.", d.Username, d.Origin)
	}
	u, err := a.store.GetUserByName(ctx, d.Username)
	if pando.IsNotFound(err) {
		return u, invalid("No user exists with the username '%s'.", d.Username)
	}
	return u, err
}

// visibleRole reports whether the caller sees the role: they see its org
// or space.
func (p *perms) seesRole(r pando.Role) bool {
	if r.SpaceGUID != "" {
		return p.seesSpace(r.SpaceGUID)
	}
	return p.seesOrg(r.OrgGUID)
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	roles, err := a.store.ListRoles(ctx, pando.RoleFilter{
		GUIDs: splitList(q, "guids"), Types: splitList(q, "types"), UserGUIDs: splitList(q, "user_guids"),
		OrgGUIDs: splitList(q, "organization_guids"), SpaceGUIDs: splitList(q, "space_guids"),
	})
	if err != nil {
		return err
	}
	p := permsFrom(ctx)
	roles = slices.DeleteFunc(roles, func(x pando.Role) bool { return !p.seesRole(x) })
	var include func([]pando.Role) map[string]any
	if slices.Contains(splitList(q, "include"), "user") {
		include = func(page []pando.Role) map[string]any {
			var guids []string
			for _, x := range page {
				if !slices.Contains(guids, x.UserGUID) {
					guids = append(guids, x.UserGUID)
				}
			}
			users := []any{}
			if len(guids) > 0 {
				us, err := a.store.ListUsers(ctx, guids, nil)
				if err != nil {
					a.log.Warn("include users of roles", "err", err)
				}
				for _, u := range us {
					users = append(users, a.presentUser(u))
				}
			}
			return map[string]any{"users": users}
		}
	}
	paginateWith(a, w, r, roles, func(x pando.Role) sortable {
		return sortable{createdAt: x.CreatedAt, updatedAt: x.UpdatedAt}
	}, func(x pando.Role) any { return a.presentRole(x) }, include)
	return nil
}

func (a *API) getRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.store.GetRole(r.Context(), r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Role")
	}
	writeJSON(w, http.StatusOK, a.presentRole(role))
	return nil
}

func (a *API) deleteRoleHandler(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	role, err := a.store.GetRole(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Role")
	}
	if err := a.checkLastOrgRole(ctx, role); err != nil {
		return err
	}
	job := a.runJob(ctx, "role.delete", "role", role.GUID, func(ctx context.Context) error {
		if err := a.store.DeleteRole(ctx, role.GUID); err != nil && !pando.IsNotFound(err) {
			return err
		}
		name := role.UserGUID
		if u, err := a.store.GetUser(ctx, role.UserGUID); err == nil {
			name = u.Name
		}
		a.recordRoleEvent(ctx, role, name, "remove")
		return nil
	})
	a.writeJobAccepted(w, job)
	return nil
}

// checkLastOrgRole keeps CF's rule that a space role needs an org role: a
// user's last role in an org cannot go while they have roles in its spaces.
func (a *API) checkLastOrgRole(ctx context.Context, role pando.Role) error {
	if role.OrgGUID == "" {
		return nil
	}
	inOrg, err := a.store.ListRoles(ctx, pando.RoleFilter{UserGUIDs: []string{role.UserGUID}, OrgGUIDs: []string{role.OrgGUID}})
	if err != nil || len(inOrg) > 1 {
		return err
	}
	spaces, err := a.store.ListSpaces(ctx, nil, nil, []string{role.OrgGUID})
	if err != nil || len(spaces) == 0 {
		return err
	}
	guids := make([]string, len(spaces))
	for i, s := range spaces {
		guids[i] = s.GUID
	}
	inSpaces, err := a.store.ListRoles(ctx, pando.RoleFilter{UserGUIDs: []string{role.UserGUID}, SpaceGUIDs: guids})
	if err != nil {
		return err
	}
	if len(inSpaces) > 0 {
		return invalid("Cannot remove the user's last role in the organization while they have roles in its spaces; remove those first.")
	}
	return nil
}
