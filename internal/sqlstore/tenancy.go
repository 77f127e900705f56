package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pandoplatform/pando"
)

// UpdateOrg renames an org.
func (s *Store) UpdateOrg(ctx context.Context, o pando.Org) error {
	ok, err := s.update(ctx, "orgs", o.GUID, []string{"name", "updated_at"}, []any{o.Name, nanos(orNow(o.UpdatedAt))})
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

// UpdateSpace renames a space.
func (s *Store) UpdateSpace(ctx context.Context, sp pando.Space) error {
	ok, err := s.update(ctx, "spaces", sp.GUID, []string{"name", "updated_at"}, []any{sp.Name, nanos(orNow(sp.UpdatedAt))})
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
