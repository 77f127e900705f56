package cc

import (
	"context"
	"fmt"
	"net/http"
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
	if len(in.Relationships.SharedOrganizations.Data) > 0 {
		return invalid("Sharing a private domain with other organizations is not supported")
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
	}
	now := a.now()
	d := pando.Domain{GUID: a.newGUID(), Name: name, Internal: in.Internal, OrgGUID: orgGUID, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateDomain(ctx, d); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("The domain name \"%s\" is already in use", name)
		}
		return fmt.Errorf("create domain %s: %w", name, err)
	}
	a.recordTenancyEvent(ctx, "audit.domain.create", "domain", d.GUID, d.Name, "", orgGUID)
	writeJSON(w, http.StatusCreated, a.presentDomain(d))
	return nil
}

// visibleDomain reports whether the caller may see and use d: shared
// domains are everyone's, a private one its org's.
func visibleDomain(ctx context.Context, d pando.Domain) bool {
	return d.OrgGUID == "" || permsFrom(ctx).seesOrg(d.OrgGUID)
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
		if visibleDomain(ctx, d) && (org == "" || d.OrgGUID == "" || d.OrgGUID == org) {
			out = append(out, d)
		}
	}
	return out
}
