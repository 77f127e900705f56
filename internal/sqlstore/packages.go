package sqlstore

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
)

// appChildErr is the foreign key message for rows that belong to an app.
func appChildErr(appGUID string) func() *pando.Error {
	return func() *pando.Error { return pando.Errorf(pando.EInvalid, "app %s not found", appGUID) }
}

const packageCols = "guid, app_guid, type, state, sha1, sha256, size, error, docker_image, docker_username, docker_password, files_sha256, created_at, updated_at"

func scanPackage(sc scanner) (pando.Package, error) {
	var p pando.Package
	var created, updated int64
	if err := sc.Scan(&p.GUID, &p.AppGUID, &p.Type, &p.State, &p.SHA1, &p.SHA256, &p.Size, &p.Error,
		&p.DockerImage, &p.DockerUsername, &p.DockerPassword, &p.FilesSHA256, &created, &updated); err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	return p, nil
}

func packageRow(p pando.Package) ([]string, []any) {
	return []string{"app_guid", "type", "state", "sha1", "sha256", "size", "error", "docker_image", "docker_username", "docker_password", "files_sha256", "updated_at"},
		[]any{p.AppGUID, p.Type, p.State, p.SHA1, p.SHA256, p.Size, p.Error, p.DockerImage, p.DockerUsername, p.DockerPassword, p.FilesSHA256, nanos(orNow(p.UpdatedAt))}
}

// CreatePackage adds a package to an existing app.
func (s *Store) CreatePackage(ctx context.Context, p pando.Package) error {
	cols, args := packageRow(p)
	cols = append(cols, "guid", "created_at")
	args = append(args, p.GUID, nanos(orNow(p.CreatedAt)))
	return s.writeErr(s.insert(ctx, "packages", cols, args), "create", "package", p.GUID, nil, appChildErr(p.AppGUID))
}

// GetPackage returns the package with guid.
func (s *Store) GetPackage(ctx context.Context, guid string) (pando.Package, error) {
	return getOne(ctx, s, "package", guid, "SELECT "+packageCols+" FROM packages WHERE guid = ?", []any{guid}, scanPackage)
}

// UpdatePackage replaces every field of the package but its GUID and
// CreatedAt. A zero UpdatedAt is set to now.
func (s *Store) UpdatePackage(ctx context.Context, p pando.Package) error {
	cols, args := packageRow(p)
	ok, err := s.update(ctx, "packages", p.GUID, cols, args)
	if err != nil {
		return s.writeErr(err, "update", "package", p.GUID, nil, appChildErr(p.AppGUID))
	}
	if !ok {
		return notFound("package", p.GUID)
	}
	return nil
}

// DeletePackage deletes the package with guid.
func (s *Store) DeletePackage(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "packages", guid)
	if err != nil {
		return fmt.Errorf("delete package %s: %w", guid, err)
	}
	if !ok {
		return notFound("package", guid)
	}
	return nil
}

// ListPackages returns the packages of the given apps (all when empty).
func (s *Store) ListPackages(ctx context.Context, appGUIDs []string) ([]pando.Package, error) {
	var w where
	w.in("app_guid", appGUIDs)
	return list(ctx, s, "packages", "SELECT "+packageCols+" FROM packages"+w.String()+creationOrder, w.args, scanPackage)
}

const buildCols = "guid, app_guid, package_guid, state, error, droplet_guid, lifecycle_type, buildpacks, stack, " +
	"staging_memory_mb, staging_disk_mb, created_by_guid, created_by_name, created_at, updated_at"

func scanBuild(sc scanner) (pando.Build, error) {
	var b pando.Build
	var buildpacks string
	var created, updated int64
	if err := sc.Scan(&b.GUID, &b.AppGUID, &b.PackageGUID, &b.State, &b.Error, &b.DropletGUID, &b.LifecycleType,
		&buildpacks, &b.Stack, &b.StagingMemoryMB, &b.StagingDiskMB, &b.CreatedByGUID, &b.CreatedByName,
		&created, &updated); err != nil {
		return b, err
	}
	if err := fromJSON(buildpacks, &b.Buildpacks); err != nil {
		return b, fmt.Errorf("build %s buildpacks: %w", b.GUID, err)
	}
	b.CreatedAt, b.UpdatedAt = fromNanos(created), fromNanos(updated)
	return b, nil
}

func buildRow(b pando.Build) ([]string, []any, error) {
	buildpacks, err := toJSON(b.Buildpacks)
	if err != nil {
		return nil, nil, err
	}
	return []string{"app_guid", "package_guid", "state", "error", "droplet_guid", "lifecycle_type", "buildpacks", "stack",
			"staging_memory_mb", "staging_disk_mb", "created_by_guid", "created_by_name", "updated_at"},
		[]any{b.AppGUID, b.PackageGUID, b.State, b.Error, b.DropletGUID, b.LifecycleType, buildpacks, b.Stack,
			b.StagingMemoryMB, b.StagingDiskMB, b.CreatedByGUID, b.CreatedByName, nanos(orNow(b.UpdatedAt))},
		nil
}

// CreateBuild adds a build to an existing app.
func (s *Store) CreateBuild(ctx context.Context, b pando.Build) error {
	cols, args, err := buildRow(b)
	if err != nil {
		return fmt.Errorf("create build %s: %w", b.GUID, err)
	}
	cols = append(cols, "guid", "created_at")
	args = append(args, b.GUID, nanos(orNow(b.CreatedAt)))
	return s.writeErr(s.insert(ctx, "builds", cols, args), "create", "build", b.GUID, nil, appChildErr(b.AppGUID))
}

// GetBuild returns the build with guid.
func (s *Store) GetBuild(ctx context.Context, guid string) (pando.Build, error) {
	return getOne(ctx, s, "build", guid, "SELECT "+buildCols+" FROM builds WHERE guid = ?", []any{guid}, scanBuild)
}

