package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pandoplatform/pando"
)

// UpdateOrg renames an org and sets its quota.
func (s *Store) UpdateOrg(ctx context.Context, o pando.Org) error {
	ok, err := s.update(ctx, "orgs", o.GUID, []string{"name", "quota_guid", "updated_at"}, []any{o.Name, o.QuotaGUID, nanos(orNow(o.UpdatedAt))})
	if err = s.writeErr(err, "update", "org", o.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "org name %q is already taken", o.Name)
	}, nil); err != nil {
		return err
	}
	if !ok {
		return notFound("org", o.GUID)
	}
	return nil
}

// DeleteOrg deletes an org; its spaces must be gone. Its roles go with it.
func (s *Store) DeleteOrg(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "orgs", guid)
	if err = s.writeErr(err, "delete", "org", guid, nil, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "org %s still has spaces", guid)
	}); err != nil {
		return err
	}
	if !ok {
		return notFound("org", guid)
	}
	return nil
}

// UpdateSpace renames a space and sets its quota.
func (s *Store) UpdateSpace(ctx context.Context, sp pando.Space) error {
	ok, err := s.update(ctx, "spaces", sp.GUID, []string{"name", "quota_guid", "updated_at"}, []any{sp.Name, sp.QuotaGUID, nanos(orNow(sp.UpdatedAt))})
	if err = s.writeErr(err, "update", "space", sp.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "space name %q is already taken in this org", sp.Name)
	}, nil); err != nil {
		return err
	}
	if !ok {
		return notFound("space", sp.GUID)
	}
	return nil
}

// DeleteSpace deletes a space; its apps and routes must be gone. Its roles
// go with it.
func (s *Store) DeleteSpace(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "spaces", guid)
	if err = s.writeErr(err, "delete", "space", guid, nil, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "space %s still has apps or routes", guid)
	}); err != nil {
		return err
	}
	if !ok {
		return notFound("space", guid)
	}
	return nil
}

// ListUsers returns users matching any of guids and any of names.
func (s *Store) ListUsers(ctx context.Context, guids, names []string) ([]pando.User, error) {
	var w where
	w.in("guid", guids)
	w.in("name", names)
	return list(ctx, s, "users", "SELECT "+userCols+" FROM users"+w.String()+creationOrder, w.args, scanUser)
}

// DeleteUser deletes a user; their roles go with them.
func (s *Store) DeleteUser(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "users", guid)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", guid, err)
	}
	if !ok {
		return notFound("user", guid)
	}
	return nil
}

const roleCols = "guid, type, user_guid, org_guid, space_guid, created_at, updated_at"

func scanRole(sc scanner) (pando.Role, error) {
	var r pando.Role
	var org, space sql.NullString
	var created, updated int64
	if err := sc.Scan(&r.GUID, &r.Type, &r.UserGUID, &org, &space, &created, &updated); err != nil {
		return r, err
	}
	r.OrgGUID, r.SpaceGUID = org.String, space.String
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	return r, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateRole gives a user a role in an org or a space.
func (s *Store) CreateRole(ctx context.Context, r pando.Role) error {
	if (r.OrgGUID == "") == (r.SpaceGUID == "") {
		return pando.Errorf(pando.EInvalid, "role %s needs an org or a space", r.GUID)
	}
	scope := r.OrgGUID + r.SpaceGUID
	err := s.insert(ctx, "roles", []string{"guid", "type", "user_guid", "org_guid", "space_guid", "scope_guid", "created_at", "updated_at"},
		[]any{r.GUID, r.Type, r.UserGUID, nullable(r.OrgGUID), nullable(r.SpaceGUID), scope, nanos(orNow(r.CreatedAt)), nanos(orNow(r.UpdatedAt))})
	return s.writeErr(err, "create", "role", r.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "user %s already has role %s in %s", r.UserGUID, r.Type, scope)
	}, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "role %s: user, org or space not found", r.GUID)
	})
}

// GetRole returns the role with guid.
func (s *Store) GetRole(ctx context.Context, guid string) (pando.Role, error) {
	return getOne(ctx, s, "role", guid, "SELECT "+roleCols+" FROM roles WHERE guid = ?", []any{guid}, scanRole)
}

// DeleteRole deletes a role.
func (s *Store) DeleteRole(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "roles", guid)
	if err != nil {
		return fmt.Errorf("delete role %s: %w", guid, err)
	}
	if !ok {
		return notFound("role", guid)
	}
	return nil
}

