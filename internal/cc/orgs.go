package cc

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/pandoplatform/pando"
)

// Orgs and spaces: created, renamed and deleted (with everything in them,
// as an asynchronous job, as CF does).

// registerTenancyRoutes registers orgs', spaces', users' and roles'
// endpoints beyond the read-only ones in platform.go.
func (a *API) registerTenancyRoutes(h func(string, handlerFunc)) {
	h("POST /v3/organizations", a.postOrg)
	h("PATCH /v3/organizations/{guid}", a.patchOrg)
	h("DELETE /v3/organizations/{guid}", a.deleteOrgHandler)
	h("POST /v3/spaces", a.postSpace)
	h("PATCH /v3/spaces/{guid}", a.patchSpace)
	h("DELETE /v3/spaces/{guid}", a.deleteSpaceHandler)
	a.registerUserRoutes(h)
	a.registerQuotaRoutes(h)
	a.registerRoleRoutes(h)
}

// maxNameLen is CF's limit on org and space names.
const maxNameLen = 255

func checkName(what, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalid("Name can't be blank")
	case len(name) > maxNameLen:
		return invalid("Name is too long (maximum is %d characters)", maxNameLen)
	case strings.ContainsAny(name, "\x00\n\r\t"):
		return invalid("%s name must not contain control characters", what)
	}
	return nil
}

type nameBody struct {
	Name      *string `json:"name"`
	Suspended *bool   `json:"suspended"`
}

func (a *API) postOrg(w http.ResponseWriter, r *http.Request) error {
	var in nameBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return invalid("Name can't be blank")
	}
	if err := checkName("Organization", *in.Name); err != nil {
		return err
	}
	if in.Suspended != nil && *in.Suspended {
		return invalid("Pando does not suspend organizations")
	}
	// New orgs get the default quota, as on CF: what one org's apps,
	// routes and tasks may spend is bounded unless an admin lifts it.
	quota, err := a.defaultQuotaGUID(r.Context())
	if err != nil {
		return err
	}
	now := a.now()
	o := pando.Org{GUID: a.newGUID(), Name: *in.Name, QuotaGUID: quota, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateOrg(r.Context(), o); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("Organization '%s' already exists.", o.Name)
		}
		return err
	}
	a.recordTenancyEvent(r.Context(), "audit.organization.create", "organization", o.GUID, o.Name, "", o.GUID)
	writeJSON(w, http.StatusCreated, a.presentOrg(o))
	return nil
}

func (a *API) patchOrg(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	o, err := a.store.GetOrg(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Organization")
	}
	var in nameBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Suspended != nil && *in.Suspended {
		return invalid("Pando does not suspend organizations")
	}
	if in.Name != nil && *in.Name != o.Name {
		if err := checkName("Organization", *in.Name); err != nil {
			return err
		}
		// Re-read in the write's transaction: a quota applied meanwhile stays.
		err := a.inTx(ctx, func(ctx context.Context) error {
			cur, err := a.db(ctx).GetOrg(ctx, o.GUID)
			if err != nil {
				return asNotFound(err, "Organization")
			}
			o = cur
			o.Name, o.UpdatedAt = *in.Name, a.now()
			return a.db(ctx).UpdateOrg(ctx, o)
		})
		if err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				return invalid("Organization '%s' already exists.", *in.Name)
			}
			return err
		}
	}
	a.recordTenancyEventData(ctx, "audit.organization.update", "organization", o.GUID, o.Name, "", o.GUID, map[string]any{"request": requestNames(in.Name)})
	writeJSON(w, http.StatusOK, a.presentOrg(o))
	return nil
}

func (a *API) deleteOrgHandler(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	o, err := a.store.GetOrg(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Organization")
	}
	id := identityFrom(ctx)
	job := a.runJob(ctx, "organization.delete", "organization", o.GUID, func(ctx context.Context) error {
		return a.deleteOrg(ctx, id, o)
	})
	a.writeJobAccepted(w, job)
	return nil
}

// deleteOrg deletes the org's spaces with what is in them, then the org
// (its roles go with it). A failure leaves the org and what was not yet
// deleted; every app is deleted whole or not at all.
func (a *API) deleteOrg(ctx context.Context, id Identity, o pando.Org) error {
	spaces, err := a.store.ListSpaces(ctx, nil, nil, []string{o.GUID})
	if err != nil {
		return fmt.Errorf("delete org %s: %w", o.Name, err)
	}
	for _, sp := range spaces {
		if err := a.deleteSpace(ctx, id, sp); err != nil {
			return err
		}
	}
	if err := a.removeOrgDomains(ctx, id, o.GUID); err != nil {
		return err
	}
	if err := a.store.DeleteOrg(ctx, o.GUID); err != nil && !pando.IsNotFound(err) {
		return fmt.Errorf("delete org %s: %w", o.Name, err)
	}
	a.recordTenancyEvent(ctx, "audit.organization.delete-request", "organization", o.GUID, o.Name, "", o.GUID)
	return nil
}

