package sqlstore

import (
	"context"

	"github.com/pandoplatform/pando"
)

const orgCols = "guid, name, quota_guid, created_at, updated_at"

func scanOrg(sc scanner) (pando.Org, error) {
	var o pando.Org
	var created, updated int64
	if err := sc.Scan(&o.GUID, &o.Name, &o.QuotaGUID, &created, &updated); err != nil {
		return o, err
	}
	o.CreatedAt, o.UpdatedAt = fromNanos(created), fromNanos(updated)
	return o, nil
}

// CreateOrg adds an org; names are unique.
func (s *Store) CreateOrg(ctx context.Context, o pando.Org) error {
	o.CreatedAt = orNow(o.CreatedAt)
	o.UpdatedAt = orNow(o.UpdatedAt)
	err := s.insert(ctx, "orgs", []string{"guid", "name", "quota_guid", "created_at", "updated_at"},
		[]any{o.GUID, o.Name, o.QuotaGUID, nanos(o.CreatedAt), nanos(o.UpdatedAt)})
	return s.writeErr(err, "create", "org", o.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "org name %q is already taken", o.Name)
	}, nil)
}

// GetOrg returns the org with guid.
func (s *Store) GetOrg(ctx context.Context, guid string) (pando.Org, error) {
	return getOne(ctx, s, "org", guid, "SELECT "+orgCols+" FROM orgs WHERE guid = ?", []any{guid}, scanOrg)
}

// ListOrgs returns orgs matching any of guids and any of names.
func (s *Store) ListOrgs(ctx context.Context, guids, names []string) ([]pando.Org, error) {
	var w where
	w.in("guid", guids)
	w.in("name", names)
	return list(ctx, s, "orgs", "SELECT "+orgCols+" FROM orgs"+w.String()+creationOrder, w.args, scanOrg)
}

const spaceCols = "guid, name, org_guid, quota_guid, created_at, updated_at"

func scanSpace(sc scanner) (pando.Space, error) {
	var sp pando.Space
	var created, updated int64
	if err := sc.Scan(&sp.GUID, &sp.Name, &sp.OrgGUID, &sp.QuotaGUID, &created, &updated); err != nil {
		return sp, err
	}
	sp.CreatedAt, sp.UpdatedAt = fromNanos(created), fromNanos(updated)
	return sp, nil
}

// CreateSpace adds a space to an existing org; names are unique per org.
func (s *Store) CreateSpace(ctx context.Context, sp pando.Space) error {
	sp.CreatedAt = orNow(sp.CreatedAt)
	sp.UpdatedAt = orNow(sp.UpdatedAt)
	err := s.insert(ctx, "spaces", []string{"guid", "name", "org_guid", "quota_guid", "created_at", "updated_at"},
		[]any{sp.GUID, sp.Name, sp.OrgGUID, sp.QuotaGUID, nanos(sp.CreatedAt), nanos(sp.UpdatedAt)})
	return s.writeErr(err, "create", "space", sp.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "space name %q is already taken in this org", sp.Name)
	}, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "org %s not found", sp.OrgGUID)
	})
}

// GetSpace returns the space with guid.
func (s *Store) GetSpace(ctx context.Context, guid string) (pando.Space, error) {
	return getOne(ctx, s, "space", guid, "SELECT "+spaceCols+" FROM spaces WHERE guid = ?", []any{guid}, scanSpace)
}

// ListSpaces returns spaces matching the filters; empty filters match all.
func (s *Store) ListSpaces(ctx context.Context, guids, names, orgGUIDs []string) ([]pando.Space, error) {
	var w where
	w.in("guid", guids)
	w.in("name", names)
	w.in("org_guid", orgGUIDs)
	return list(ctx, s, "spaces", "SELECT "+spaceCols+" FROM spaces"+w.String()+creationOrder, w.args, scanSpace)
}
