package sqlstore

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
)

const appCols = "guid, name, space_guid, state, lifecycle_type, buildpacks, stack, env_vars, droplet_guid, revision, " +
	"running_droplet_guid, running_env_vars, features, running_binding_files, created_at, updated_at"

func scanApp(sc scanner) (pando.App, error) {
	var a pando.App
	var buildpacks, env, runningEnv, features string
	var created, updated int64
	if err := sc.Scan(&a.GUID, &a.Name, &a.SpaceGUID, &a.State, &a.LifecycleType, &buildpacks, &a.Stack,
		&env, &a.DropletGUID, &a.Revision, &a.RunningDropletGUID, &runningEnv, &features, &a.RunningBindingFiles, &created, &updated); err != nil {
		return a, err
	}
	if err := fromJSON(runningEnv, &a.RunningEnvVars); err != nil {
		return a, fmt.Errorf("app %s running env vars: %w", a.GUID, err)
	}
	if err := fromJSON(buildpacks, &a.Buildpacks); err != nil {
		return a, fmt.Errorf("app %s buildpacks: %w", a.GUID, err)
	}
	if err := fromJSON(env, &a.EnvVars); err != nil {
		return a, fmt.Errorf("app %s env vars: %w", a.GUID, err)
	}
	if err := fromJSON(features, &a.Features); err != nil {
		return a, fmt.Errorf("app %s features: %w", a.GUID, err)
	}
	a.CreatedAt, a.UpdatedAt = fromNanos(created), fromNanos(updated)
	return a, nil
}

// appRow is the columns and values every app write sets, except guid and
// created_at.
func appRow(a pando.App) ([]string, []any, error) {
	buildpacks, err := toJSON(a.Buildpacks)
	if err != nil {
		return nil, nil, err
	}
	env, err := toJSON(a.EnvVars)
	if err != nil {
		return nil, nil, err
	}
	runningEnv, err := toJSON(a.RunningEnvVars)
	if err != nil {
		return nil, nil, err
	}
	feat, err := toJSON(a.Features)
	if err != nil {
		return nil, nil, err
	}
	return []string{"name", "space_guid", "state", "lifecycle_type", "buildpacks", "stack", "env_vars", "droplet_guid", "revision",
			"running_droplet_guid", "running_env_vars", "features", "running_binding_files", "updated_at"},
		[]any{a.Name, a.SpaceGUID, a.State, a.LifecycleType, buildpacks, a.Stack, env, a.DropletGUID, a.Revision,
			a.RunningDropletGUID, runningEnv, feat, a.RunningBindingFiles, nanos(orNow(a.UpdatedAt))},
		nil
}

func (s *Store) appErr(err error, op string, a pando.App) error {
	return s.writeErr(err, op, "app", a.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "app name %q is already taken in this space", a.Name)
	}, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "space %s not found", a.SpaceGUID)
	})
}

// CreateApp adds an app to an existing space; names are unique per space.
func (s *Store) CreateApp(ctx context.Context, a pando.App) error {
	cols, args, err := appRow(a)
	if err != nil {
		return fmt.Errorf("create app %s: %w", a.GUID, err)
	}
	cols = append(cols, "guid", "created_at")
	args = append(args, a.GUID, nanos(orNow(a.CreatedAt)))
	return s.appErr(s.insert(ctx, "apps", cols, args), "create", a)
}

// GetApp returns the app with guid.
func (s *Store) GetApp(ctx context.Context, guid string) (pando.App, error) {
	return getOne(ctx, s, "app", guid, "SELECT "+appCols+" FROM apps WHERE guid = ?", []any{guid}, scanApp)
}

// UpdateApp replaces every field of the app but its GUID and CreatedAt.
// A zero UpdatedAt is set to now.
func (s *Store) UpdateApp(ctx context.Context, a pando.App) error {
	cols, args, err := appRow(a)
	if err != nil {
		return fmt.Errorf("update app %s: %w", a.GUID, err)
	}
	ok, err := s.update(ctx, "apps", a.GUID, cols, args)
	if err != nil {
		return s.appErr(err, "update", a)
	}
	if !ok {
		return notFound("app", a.GUID)
	}
	return nil
}