type spaceBody struct {
	Name          *string `json:"name"`
	Relationships struct {
		Organization struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"organization"`
	} `json:"relationships"`
}

func (a *API) postSpace(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in spaceBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return invalid("Name can't be blank")
	}
	if err := checkName("Space", *in.Name); err != nil {
		return err
	}
	orgGUID := in.Relationships.Organization.Data.GUID
	badOrg := invalid("Invalid organization. Ensure the organization exists and you have access to it.")
	o, err := a.store.GetOrg(ctx, orgGUID)
	if err != nil {
		if pando.IsNotFound(err) {
			return badOrg
		}
		return err
	}
	p := permsFrom(ctx)
	if !p.seesOrg(o.GUID) {
		return badOrg
	}
	if !p.managesOrg(o.GUID) {
		return errNotAuthorized()
	}
	now := a.now()
	sp := pando.Space{GUID: a.newGUID(), Name: *in.Name, OrgGUID: o.GUID, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateSpace(ctx, sp); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("Name must be unique per organization")
		}
		return err
	}
	a.recordTenancyEvent(ctx, "audit.space.create", "space", sp.GUID, sp.Name, sp.GUID, o.GUID)
	writeJSON(w, http.StatusCreated, a.presentSpace(sp))
	return nil
}

func (a *API) patchSpace(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sp, err := a.store.GetSpace(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Space")
	}
	var in spaceBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name != nil && *in.Name != sp.Name {
		if err := checkName("Space", *in.Name); err != nil {
			return err
		}
		// Re-read in the write's transaction: a quota applied meanwhile stays.
		err := a.inTx(ctx, func(ctx context.Context) error {
			cur, err := a.db(ctx).GetSpace(ctx, sp.GUID)
			if err != nil {
				return asNotFound(err, "Space")
			}
			sp = cur
			sp.Name, sp.UpdatedAt = *in.Name, a.now()
			return a.db(ctx).UpdateSpace(ctx, sp)
		})
		if err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				return invalid("Name must be unique per organization")
			}
			return err
		}
	}
	a.recordTenancyEventData(ctx, "audit.space.update", "space", sp.GUID, sp.Name, sp.GUID, sp.OrgGUID, map[string]any{"request": requestNames(in.Name)})
	writeJSON(w, http.StatusOK, a.presentSpace(sp))
	return nil
}

func (a *API) deleteSpaceHandler(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sp, err := a.store.GetSpace(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Space")
	}
	id := identityFrom(ctx)
	job := a.runJob(ctx, "space.delete", "space", sp.GUID, func(ctx context.Context) error {
		return a.deleteSpace(ctx, id, sp)
	})
	a.writeJobAccepted(w, job)
	return nil
}

// deleteSpace deletes the space's apps (their LRPs, tasks and blobs, as
// `cf delete` does) and routes, then the space and its roles.
func (a *API) deleteSpace(ctx context.Context, id Identity, sp pando.Space) error {
	apps, err := a.store.ListApps(ctx, pando.AppFilter{SpaceGUIDs: []string{sp.GUID}})
	if err != nil {
		return fmt.Errorf("delete space %s: %w", sp.Name, err)
	}
	for _, app := range apps {
		if err := a.deleteApp(ctx, id, app); err != nil {
			return err
		}
	}
	routes, err := a.store.ListRoutes(ctx, pando.RouteFilter{SpaceGUIDs: []string{sp.GUID}})
	if err != nil {
		return fmt.Errorf("delete space %s: %w", sp.Name, err)
	}
	for _, rt := range routes {
		if err := a.removeRoute(ctx, id, rt); err != nil {
			return err
		}
	}
	if err := a.store.DeleteSpace(ctx, sp.GUID); err != nil && !pando.IsNotFound(err) {
		return fmt.Errorf("delete space %s: %w", sp.Name, err)
	}
	a.recordTenancyEvent(ctx, "audit.space.delete-request", "space", sp.GUID, sp.Name, sp.GUID, sp.OrgGUID)
	return nil
}

// recordTenancyEvent records an audit event about an org, space, user or
// role, acted by the request's caller.
func (a *API) recordTenancyEvent(ctx context.Context, typ, targetType, targetGUID, targetName, space, org string) {
	a.recordTenancyEventData(ctx, typ, targetType, targetGUID, targetName, space, org, nil)
}

// recordTenancyEventData is recordTenancyEvent with the event's data.
func (a *API) recordTenancyEventData(ctx context.Context, typ, targetType, targetGUID, targetName, space, org string, data map[string]any) {
	id := identityFrom(ctx)
	e := pando.Event{
		GUID: a.newGUID(), Type: typ,
		ActorGUID: id.UserGUID, ActorType: "user", ActorName: id.UserName,
		TargetGUID: targetGUID, TargetType: targetType, TargetName: targetName,
		SpaceGUID: space, OrgGUID: org, Data: data, CreatedAt: a.now(),
	}
	if err := a.createEvent(ctx, e); err != nil {
		a.log.Warn("record audit event", "type", typ, "err", err)
	}
}

// requestNames is an update event's "request": the fields the caller sent.
func requestNames(name *string) map[string]any {
	req := map[string]any{}
	if name != nil {
		req["name"] = *name
	}
	return req
}
