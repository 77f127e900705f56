package cc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// Shared and private domains (POST, DELETE /v3/domains). A shared domain
// is the admin's and every org may put routes on it; a private domain
// belongs to one org, whose managers create and delete it. Deleting a
// domain deletes its routes, as CF does.

// maxDomainLength bounds a domain name as DNS does.
const maxDomainLength = 253

// validateDomainName checks a domain name: dot-separated DNS labels.
func validateDomainName(name string) error {
	switch {
	case name == "":
		return invalid("Name can't be blank")
	case len(name) > maxDomainLength:
		return invalid("Name is too long (maximum is %d characters)", maxDomainLength)
	case !strings.Contains(name, "."):
		return invalid("Name must contain at least one \".\"")
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabel.MatchString(l) {
			return invalid("Name does not comply with RFC 1035 standards")
		}
	}
	return nil
}

type domainBody struct {
	Name          *string  `json:"name"`
	Internal      bool     `json:"internal"`
	RouterGroup   *relBody `json:"router_group"`
	Relationships struct {
		Organization        relBody `json:"organization"`
		SharedOrganizations struct {
			Data []struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"shared_organizations"`
	} `json:"relationships"`
}

func (a *API) postDomain(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in domainBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return invalid("Name can't be blank")
	}
	name := strings.ToLower(strings.TrimSpace(*in.Name))
	if err := validateDomainName(name); err != nil {
		return err
	}
	if in.RouterGroup != nil && in.RouterGroup.guid() != "" {
		return invalid("Router groups (TCP domains) are not supported; Pando routes HTTP by host name")
	}
	id := identityFrom(ctx)
	p := permsFrom(ctx)
	orgGUID := in.Relationships.Organization.guid()
	if orgGUID == "" {
		if !p.admin {
			return errNotAuthorized()
		}
	} else {
		if in.Internal {
			return invalid("Cannot associate an internal domain with an organization")
		}
		if _, err := a.store.GetOrg(ctx, orgGUID); err != nil || !p.seesOrg(orgGUID) {
			if err != nil && !pando.IsNotFound(err) {
				return err
			}
			return invalid("Organization with guid '%s' does not exist or you do not have access to it.", orgGUID)
		}
		if !p.managesOrg(orgGUID) {
			return errNotAuthorized()
		}
		if err := a.requireFeature(ctx, id, FlagPrivateDomainCreation); err != nil {
			return err
		}
		if err := a.checkDomainQuota(ctx, orgGUID); err != nil {
			return err
		}
	}
	now := a.now()
	d := pando.Domain{GUID: a.newGUID(), Name: name, Internal: in.Internal, OrgGUID: orgGUID, CreatedAt: now, UpdatedAt: now}
	var shareWith []string
	for _, o := range in.Relationships.SharedOrganizations.Data {
		if orgGUID == "" {
			return invalid("Domains can not be shared with other organizations unless they are scoped to an organization.")
		}
		if err := a.checkShareTarget(ctx, d, o.GUID); err != nil {
			return err
		}
		shareWith = append(shareWith, o.GUID)
	}
	if err := a.store.CreateDomain(ctx, d); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("The domain name \"%s\" is already in use", name)
		}
		return fmt.Errorf("create domain %s: %w", name, err)
	}
	for _, o := range shareWith {
		if err := a.store.ShareDomain(ctx, d.GUID, o); err != nil {
			return fmt.Errorf("create domain %s: %w", name, err)
		}
		if !slices.Contains(d.SharedOrgGUIDs, o) {
			d.SharedOrgGUIDs = append(d.SharedOrgGUIDs, o)
		}
	}
	a.recordTenancyEvent(ctx, "audit.domain.create", "domain", d.GUID, d.Name, "", orgGUID)
	writeJSON(w, http.StatusCreated, a.presentDomain(d))
	return nil
}

// visibleDomain reports whether the caller may see and use d: shared
// domains are everyone's, a private one its org's.
func visibleDomain(ctx context.Context, d pando.Domain) bool {
	p := permsFrom(ctx)
	return d.OrgGUID == "" || p.seesOrg(d.OrgGUID) || slices.ContainsFunc(d.SharedOrgGUIDs, p.seesOrg)
}

// domainInOrg reports whether routes in org's spaces may use d: a shared
// domain, or a private one the org owns or that is shared with it.
func domainInOrg(d pando.Domain, org string) bool {
	return d.OrgGUID == "" || d.OrgGUID == org || slices.Contains(d.SharedOrgGUIDs, org)
}

// getVisibleDomain returns the domain, or not found if the caller may not
// see it.
func (a *API) getVisibleDomain(ctx context.Context, guid string) (pando.Domain, error) {
	d, err := a.store.GetDomain(ctx, guid)
	if err != nil {
		return pando.Domain{}, asNotFound(err, "Domain")
	}
	if !visibleDomain(ctx, d) {
		return pando.Domain{}, notFound("Domain")
	}
	return d, nil
}

func (a *API) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d, err := a.getVisibleDomain(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	p := permsFrom(ctx)
	if (d.OrgGUID == "" && !p.admin) || (d.OrgGUID != "" && !p.managesOrg(d.OrgGUID)) {
		return errNotAuthorized()
	}
	if d.Name == a.cfg.Domain {
		return invalid("The domain \"%s\" is the platform's default app domain and cannot be deleted", d.Name)
	}
	id := identityFrom(ctx)
	job := a.runJob(ctx, "domain.delete", "domain", d.GUID, func(ctx context.Context) error {
		return a.removeDomain(context.WithoutCancel(ctx), id, d)
	})
	a.writeJobAccepted(w, job)
	return nil
}

// removeDomain deletes the domain's routes (unmapping their apps), then
// the domain.
func (a *API) removeDomain(ctx context.Context, id Identity, d pando.Domain) error {
	routes, err := a.store.ListRoutes(ctx, pando.RouteFilter{DomainGUIDs: []string{d.GUID}})
	if err != nil {
		return fmt.Errorf("delete domain %s: %w", d.Name, err)
	}
	for _, rt := range routes {
		if err := a.removeRoute(ctx, id, rt); err != nil {
			return err
		}
	}
	if err := a.store.DeleteDomain(ctx, d.GUID); err != nil && !pando.IsNotFound(err) {
		return fmt.Errorf("delete domain %s: %w", d.Name, err)
	}
	a.recordTenancyEvent(ctx, "audit.domain.delete-request", "domain", d.GUID, d.Name, "", d.OrgGUID)
	return nil
}

// removeOrgDomains deletes the org's private domains (with the org).
func (a *API) removeOrgDomains(ctx context.Context, id Identity, orgGUID string) error {
	ds, err := a.store.ListDomains(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	for _, d := range ds {
		if d.OrgGUID == orgGUID {
			if err := a.removeDomain(ctx, id, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// domainsFor keeps the domains the caller sees; with org set, only the
// shared ones and that org's.
func domainsFor(ctx context.Context, ds []pando.Domain, org string) []pando.Domain {
	out := ds[:0:0]
	for _, d := range ds {
		if visibleDomain(ctx, d) && (org == "" || domainInOrg(d, org)) {
			out = append(out, d)
		}
	}
	return out
}

// Sharing a private domain with other orgs (cf share-private-domain,
// unshare-private-domain): its org's managers share it with orgs they also
// manage; a manager of either org may end a share, once no route in the
// other org uses it.

// checkShareTarget decides whether the caller may share d with org.
func (a *API) checkShareTarget(ctx context.Context, d pando.Domain, org string) error {
	p := permsFrom(ctx)
	if org == "" {
		return invalid("Organization guid can't be blank")
	}
	if _, err := a.store.GetOrg(ctx, org); err != nil || !p.seesOrg(org) {
		if err != nil && !pando.IsNotFound(err) {
			return err
		}
		return invalid("Organization with guid '%s' does not exist, or you do not have access to it.", org)
	}
	if org == d.OrgGUID {
		return invalid("Domain '%s' is owned by organization '%s' and cannot be shared with it.", d.Name, org)
	}
	if !p.managesOrg(d.OrgGUID) || !p.managesOrg(org) {
		return errNotAuthorized()
	}
	return nil
}

type sharedOrgsBody struct {
	Data []struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

func (a *API) presentSharedOrgs(d pando.Domain) map[string]any {
	data := make([]any, 0, len(d.SharedOrgGUIDs))
	for _, o := range d.SharedOrgGUIDs {
		data = append(data, map[string]any{"guid": o})
	}
	return map[string]any{"data": data}
}

func (a *API) postDomainShares(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d, err := a.getVisibleDomain(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var in sharedOrgsBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if d.OrgGUID == "" {
		return invalid("Domains can not be shared with other organizations unless they are scoped to an organization.")
	}
	if len(in.Data) == 0 {
		return invalid("Data must have at least one organization")
	}
	for _, o := range in.Data {
		if err := a.checkShareTarget(ctx, d, o.GUID); err != nil {
			return err
		}
	}
	for _, o := range in.Data {
		if err := a.store.ShareDomain(ctx, d.GUID, o.GUID); err != nil {
			return fmt.Errorf("share domain %s: %w", d.Name, err)
		}
		a.recordTenancyEvent(ctx, "audit.domain.share", "domain", d.GUID, d.Name, "", o.GUID)
	}
	if d, err = a.store.GetDomain(ctx, d.GUID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentSharedOrgs(d))
	return nil
}

func (a *API) deleteDomainShare(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d, err := a.getVisibleDomain(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	org := r.PathValue("org_guid")
	p := permsFrom(ctx)
	if !p.managesOrg(d.OrgGUID) && !p.managesOrg(org) {
		return errNotAuthorized()
	}
	if !slices.Contains(d.SharedOrgGUIDs, org) {
		return invalid("Unable to unshare domain from organization with guid '%s'. Ensure the domain is shared to this organization.", org)
	}
	spaces, err := a.store.ListSpaces(ctx, nil, nil, []string{org})
	if err != nil {
		return err
	}
	var inOrg []string
	for _, s := range spaces {
		inOrg = append(inOrg, s.GUID)
	}
	if len(inOrg) > 0 {
		routes, err := a.store.ListRoutes(ctx, pando.RouteFilter{DomainGUIDs: []string{d.GUID}, SpaceGUIDs: inOrg})
		if err != nil {
			return err
		}
		if len(routes) > 0 {
			return invalid("This domain has %d route(s) in organization '%s'. Delete them before unsharing the domain.", len(routes), org)
		}
	}
	if err := a.store.UnshareDomain(ctx, d.GUID, org); err != nil && !pando.IsNotFound(err) {
		return fmt.Errorf("unshare domain %s: %w", d.Name, err)
	}
	a.recordTenancyEvent(ctx, "audit.domain.unshare", "domain", d.GUID, d.Name, "", org)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