// ListRoles returns roles matching the filter; empty slices match all.
func (s *Store) ListRoles(ctx context.Context, f pando.RoleFilter) ([]pando.Role, error) {
	var w where
	w.in("guid", f.GUIDs)
	w.in("type", f.Types)
	w.in("user_guid", f.UserGUIDs)
	w.in("org_guid", f.OrgGUIDs)
	w.in("space_guid", f.SpaceGUIDs)
	return list(ctx, s, "roles", "SELECT "+roleCols+" FROM roles"+w.String()+creationOrder, w.args, scanRole)
}

const quotaCols = "guid, kind, name, org_guid, limits, created_at, updated_at"

func scanQuota(sc scanner) (pando.Quota, error) {
	var q pando.Quota
	var limits string
	var created, updated int64
	if err := sc.Scan(&q.GUID, &q.Kind, &q.Name, &q.OrgGUID, &limits, &created, &updated); err != nil {
		return q, err
	}
	if err := fromJSON(limits, &q.Limits); err != nil {
		return q, fmt.Errorf("quota %s limits: %w", q.GUID, err)
	}
	q.CreatedAt, q.UpdatedAt = fromNanos(created), fromNanos(updated)
	return q, nil
}

// CreateQuota adds an org or space quota.
func (s *Store) CreateQuota(ctx context.Context, q pando.Quota) error {
	limits, err := toJSON(q.Limits)
	if err != nil {
		return fmt.Errorf("create quota %s: %w", q.GUID, err)
	}
	err = s.insert(ctx, "quotas", []string{"guid", "kind", "name", "org_guid", "limits", "created_at", "updated_at"},
		[]any{q.GUID, q.Kind, q.Name, q.OrgGUID, limits, nanos(orNow(q.CreatedAt)), nanos(orNow(q.UpdatedAt))})
	return s.writeErr(err, "create", "quota", q.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "quota name %q is already taken", q.Name)
	}, nil)
}

// GetQuota returns the quota with guid.
func (s *Store) GetQuota(ctx context.Context, guid string) (pando.Quota, error) {
	return getOne(ctx, s, "quota", guid, "SELECT "+quotaCols+" FROM quotas WHERE guid = ?", []any{guid}, scanQuota)
}

// UpdateQuota replaces a quota's name and limits.
func (s *Store) UpdateQuota(ctx context.Context, q pando.Quota) error {
	limits, err := toJSON(q.Limits)
	if err != nil {
		return fmt.Errorf("update quota %s: %w", q.GUID, err)
	}
	ok, err := s.update(ctx, "quotas", q.GUID, []string{"name", "limits", "updated_at"}, []any{q.Name, limits, nanos(orNow(q.UpdatedAt))})
	if err = s.writeErr(err, "update", "quota", q.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "quota name %q is already taken", q.Name)
	}, nil); err != nil {
		return err
	}
	if !ok {
		return notFound("quota", q.GUID)
	}
	return nil
}

// DeleteQuota deletes a quota; orgs and spaces that had it have none.
func (s *Store) DeleteQuota(ctx context.Context, guid string) error {
	return s.InTx(ctx, func(tx pando.Store) error {
		st := tx.(*Store)
		for _, table := range []string{"orgs", "spaces"} {
			if _, err := st.exec(ctx, "UPDATE "+table+" SET quota_guid = '' WHERE quota_guid = ?", guid); err != nil {
				return fmt.Errorf("delete quota %s: %w", guid, err)
			}
		}
		ok, err := st.remove(ctx, "quotas", guid)
		if err != nil {
			return fmt.Errorf("delete quota %s: %w", guid, err)
		}
		if !ok {
			return notFound("quota", guid)
		}
		return nil
	})
}

// ListQuotas returns quotas of kind matching the filters.
func (s *Store) ListQuotas(ctx context.Context, kind string, guids, names, orgGUIDs []string) ([]pando.Quota, error) {
	var w where
	w.in("kind", []string{kind})
	w.in("guid", guids)
	w.in("name", names)
	w.in("org_guid", orgGUIDs)
	return list(ctx, s, "quotas", "SELECT "+quotaCols+" FROM quotas"+w.String()+creationOrder, w.args, scanQuota)
}