// UpdateBuild replaces every field of the build but its GUID and CreatedAt.
// A zero UpdatedAt is set to now.
func (s *Store) UpdateBuild(ctx context.Context, b pando.Build) error {
	cols, args, err := buildRow(b)
	if err != nil {
		return fmt.Errorf("update build %s: %w", b.GUID, err)
	}
	ok, err := s.update(ctx, "builds", b.GUID, cols, args)
	if err != nil {
		return s.writeErr(err, "update", "build", b.GUID, nil, appChildErr(b.AppGUID))
	}
	if !ok {
		return notFound("build", b.GUID)
	}
	return nil
}

// ListBuilds returns builds of the given apps in the given states (empty
// filters match all).
func (s *Store) ListBuilds(ctx context.Context, appGUIDs, states []string) ([]pando.Build, error) {
	var w where
	w.in("app_guid", appGUIDs)
	w.in("state", states)
	return list(ctx, s, "builds", "SELECT "+buildCols+" FROM builds"+w.String()+creationOrder, w.args, scanBuild)
}

const dropletCols = "guid, app_guid, package_guid, state, error, lifecycle_type, process_types, execution_metadata, " +
	"detected_buildpack, buildpack_name, buildpack_version, buildpacks, stack, image, sha1, sha256, size, staging_inputs, created_at, updated_at"

func scanDroplet(sc scanner) (pando.Droplet, error) {
	var d pando.Droplet
	var processTypes, buildpacks string
	var created, updated int64
	if err := sc.Scan(&d.GUID, &d.AppGUID, &d.PackageGUID, &d.State, &d.Error, &d.LifecycleType, &processTypes,
		&d.ExecutionMetadata, &d.DetectedBuildpack, &d.BuildpackName, &d.BuildpackVersion, &buildpacks, &d.Stack, &d.Image,
		&d.SHA1, &d.SHA256, &d.Size, &d.StagingInputs, &created, &updated); err != nil {
		return d, err
	}
	if err := fromJSON(buildpacks, &d.Buildpacks); err != nil {
		return d, fmt.Errorf("droplet %s buildpacks: %w", d.GUID, err)
	}
	if err := fromJSON(processTypes, &d.ProcessTypes); err != nil {
		return d, fmt.Errorf("droplet %s process types: %w", d.GUID, err)
	}
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	return d, nil
}

func dropletRow(d pando.Droplet) ([]string, []any, error) {
	processTypes, err := toJSON(d.ProcessTypes)
	if err != nil {
		return nil, nil, err
	}
	buildpacks, err := toJSON(d.Buildpacks)
	if err != nil {
		return nil, nil, err
	}
	return []string{"app_guid", "package_guid", "state", "error", "lifecycle_type", "process_types", "execution_metadata",
			"detected_buildpack", "buildpack_name", "buildpack_version", "buildpacks", "stack", "image", "sha1", "sha256", "size", "staging_inputs", "updated_at"},
		[]any{d.AppGUID, d.PackageGUID, d.State, d.Error, d.LifecycleType, processTypes, d.ExecutionMetadata,
			d.DetectedBuildpack, d.BuildpackName, d.BuildpackVersion, buildpacks, d.Stack, d.Image, d.SHA1, d.SHA256, d.Size, d.StagingInputs, nanos(orNow(d.UpdatedAt))},
		nil
}

// CreateDroplet adds a droplet to an existing app.
func (s *Store) CreateDroplet(ctx context.Context, d pando.Droplet) error {
	cols, args, err := dropletRow(d)
	if err != nil {
		return fmt.Errorf("create droplet %s: %w", d.GUID, err)
	}
	cols = append(cols, "guid", "created_at")
	args = append(args, d.GUID, nanos(orNow(d.CreatedAt)))
	return s.writeErr(s.insert(ctx, "droplets", cols, args), "create", "droplet", d.GUID, nil, appChildErr(d.AppGUID))
}

// GetDroplet returns the droplet with guid.
func (s *Store) GetDroplet(ctx context.Context, guid string) (pando.Droplet, error) {
	return getOne(ctx, s, "droplet", guid, "SELECT "+dropletCols+" FROM droplets WHERE guid = ?", []any{guid}, scanDroplet)
}

// UpdateDroplet replaces every field of the droplet but its GUID and
// CreatedAt. A zero UpdatedAt is set to now.
func (s *Store) UpdateDroplet(ctx context.Context, d pando.Droplet) error {
	cols, args, err := dropletRow(d)
	if err != nil {
		return fmt.Errorf("update droplet %s: %w", d.GUID, err)
	}
	ok, err := s.update(ctx, "droplets", d.GUID, cols, args)
	if err != nil {
		return s.writeErr(err, "update", "droplet", d.GUID, nil, appChildErr(d.AppGUID))
	}
	if !ok {
		return notFound("droplet", d.GUID)
	}
	return nil
}

// DeleteDroplet deletes the droplet with guid. It does not touch an app
// whose current droplet it was.
func (s *Store) DeleteDroplet(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "droplets", guid)
	if err != nil {
		return fmt.Errorf("delete droplet %s: %w", guid, err)
	}
	if !ok {
		return notFound("droplet", guid)
	}
	return nil
}

// ListDroplets returns droplets of the given apps in the given states (empty
// filters match all).
func (s *Store) ListDroplets(ctx context.Context, appGUIDs, states []string) ([]pando.Droplet, error) {
	var w where
	w.in("app_guid", appGUIDs)
	w.in("state", states)
	return list(ctx, s, "droplets", "SELECT "+dropletCols+" FROM droplets"+w.String()+creationOrder, w.args, scanDroplet)
}
