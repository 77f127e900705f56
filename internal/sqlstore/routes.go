package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/pandoplatform/pando"
)

const domainCols = "guid, name, internal, org_guid, created_at, updated_at"

func scanDomain(sc scanner) (pando.Domain, error) {
	var d pando.Domain
	var created, updated int64
	if err := sc.Scan(&d.GUID, &d.Name, &d.Internal, &d.OrgGUID, &created, &updated); err != nil {
		return d, err
	}
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	return d, nil
}

// CreateDomain adds a domain; names are unique.
func (s *Store) CreateDomain(ctx context.Context, d pando.Domain) error {
	err := s.insert(ctx, "domains", []string{"guid", "name", "internal", "org_guid", "created_at", "updated_at"},
		[]any{d.GUID, d.Name, d.Internal, d.OrgGUID, nanos(orNow(d.CreatedAt)), nanos(orNow(d.UpdatedAt))})
	return s.writeErr(err, "create", "domain", d.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "domain name %q is already taken", d.Name)
	}, nil)
}

// GetDomain returns the domain with guid.
func (s *Store) GetDomain(ctx context.Context, guid string) (pando.Domain, error) {
	d, err := getOne(ctx, s, "domain", guid, "SELECT "+domainCols+" FROM domains WHERE guid = ?", []any{guid}, scanDomain)
	if err != nil || d.OrgGUID == "" {
		return d, err
	}
	ds := []pando.Domain{d}
	err = s.addDomainShares(ctx, ds)
	return ds[0], err
}

// ListDomains returns domains matching the filters; empty filters match all.
func (s *Store) ListDomains(ctx context.Context, guids, names []string) ([]pando.Domain, error) {
	var w where
	w.in("guid", guids)
	w.in("name", names)
	ds, err := list(ctx, s, "domains", "SELECT "+domainCols+" FROM domains"+w.String()+creationOrder, w.args, scanDomain)
	if err != nil {
		return nil, err
	}
	return ds, s.addDomainShares(ctx, ds)
}

// addDomainShares fills in the orgs each private domain is shared with.
func (s *Store) addDomainShares(ctx context.Context, ds []pando.Domain) error {
	var private []string
	at := map[string]int{}
	for i, d := range ds {
		if d.OrgGUID != "" {
			private = append(private, d.GUID)
			at[d.GUID] = i
		}
	}
	if len(private) == 0 {
		return nil
	}
	var w where
	w.in("domain_guid", private)
	type share struct{ domain, org string }
	shares, err := list(ctx, s, "domain shares", "SELECT domain_guid, org_guid FROM domain_shares"+w.String()+" ORDER BY created_at, "+s.d.bytewise("org_guid"), w.args,
		func(sc scanner) (share, error) {
			var v share
			return v, sc.Scan(&v.domain, &v.org)
		})
	if err != nil {
		return err
	}
	for _, v := range shares {
		d := &ds[at[v.domain]]
		d.SharedOrgGUIDs = append(d.SharedOrgGUIDs, v.org)
	}
	return nil
}

// ShareDomain shares a private domain with another org; sharing it again
// changes nothing.
func (s *Store) ShareDomain(ctx context.Context, domainGUID, orgGUID string) error {
	_, err := s.exec(ctx, `INSERT INTO domain_shares (domain_guid, org_guid, created_at) VALUES (?, ?, ?)
ON CONFLICT (domain_guid, org_guid) DO NOTHING`, domainGUID, orgGUID, nanos(orNow(time.Time{})))
	return s.writeErr(err, "share", "domain", domainGUID, nil, func() *pando.Error {
		return pando.Errorf(pando.ENotFound, "domain %s or org %s not found", domainGUID, orgGUID)
	})
}

// UnshareDomain ends a share; ENotFound when the domain was not shared
// with the org.
func (s *Store) UnshareDomain(ctx context.Context, domainGUID, orgGUID string) error {
	res, err := s.exec(ctx, "DELETE FROM domain_shares WHERE domain_guid = ? AND org_guid = ?", domainGUID, orgGUID)
	if err != nil {
		return fmt.Errorf("unshare domain %s from org %s: %w", domainGUID, orgGUID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return pando.Errorf(pando.ENotFound, "domain %s is not shared with org %s", domainGUID, orgGUID)
	}
	return nil
}

// DeleteDomain deletes a domain; one that routes still use is refused.
func (s *Store) DeleteDomain(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "domains", guid)
	if err = s.writeErr(err, "delete", "domain", guid, nil, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "domain %s still has routes", guid)
	}); err != nil {
		return err
	}
	if !ok {
		return notFound("domain", guid)
	}
	return nil
}

