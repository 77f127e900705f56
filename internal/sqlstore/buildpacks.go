package sqlstore

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
)

const buildpackCols = "guid, name, stack, position, enabled, locked, state, filename, sha256, size, created_at, updated_at"

func scanBuildpack(sc scanner) (pando.Buildpack, error) {
	var b pando.Buildpack
	var created, updated int64
	if err := sc.Scan(&b.GUID, &b.Name, &b.Stack, &b.Position, &b.Enabled, &b.Locked, &b.State, &b.Filename,
		&b.SHA256, &b.Size, &created, &updated); err != nil {
		return b, err
	}
	b.CreatedAt, b.UpdatedAt = fromNanos(created), fromNanos(updated)
	return b, nil
}

func buildpackRow(b pando.Buildpack) ([]string, []any) {
	return []string{"name", "stack", "position", "enabled", "locked", "state", "filename", "sha256", "size", "updated_at"},
		[]any{b.Name, b.Stack, b.Position, b.Enabled, b.Locked, b.State, b.Filename, b.SHA256, b.Size, nanos(orNow(b.UpdatedAt))}
}

func (s *Store) buildpackErr(err error, op string, b pando.Buildpack) error {
	return s.writeErr(err, op, "buildpack", b.GUID, func() *pando.Error {
		if b.Stack == "" {
			return pando.Errorf(pando.EConflict, "buildpack name %q is already taken", b.Name)
		}
		return pando.Errorf(pando.EConflict, "buildpack name %q is already taken for stack %q", b.Name, b.Stack)
	}, nil)
}

// CreateBuildpack adds an admin buildpack; name+stack is unique. Positions
// are stored as given: renumbering the others is the caller's job.
func (s *Store) CreateBuildpack(ctx context.Context, b pando.Buildpack) error {
	cols, args := buildpackRow(b)
	cols = append(cols, "guid", "created_at")
	args = append(args, b.GUID, nanos(orNow(b.CreatedAt)))
	return s.buildpackErr(s.insert(ctx, "buildpacks", cols, args), "create", b)
}

// GetBuildpack returns the buildpack with guid.
func (s *Store) GetBuildpack(ctx context.Context, guid string) (pando.Buildpack, error) {
	return getOne(ctx, s, "buildpack", guid, "SELECT "+buildpackCols+" FROM buildpacks WHERE guid = ?", []any{guid}, scanBuildpack)
}

// UpdateBuildpack replaces every field of the buildpack but its GUID and
// CreatedAt. A zero UpdatedAt is set to now.
func (s *Store) UpdateBuildpack(ctx context.Context, b pando.Buildpack) error {
	cols, args := buildpackRow(b)
	ok, err := s.update(ctx, "buildpacks", b.GUID, cols, args)
	if err != nil {
		return s.buildpackErr(err, "update", b)
	}
	if !ok {
		return notFound("buildpack", b.GUID)
	}
	return nil
}

// DeleteBuildpack deletes the buildpack with guid.
func (s *Store) DeleteBuildpack(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "buildpacks", guid)
	if err != nil {
		return fmt.Errorf("delete buildpack %s: %w", guid, err)
	}
	if !ok {
		return notFound("buildpack", guid)
	}
	return nil
}

// ListBuildpacks returns buildpacks with the given names (all when empty) in
// detect order: by position, then name.
func (s *Store) ListBuildpacks(ctx context.Context, names []string) ([]pando.Buildpack, error) {
	var w where
	w.in("name", names)
	return list(ctx, s, "buildpacks", "SELECT "+buildpackCols+" FROM buildpacks"+w.String()+" ORDER BY position, "+s.d.bytewise("name")+", "+s.d.bytewise("stack")+", seq", w.args, scanBuildpack)
}

const stackCols = "guid, name, description, is_default, created_at, updated_at"

func scanStack(sc scanner) (pando.Stack, error) {
	var st pando.Stack
	var created, updated int64
	if err := sc.Scan(&st.GUID, &st.Name, &st.Description, &st.Default, &created, &updated); err != nil {
		return st, err
	}
	st.CreatedAt, st.UpdatedAt = fromNanos(created), fromNanos(updated)
	return st, nil
}

// CreateStack adds a stack; names are unique.
func (s *Store) CreateStack(ctx context.Context, st pando.Stack) error {
	err := s.insert(ctx, "stacks", []string{"guid", "name", "description", "is_default", "created_at", "updated_at"},
		[]any{st.GUID, st.Name, st.Description, st.Default, nanos(orNow(st.CreatedAt)), nanos(orNow(st.UpdatedAt))})
	return s.writeErr(err, "create", "stack", st.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "stack name %q is already taken", st.Name)
	}, nil)
}

// ListStacks returns stacks with the given names (all when empty).
func (s *Store) ListStacks(ctx context.Context, names []string) ([]pando.Stack, error) {
	var w where
	w.in("name", names)
	return list(ctx, s, "stacks", "SELECT "+stackCols+" FROM stacks"+w.String()+creationOrder, w.args, scanStack)
}