// DeleteApp deletes the app; its processes, packages, builds, droplets and
// route destinations go with it (foreign keys cascade). Events stay.
func (s *Store) DeleteApp(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "apps", guid)
	if err != nil {
		return fmt.Errorf("delete app %s: %w", guid, err)
	}
	if !ok {
		return notFound("app", guid)
	}
	return nil
}

// ListApps returns apps matching the filter; empty slices match all.
func (s *Store) ListApps(ctx context.Context, f pando.AppFilter) ([]pando.App, error) {
	var w where
	w.in("guid", f.GUIDs)
	w.in("name", f.Names)
	w.in("space_guid", f.SpaceGUIDs)
	return list(ctx, s, "apps", "SELECT "+appCols+" FROM apps"+w.String()+creationOrder, w.args, scanApp)
}

const processCols = "guid, app_guid, type, command, instances, memory_mb, disk_mb, log_rate_limit_bytes, " +
	"health_check_type, health_check_endpoint, health_check_timeout, health_check_invocation_timeout, created_at, updated_at"

func scanProcess(sc scanner) (pando.Process, error) {
	var p pando.Process
	var created, updated int64
	if err := sc.Scan(&p.GUID, &p.AppGUID, &p.Type, &p.Command, &p.Instances, &p.MemoryMB, &p.DiskMB, &p.LogRateLimitBytes,
		&p.HealthCheckType, &p.HealthCheckEndpoint, &p.HealthCheckTimeout, &p.HealthCheckInvocationTimeout,
		&created, &updated); err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	return p, nil
}

func processRow(p pando.Process) ([]string, []any) {
	return []string{"app_guid", "type", "command", "instances", "memory_mb", "disk_mb", "log_rate_limit_bytes",
			"health_check_type", "health_check_endpoint", "health_check_timeout", "health_check_invocation_timeout", "updated_at"},
		[]any{p.AppGUID, p.Type, p.Command, p.Instances, p.MemoryMB, p.DiskMB, p.LogRateLimitBytes,
			p.HealthCheckType, p.HealthCheckEndpoint, p.HealthCheckTimeout, p.HealthCheckInvocationTimeout, nanos(orNow(p.UpdatedAt))}
}

func (s *Store) processErr(err error, op string, p pando.Process) error {
	return s.writeErr(err, op, "process", p.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "app %s already has a process of type %q", p.AppGUID, p.Type)
	}, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "app %s not found", p.AppGUID)
	})
}

// CreateProcess adds a process type to an existing app; types are unique
// per app.
func (s *Store) CreateProcess(ctx context.Context, p pando.Process) error {
	cols, args := processRow(p)
	cols = append(cols, "guid", "created_at")
	args = append(args, p.GUID, nanos(orNow(p.CreatedAt)))
	return s.processErr(s.insert(ctx, "processes", cols, args), "create", p)
}

// GetProcess returns the process with guid.
func (s *Store) GetProcess(ctx context.Context, guid string) (pando.Process, error) {
	return getOne(ctx, s, "process", guid, "SELECT "+processCols+" FROM processes WHERE guid = ?", []any{guid}, scanProcess)
}

// UpdateProcess replaces every field of the process but its GUID and
// CreatedAt. A zero UpdatedAt is set to now.
func (s *Store) UpdateProcess(ctx context.Context, p pando.Process) error {
	cols, args := processRow(p)
	ok, err := s.update(ctx, "processes", p.GUID, cols, args)
	if err != nil {
		return s.processErr(err, "update", p)
	}
	if !ok {
		return notFound("process", p.GUID)
	}
	return nil
}

// DeleteProcess deletes the process with guid.
func (s *Store) DeleteProcess(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "processes", guid)
	if err != nil {
		return fmt.Errorf("delete process %s: %w", guid, err)
	}
	if !ok {
		return notFound("process", guid)
	}
	return nil
}

// ListProcesses returns processes matching the filters; empty filters match
// all.
func (s *Store) ListProcesses(ctx context.Context, guids, appGUIDs []string) ([]pando.Process, error) {
	var w where
	w.in("guid", guids)
	w.in("app_guid", appGUIDs)
	return list(ctx, s, "processes", "SELECT "+processCols+" FROM processes"+w.String()+creationOrder, w.args, scanProcess)
}