const routeCols = "guid, host, path, domain_guid, space_guid, created_at, updated_at"

func scanRoute(sc scanner) (pando.Route, error) {
	var r pando.Route
	var created, updated int64
	if err := sc.Scan(&r.GUID, &r.Host, &r.Path, &r.DomainGUID, &r.SpaceGUID, &created, &updated); err != nil {
		return r, err
	}
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	return r, nil
}

// CreateRoute adds a route; host+domain+path is unique.
func (s *Store) CreateRoute(ctx context.Context, r pando.Route) error {
	err := s.insert(ctx, "routes", []string{"guid", "host", "path", "domain_guid", "space_guid", "created_at", "updated_at"},
		[]any{r.GUID, r.Host, r.Path, r.DomainGUID, r.SpaceGUID, nanos(orNow(r.CreatedAt)), nanos(orNow(r.UpdatedAt))})
	return s.writeErr(err, "create", "route", r.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "route with host %q and path %q already exists for domain %s", r.Host, r.Path, r.DomainGUID)
	}, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "domain %s or space %s not found", r.DomainGUID, r.SpaceGUID)
	})
}

// GetRoute returns the route with guid.
func (s *Store) GetRoute(ctx context.Context, guid string) (pando.Route, error) {
	return getOne(ctx, s, "route", guid, "SELECT "+routeCols+" FROM routes WHERE guid = ?", []any{guid}, scanRoute)
}

// DeleteRoute deletes the route and its destinations.
func (s *Store) DeleteRoute(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "routes", guid)
	if err != nil {
		return fmt.Errorf("delete route %s: %w", guid, err)
	}
	if !ok {
		return notFound("route", guid)
	}
	return nil
}

// ListRoutes returns routes matching the filter; empty slices match all.
// AppGUIDs selects routes with a destination to one of those apps.
func (s *Store) ListRoutes(ctx context.Context, f pando.RouteFilter) ([]pando.Route, error) {
	var w where
	w.in("guid", f.GUIDs)
	w.in("host", f.Hosts)
	w.in("path", f.Paths)
	w.in("domain_guid", f.DomainGUIDs)
	w.in("space_guid", f.SpaceGUIDs)
	w.inSub("guid", "route_guid", "route_destinations", "app_guid", f.AppGUIDs)
	return list(ctx, s, "routes", "SELECT "+routeCols+" FROM routes"+w.String()+creationOrder, w.args, scanRoute)
}

const destinationCols = "guid, route_guid, app_guid, process_type, port, created_at"

func scanDestination(sc scanner) (pando.RouteDestination, error) {
	var d pando.RouteDestination
	var created int64
	if err := sc.Scan(&d.GUID, &d.RouteGUID, &d.AppGUID, &d.ProcessType, &d.Port, &created); err != nil {
		return d, err
	}
	d.CreatedAt = fromNanos(created)
	return d, nil
}

// CreateRouteDestination maps a route to an app's process type;
// route+app+process type is unique.
func (s *Store) CreateRouteDestination(ctx context.Context, d pando.RouteDestination) error {
	err := s.insert(ctx, "route_destinations", []string{"guid", "route_guid", "app_guid", "process_type", "port", "created_at"},
		[]any{d.GUID, d.RouteGUID, d.AppGUID, d.ProcessType, d.Port, nanos(orNow(d.CreatedAt))})
	return s.writeErr(err, "create", "route destination", d.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "route %s already has a destination for app %s process type %q", d.RouteGUID, d.AppGUID, d.ProcessType)
	}, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "route %s or app %s not found", d.RouteGUID, d.AppGUID)
	})
}

// DeleteRouteDestination deletes the destination with guid.
func (s *Store) DeleteRouteDestination(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "route_destinations", guid)
	if err != nil {
		return fmt.Errorf("delete route destination %s: %w", guid, err)
	}
	if !ok {
		return notFound("route destination", guid)
	}
	return nil
}

// ListRouteDestinations returns destinations matching the filters; empty
// filters match all.
func (s *Store) ListRouteDestinations(ctx context.Context, routeGUIDs, appGUIDs []string) ([]pando.RouteDestination, error) {
	var w where
	w.in("route_guid", routeGUIDs)
	w.in("app_guid", appGUIDs)
	return list(ctx, s, "route destinations", "SELECT "+destinationCols+" FROM route_destinations"+w.String()+creationOrder, w.args, scanDestination)
}
