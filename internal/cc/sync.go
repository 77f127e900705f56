package cc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pandoplatform/pando"
)

// syncApp makes the runtime's desired LRPs match the app's record: every
// process of a started app with a droplet and instances > 0 is desired;
// everything else is removed. Inside a transaction (inTx) it runs once
// the transaction has committed.
func (a *API) syncApp(ctx context.Context, appGUID string) error {
	if deferSync(ctx, appGUID) {
		return nil
	}
	app, err := a.db(ctx).GetApp(ctx, appGUID)
	if pando.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync app %s: %w", appGUID, err)
	}
	procs, err := a.db(ctx).ListProcesses(ctx, nil, []string{appGUID})
	if err != nil {
		return fmt.Errorf("sync app %s: %w", appGUID, err)
	}
	var droplet pando.Droplet
	if guid := runningDroplet(app); guid != "" {
		droplet, err = a.db(ctx).GetDroplet(ctx, guid)
		if err != nil && !pando.IsNotFound(err) {
			return fmt.Errorf("sync app %s: %w", appGUID, err)
		}
	}
	var errs []error
	for _, p := range procs {
		if app.State != pando.AppStarted || droplet.GUID == "" || p.Instances == 0 {
			if err := a.rt.RemoveDesiredLRP(ctx, p.GUID); err != nil && !pando.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		lrp, err := a.desiredLRP(ctx, app, p, droplet)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cur, err := a.rt.DesiredLRP(ctx, p.GUID)
		if err != nil && !pando.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("read desired lrp %s: %w", p.GUID, err))
			continue
		}
		if err == nil && cur.Revision == lrp.Revision {
			// Every instance of a revision runs the same bits: a new
			// droplet, env, command, memory or health check reaches the
			// app when it restarts, as in CF. Instances and routes
			// change at once.
			lrp.DropletKey, lrp.DropletSHA256, lrp.Image, lrp.Stack = cur.DropletKey, cur.DropletSHA256, cur.Image, cur.Stack
			lrp.Env, lrp.StartCommand, lrp.User = cur.Env, cur.StartCommand, cur.User
			lrp.MemoryMB, lrp.DiskMB, lrp.LogRateLimitBytes = cur.MemoryMB, cur.DiskMB, cur.LogRateLimitBytes
			lrp.HealthCheck, lrp.Ports, lrp.Docker, lrp.ImageCredentials = cur.HealthCheck, cur.Ports, cur.Docker, cur.ImageCredentials
		}
		keepExposedRoutes(&lrp)
		if err := a.rt.DesireLRP(ctx, lrp); err != nil {
			errs = append(errs, fmt.Errorf("desire lrp %s: %w", p.GUID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sync app %s: %w", appGUID, err)
	}
	return nil
}

// desiredLRP builds the runtime's view of one process.
func (a *API) desiredLRP(ctx context.Context, app pando.App, p pando.Process, d pando.Droplet) (pando.DesiredLRP, error) {
	space, err := a.db(ctx).GetSpace(ctx, app.SpaceGUID)
	if err != nil {
		return pando.DesiredLRP{}, fmt.Errorf("space of app %s: %w", app.GUID, err)
	}
	org, _ := a.db(ctx).GetOrg(ctx, space.OrgGUID)
	var routes []string
	var routePorts map[string]int
	if p.Type == "web" {
		routes, routePorts, err = a.webRoutes(ctx, app.GUID)
		if err != nil {
			return pando.DesiredLRP{}, fmt.Errorf("routes of app %s: %w", app.GUID, err)
		}
	}
	cmd := p.Command
	if cmd == "" {
		cmd = d.ProcessTypes[p.Type]
	}
	hc := pando.HealthCheck{Type: p.HealthCheckType, Endpoint: p.HealthCheckEndpoint}
	if p.HealthCheckTimeout > 0 {
		hc.StartTimeout = time.Duration(p.HealthCheckTimeout) * time.Second
	}
	if p.HealthCheckInvocationTimeout > 0 {
		hc.InvocationTimeout = time.Duration(p.HealthCheckInvocationTimeout) * time.Second
	}
	vars, err := a.withEnvGroup(ctx, pando.EnvGroupRunning, runningEnv(app))
	if err != nil {
		return pando.DesiredLRP{}, err
	}
	env, err := a.withServices(ctx, app.GUID, true, appEnv(pando.App{EnvVars: vars}))
	if err != nil {
		return pando.DesiredLRP{}, err
	}
	lrp := pando.DesiredLRP{
		ProcessGUID: p.GUID, Revision: app.Revision, AppGUID: app.GUID, AppName: app.Name,
		SpaceGUID: space.GUID, SpaceName: space.Name, OrgGUID: org.GUID, OrgName: org.Name,
		ProcessType: p.Type, Instances: p.Instances, MemoryMB: p.MemoryMB, DiskMB: p.DiskMB,
		LogRateLimitBytes: p.LogRateLimitBytes, Stack: d.Stack, StartCommand: cmd, Env: env,
		Ports: []int{defaultAppPort}, HealthCheck: hc, Routes: routes, RoutePorts: routePorts, UpdatedAt: a.now(),
	}
	lrp.BindingFiles = app.RunningBindingFiles
	if d.LifecycleType == pando.LifecycleDocker {
		lrp.Image = d.Image
		meta, err := dockerMetadata(d)
		if err != nil {
			return pando.DesiredLRP{}, err
		}
		lrp.Docker = &meta
		if lrp.ImageCredentials, err = a.imageCredentials(ctx, d); err != nil {
			return pando.DesiredLRP{}, err
		}
		lrp.StartCommand = p.Command
		lrp.Ports = meta.TCPPorts()
	} else {
		lrp.DropletKey = pando.DropletBlobKey(d.GUID)
		lrp.DropletSHA256 = d.SHA256
	}
	exposeRoutePorts(&lrp)
	if lrp.Stack == "" {
		lrp.Stack = app.Stack
	}
	// The droplet is part of the revision: a new droplet replaces instances
	// only on restart (CF semantics), which bumps app.Revision.
	return lrp, nil
}

// Restore re-desires every started app after a server start (RestoreApps)
// and fails the builds and tasks the previous process left in flight that
// the runtime does not hold (FailInterrupted). A server whose joined cells
// may still run such work calls the two apart, with the cells' reports in
// between.
func (a *API) Restore(ctx context.Context) error {
	return errors.Join(a.RestoreApps(ctx), a.FailInterrupted(ctx))
}

// RestoreApps re-desires every started app, so the runtime (in memory)
// matches the CCDB, and loads the router's view of route services.
func (a *API) RestoreApps(ctx context.Context) error {
	if err := a.reloadRouteServices(ctx); err != nil {
		a.log.Error("restore: route services not loaded: their routes go straight to the apps until the next route binding change", "err", err)
	}
	apps, err := a.db(ctx).ListApps(ctx, pando.AppFilter{})
	if err != nil {
		return fmt.Errorf("restore: list apps: %w", err)
	}
	var errs []error
	for _, app := range apps {
		if app.State != pando.AppStarted {
			continue
		}
		if err := a.syncApp(ctx, app.GUID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// InFlight lists the guids of the builds left STAGING and the tasks left
// unfinished in the CCDB: after a restart, the runtime lets the cells that
// run them claim them.
func (a *API) InFlight(ctx context.Context) ([]string, error) {
	builds, err := a.db(ctx).ListBuilds(ctx, nil, []string{pando.BuildStaging})
	if err != nil {
		return nil, fmt.Errorf("in-flight work: list builds: %w", err)
	}
	tasks, err := a.db(ctx).ListAppTasks(ctx, nil, activeTaskStates)
	if err != nil {
		return nil, fmt.Errorf("in-flight work: list tasks: %w", err)
	}
	guids := make([]string, 0, len(builds)+len(tasks))
	for _, b := range builds {
		guids = append(guids, b.GUID)
	}
	for _, t := range tasks {
		guids = append(guids, t.GUID)
	}
	return guids, nil
}

// FailInterrupted fails the builds left STAGING and the tasks left
// unfinished that the runtime does not hold: they died with the previous
// process (or no cell claimed them after the restart). Work the runtime
// holds goes on; its completion is recorded as usual.
func (a *API) FailInterrupted(ctx context.Context) error {
	taskErr := a.failInterruptedTasks(ctx)
	builds, err := a.db(ctx).ListBuilds(ctx, nil, []string{pando.BuildStaging})
	if err != nil {
		return errors.Join(taskErr, fmt.Errorf("restore: list builds: %w", err))
	}
	for _, b := range builds {
		held, err := a.runtimeHolds(ctx, b.GUID)
		if err != nil {
			return errors.Join(taskErr, err)
		}
		if held {
			a.log.Info("build still staging on a cell after the restart", "build_guid", b.GUID)
			continue
		}
		a.failStaging(ctx, b, pando.Failure{Kind: pando.FailureStagingError, Detail: "staging was interrupted by a Pando server restart; push again"})
	}
	return taskErr
}

// runtimeHolds says whether the runtime has a task (any state: a
// completed one is recorded from its event).
func (a *API) runtimeHolds(ctx context.Context, guid string) (bool, error) {
	_, err := a.rt.Task(ctx, guid)
	switch {
	case err == nil:
		return true, nil
	case pando.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("restore: read runtime task %s: %w", guid, err)
}

// HandleInstanceCrashed records a crash as CF does (audit.app.process.crash
// and the legacy app.crash), so `cf events` shows why an instance went down.
func (a *API) HandleInstanceCrashed(ctx context.Context, al pando.ActualLRP) {
	p, err := a.db(ctx).GetProcess(ctx, al.ProcessGUID)
	if err != nil {
		return
	}
	app, err := a.db(ctx).GetApp(ctx, p.AppGUID)
	if err != nil {
		return
	}
	a.recordCrash(ctx, app, p, al)
}

// dockerMetadata parses a docker droplet's execution metadata.
func dockerMetadata(d pando.Droplet) (pando.ExecutionMetadata, error) {
	var meta pando.ExecutionMetadata
	if d.ExecutionMetadata == "" {
		return meta, nil
	}
	if err := json.Unmarshal([]byte(d.ExecutionMetadata), &meta); err != nil {
		return meta, fmt.Errorf("droplet %s: execution metadata: %w", d.GUID, err)
	}
	return meta, nil
}

// imageCredentials opens the registry credentials of a docker droplet's
// package for the cell's layer pulls (nil: anonymous). A package deleted
// since staging pulls anonymously.
func (a *API) imageCredentials(ctx context.Context, d pando.Droplet) (*pando.ImageCredentials, error) {
	if d.PackageGUID == "" {
		return nil, nil
	}
	pkg, err := a.db(ctx).GetPackage(ctx, d.PackageGUID)
	if pando.ErrorKindOf(err) == pando.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("package of droplet %s: %w", d.GUID, err)
	}
	if pkg.DockerUsername == "" && pkg.DockerPassword == "" {
		return nil, nil
	}
	creds := &pando.ImageCredentials{Username: pkg.DockerUsername}
	if pkg.DockerPassword != "" {
		if a.cfg.Secrets == nil {
			return nil, fmt.Errorf("docker package %s: no secrets key to open the registry password with", pkg.GUID)
		}
		if creds.Password, err = a.cfg.Secrets.Open(pkg.DockerPassword, dockerPasswordPurpose(pkg.GUID)); err != nil {
			return nil, fmt.Errorf("docker package %s: %w", pkg.GUID, err)
		}
	}
	return creds, nil
}
