package cc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/pandoplatform/pando"
)

// stgSettle is how long a finished build still reads STAGING on the CF
// endpoint after it ends: the cf CLI skips log lines younger than ~2 s and
// stops reading once it sees the build finished, so without this the last
// staging lines never reach `cf push`. Pando's own endpoint reports the
// true state at once.
const stgSettle = 2 * time.Second

func (a *API) getBuildByGUID(ctx context.Context, guid string) (pando.Build, error) {
	b, err := a.store.GetBuild(ctx, guid)
	if err != nil {
		return b, asNotFound(err, "Build")
	}
	return b, nil
}

func (a *API) paginateBuilds(w http.ResponseWriter, r *http.Request, builds []pando.Build) {
	builds = visibleByApp(r.Context(), a, builds, func(b pando.Build) string { return b.AppGUID })
	paginate(a, w, r, builds, func(b pando.Build) sortable {
		return sortable{createdAt: b.CreatedAt, updatedAt: b.UpdatedAt}
	}, func(b pando.Build) any { return a.presentBuild(b) })
}

func (a *API) listBuilds(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	builds, err := a.store.ListBuilds(r.Context(), splitList(q, "app_guids"), splitList(q, "states"))
	if err != nil {
		return err
	}
	if pk := splitList(q, "package_guids"); len(pk) > 0 {
		keep := builds[:0]
		for _, b := range builds {
			if contains(pk, b.PackageGUID) {
				keep = append(keep, b)
			}
		}
		builds = keep
	}
	a.paginateBuilds(w, r, builds)
	return nil
}

func (a *API) getBuild(w http.ResponseWriter, r *http.Request) error {
	b, err := a.getBuildByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	if b.State != pando.BuildStaging && a.now().Sub(b.UpdatedAt) < stgSettle {
		b.State = pando.BuildStaging
		b.Error = ""
	}
	writeJSON(w, http.StatusOK, a.presentBuild(b))
	return nil
}

// waitBuild is Pando's long-poll for a build: it answers as soon as the
// build leaves STAGING, or after `wait`.
func (a *API) waitBuild(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	guid := r.PathValue("guid")
	b, err := a.getBuildByGUID(ctx, guid)
	if err != nil {
		return err
	}
	if b.State == pando.BuildStaging {
		if wait := parseWait(r.URL.Query().Get("wait")); wait > 0 {
			ch := a.buildWaiter(guid)
			// Re-read after subscribing so a completion in between is seen.
			if b, err = a.getBuildByGUID(ctx, guid); err != nil {
				return err
			}
			if b.State == pando.BuildStaging {
				t := time.NewTimer(wait)
				select {
				case <-ch:
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				if b, err = a.getBuildByGUID(ctx, guid); err != nil {
					return err
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, a.presentBuild(b))
	return nil
}

func (a *API) buildWaiter(guid string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.buildWaiters[guid]
	if !ok {
		ch = make(chan struct{})
		a.buildWaiters[guid] = ch
	}
	return ch
}

func (a *API) notifyBuild(guid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.stagingTimers[guid]; ok {
		t.Stop()
		delete(a.stagingTimers, guid)
	}
	if ch, ok := a.buildWaiters[guid]; ok {
		close(ch)
		delete(a.buildWaiters, guid)
	}
}

func (a *API) postBuild(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		Package struct {
			GUID string `json:"guid"`
		} `json:"package"`
		Lifecycle         *lifecycleBody `json:"lifecycle"`
		StagingMemoryInMB int            `json:"staging_memory_in_mb"`
		StagingDiskInMB   int            `json:"staging_disk_in_mb"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	pkg, err := a.store.GetPackage(ctx, body.Package.GUID)
	if err != nil {
		if pando.IsNotFound(err) {
			return invalid("Unable to use package. Ensure that the package exists and you have access to it.")
		}
		return err
	}
	if err := a.checkApp(ctx, pkg.AppGUID, needWrite); err != nil {
		return invalid("Unable to use package. Ensure that the package exists and you have access to it.")
	}
	b, err := a.stage(ctx, identityFrom(ctx), pkg, body.Lifecycle, body.StagingMemoryInMB, body.StagingDiskInMB)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.presentBuild(b))
	return nil
}

// stage creates a build and a droplet for pkg and submits the staging task.
func (a *API) stage(ctx context.Context, id Identity, pkg pando.Package, lc *lifecycleBody, memMB, diskMB int) (pando.Build, error) {
	if pkg.State != pando.PackageReady {
		return pando.Build{}, &pando.Error{Kind: pando.EInvalid, Title: "CF-InvalidRequest", Code: 10002, Message: "Cannot stage package whose state is not ready."}
	}
	app, err := a.getAppByGUID(ctx, pkg.AppGUID)
	if err != nil {
		return pando.Build{}, err
	}
	if memMB <= 0 {
		memMB = a.cfg.StagingMemoryMB
	}
	if diskMB <= 0 {
		diskMB = a.cfg.StagingDiskMB
	}
	if memMB > maxMemoryMB || diskMB > maxDiskMB {
		return pando.Build{}, invalid("Staging memory and disk must be at most %d MB", maxMemoryMB)
	}
	buildpacks := app.Buildpacks
	stack := app.Stack
	if lc != nil && pkg.Type == "bits" {
		if lc.Data.Buildpacks != nil {
			buildpacks = cleanBuildpacks(lc.Data.Buildpacks)
		}
		if lc.Data.Stack != "" {
			stack = lc.Data.Stack
		}
	}
	now := a.now()
	b := pando.Build{
		GUID: a.newGUID(), AppGUID: app.GUID, PackageGUID: pkg.GUID, State: pando.BuildStaging,
		DropletGUID: a.newGUID(), LifecycleType: app.LifecycleType, Buildpacks: buildpacks, Stack: stack,
		StagingMemoryMB: memMB, StagingDiskMB: diskMB, CreatedByGUID: id.UserGUID, CreatedByName: id.UserName,
		CreatedAt: now, UpdatedAt: now,
	}
	req := &pando.StagingRequest{
		AppGUID: app.GUID, BuildGUID: b.GUID, DropletGUID: b.DropletGUID, Stack: stack,
		MemoryMB: memMB, DiskMB: diskMB, Timeout: a.cfg.StagingTimeout,
		BuildCacheKey: pando.BuildCacheBlobKey(app.GUID),
	}
	stagingEnv, err := a.withEnvGroup(ctx, pando.EnvGroupStaging, app.EnvVars)
	if err != nil {
		return pando.Build{}, err
	}
	if req.Env, err = a.withServices(ctx, app.GUID, false, appEnv(pando.App{EnvVars: stagingEnv})); err != nil {
		return pando.Build{}, err
	}
	req.BindingFiles = bindingFiles(app)
	if vcap, err := json.Marshal(a.vcapApplication(ctx, app)); err == nil {
		req.Env = append([]pando.EnvVar{{Name: "VCAP_APPLICATION", Value: string(vcap)}}, req.Env...)
	}
	if pkg.Type == "docker" {
		b.LifecycleType = pando.LifecycleDocker
		b.Stack = ""
		req.DockerImage, req.DockerUsername = pkg.DockerImage, pkg.DockerUsername
		if pkg.DockerPassword != "" {
			if a.cfg.Secrets == nil {
				return pando.Build{}, fmt.Errorf("stage docker package %s: no secrets key to open the registry password with", pkg.GUID)
			}
			pw, err := a.cfg.Secrets.Open(pkg.DockerPassword, dockerPasswordPurpose(pkg.GUID))
			if err != nil {
				return pando.Build{}, fmt.Errorf("stage docker package %s: %w", pkg.GUID, err)
			}
			req.DockerPassword = pw
		}
		req.Stack = ""
	} else {
		req.PackageKey = pando.PackageBlobKey(pkg.GUID)
		// The web process's own command (push -c): buildpacks that cannot
		// guess one (python_buildpack) fail staging only without it.
		if web, err := a.getAppProcessByType(ctx, app.GUID, "web"); err == nil && web.Command != "" {
			req.Env = append(req.Env, pando.EnvVar{Name: "PANDO_START_COMMAND", Value: web.Command})
		}
		refs, skip, err := a.stagingBuildpacks(ctx, buildpacks, stack)
		if err != nil {
			return pando.Build{}, err
		}
		req.Buildpacks, req.SkipDetect = refs, skip
	}
	inputs := a.stagingInputs(ctx, pkg, b.LifecycleType, req)
	if inputs != "" {
		prev, ok, err := a.reusableDroplet(ctx, app.GUID, pkg.GUID, inputs)
		if err != nil {
			return pando.Build{}, fmt.Errorf("stage package %s: %w", pkg.GUID, err)
		}
		if ok {
			return a.reuseDroplet(ctx, id, app, b, prev)
		}
	}
	d := pando.Droplet{
		GUID: b.DropletGUID, AppGUID: app.GUID, PackageGUID: pkg.GUID, State: pando.DropletProcessingUpload,
		LifecycleType: b.LifecycleType, Stack: b.Stack, StagingInputs: inputs, CreatedAt: now, UpdatedAt: now,
	}
	err = a.store.InTx(ctx, func(tx pando.Store) error {
		if err := tx.CreateBuild(ctx, b); err != nil {
			return err
		}
		return tx.CreateDroplet(ctx, d)
	})
	if err != nil {
		return pando.Build{}, fmt.Errorf("create build for package %s: %w", pkg.GUID, err)
	}
	a.recordAppEvent(ctx, id, "audit.app.build.create", app, map[string]any{"build_guid": b.GUID, "package_guid": pkg.GUID})
	task := pando.Task{GUID: b.GUID, Kind: pando.TaskStaging, State: pando.TaskPending, Staging: req, CreatedAt: now, UpdatedAt: now}
	// The task outlives this request: it must not be cancelled with it.
	if err := a.rt.DesireTask(context.WithoutCancel(ctx), task); err != nil {
		a.failStaging(ctx, b, pando.Failure{Kind: pando.FailureStagingError, Detail: err.Error()})
		b, _ = a.store.GetBuild(ctx, b.GUID)
		return b, nil
	}
	a.watchStaging(b.GUID)
	return b, nil
}

// stagingBuildpacks resolves the buildpacks for a staging task: the named
// ones (detect skipped), or every enabled admin buildpack for the stack in
// position order.
func (a *API) stagingBuildpacks(ctx context.Context, names []string, stack string) ([]pando.BuildpackRef, bool, error) {
	all, err := a.store.ListBuildpacks(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("list buildpacks: %w", err)
	}
	usable := func(bp pando.Buildpack) bool {
		return bp.State == pando.BuildpackReady && (bp.Stack == "" || bp.Stack == stack)
	}
	ref := func(bp pando.Buildpack) pando.BuildpackRef {
		return pando.BuildpackRef{Name: bp.Name, Key: pando.BuildpackBlobKey(bp.GUID), SHA256: bp.SHA256}
	}
	if len(names) > 0 {
		var refs []pando.BuildpackRef
		for _, n := range names {
			var found *pando.Buildpack
			for i := range all {
				if all[i].Name == n && usable(all[i]) {
					found = &all[i]
					break
				}
			}
			if found == nil {
				return nil, false, &pando.Error{Kind: pando.EUnknownBuildpk, Message: fmt.Sprintf("Buildpack %q must be an existing admin buildpack (with its zip uploaded) for stack %q", n, stack)}
			}
			refs = append(refs, ref(*found))
		}
		return refs, true, nil
	}
	var refs []pando.BuildpackRef
	for _, bp := range all {
		if bp.Enabled && usable(bp) {
			refs = append(refs, ref(bp))
		}
	}
	if len(refs) == 0 {
		return nil, false, invalid("No buildpacks are enabled for stack %q: upload one with create-buildpack", stack)
	}
	return refs, false, nil
}

// appEnv is the app's user environment in name order; the cell adds CF's
// own variables (VCAP_APPLICATION, PORT, CF_STACK...).
func appEnv(app pando.App) []pando.EnvVar {
	keys := make([]string, 0, len(app.EnvVars))
	for k := range app.EnvVars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]pando.EnvVar, 0, len(keys))
	for _, k := range keys {
		env = append(env, pando.EnvVar{Name: k, Value: app.EnvVars[k]})
	}
	return env
}

// watchStaging fails a build the runtime never finished (a cell that died
// mid-staging) a minute after the staging timeout.
func (a *API) watchStaging(buildGUID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.stagingTimers[buildGUID] = time.AfterFunc(a.cfg.StagingTimeout+time.Minute, func() {
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			return
		}
		delete(a.stagingTimers, buildGUID)
		a.wg.Add(1)
		a.mu.Unlock()
		defer a.wg.Done()
		ctx := context.Background()
		b, err := a.store.GetBuild(ctx, buildGUID)
		if err != nil || b.State != pando.BuildStaging {
			return
		}
		// Fail first: the cancelled task's own report then finds the
		// build finished and cannot overwrite the reason.
		a.failStaging(ctx, b, pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: a.cfg.StagingTimeout})
		_ = a.rt.CancelTask(ctx, buildGUID)
	})
}

// HandleTaskCompleted records a finished task: a staging task on its build
// and droplet, a CF task (run) on its record. FollowRuntime calls it for
// every completion event, at least once per task: a repeated completion
// records nothing new.
func (a *API) HandleTaskCompleted(ctx context.Context, t pando.Task) {
	if t.Kind == pando.TaskRun {
		a.handleRunTaskCompleted(ctx, t)
		return
	}
	if t.Kind != pando.TaskStaging {
		return
	}
	b, err := a.store.GetBuild(ctx, t.GUID)
	if pando.IsNotFound(err) {
		// The app was deleted while it staged: drop what was uploaded.
		a.log.Info("staging completed for a deleted app", "build_guid", t.GUID)
		if t.Staging != nil && t.Staging.DropletGUID != "" {
			_ = a.blobs.Delete(ctx, pando.DropletBlobKey(t.Staging.DropletGUID))
		}
		return
	}
	if err != nil {
		a.log.Error("staging completed for unknown build", "build_guid", t.GUID, "err", err)
		return
	}
	if b.State != pando.BuildStaging {
		return
	}
	if t.Failed || t.Result == nil {
		reason, note := stagingOutcome(t)
		if note {
			a.stagingNote(b.AppGUID, reason)
		}
		a.failBuild(ctx, b, reason)
		return
	}
	res := t.Result
	if b.LifecycleType == pando.LifecycleDocker && res.Image == "" {
		// A docker droplet is its pinned image: without one there is
		// nothing to run.
		a.failStaging(ctx, b, pando.Failure{Kind: pando.FailureStagingError, Detail: "docker staging returned no image"})
		return
	}
	d, err := a.store.GetDroplet(ctx, b.DropletGUID)
	if err != nil {
		a.failStaging(ctx, b, pando.Failure{Kind: pando.FailureStagingError, Detail: "droplet record missing"})
		return
	}
	now := a.now()
	d.State = pando.DropletStaged
	d.ProcessTypes = res.ProcessTypes
	if d.ProcessTypes == nil {
		d.ProcessTypes = map[string]string{}
	}
	if _, ok := d.ProcessTypes["web"]; !ok {
		d.ProcessTypes["web"] = res.StartCommand
	}
	d.DetectedBuildpack = res.DetectedBuildpack
	d.BuildpackName = res.BuildpackName
	d.BuildpackVersion = res.BuildpackVersion
	d.Buildpacks = res.Buildpacks
	d.ExecutionMetadata = res.ExecutionMetadata
	d.Image = res.Image
	d.SHA1, d.SHA256, d.Size = res.DropletSHA1, res.DropletSHA256, res.DropletSize
	d.UpdatedAt = now
	b.State = pando.BuildStaged
	b.UpdatedAt = now
	// Recorded before the build shows STAGED: a client that starts the
	// app once it does finds these before its own (STARTED after
	// BUILDPACK_SET, as in CF).
	if app, err := a.store.GetApp(ctx, b.AppGUID); err == nil {
		a.recordAppEvent(ctx, Identity{UserGUID: b.CreatedByGUID, UserName: b.CreatedByName}, "audit.app.droplet.create", app, map[string]any{"droplet_guid": d.GUID, "package_guid": b.PackageGUID})
		if b.LifecycleType != pando.LifecycleDocker && res.BuildpackName != "" {
			a.recordBuildpackUsage(ctx, app, res.BuildpackName)
		}
	}
	err = a.store.InTx(ctx, func(tx pando.Store) error {
		if err := stillStaging(ctx, tx, b.GUID); err != nil {
			return err
		}
		if err := tx.UpdateDroplet(ctx, d); err != nil {
			return err
		}
		return tx.UpdateBuild(ctx, b)
	})
	if errors.Is(err, errBuildDone) {
		return // failed meanwhile (a staging timeout): that stands
	}
	if err != nil {
		a.log.Error("record staged build", "build_guid", b.GUID, "err", err)
		a.failStaging(ctx, b, pando.Failure{Kind: pando.FailureStagingError, Detail: "could not record the droplet"})
		return
	}
	a.notifyBuild(b.GUID)
	a.pruneApp(ctx, b.AppGUID)
}

// errBuildDone says a build left STAGING before a change meant for a
// staging build could be written.
var errBuildDone = errors.New("build no longer staging")

// stillStaging re-reads the build in tx: a staging's outcome is recorded
// once, by whichever of its completion and its timeout comes first.
func stillStaging(ctx context.Context, tx pando.Store, guid string) error {
	b, err := tx.GetBuild(ctx, guid)
	if err != nil {
		return err
	}
	if b.State != pando.BuildStaging {
		return errBuildDone
	}
	return nil
}

// failStaging fails b for f, worded as CF does, after ending the app's
// staging log with it (so a client that stops reading at the build's end
// has read it).
func (a *API) failStaging(ctx context.Context, b pando.Build, f pando.Failure) {
	reason := stagingError(f, "")
	a.stagingNote(b.AppGUID, reason)
	a.failBuild(ctx, b, reason)
}

// failBuild marks a build and its droplet FAILED with a reason the user
// reads verbatim.
func (a *API) failBuild(ctx context.Context, b pando.Build, reason string) {
	now := a.now()
	b.State = pando.BuildFailed
	b.Error = reason
	b.UpdatedAt = now
	err := a.store.InTx(ctx, func(tx pando.Store) error {
		if err := stillStaging(ctx, tx, b.GUID); err != nil {
			return err
		}
		if err := tx.UpdateBuild(ctx, b); err != nil {
			return err
		}
		d, err := tx.GetDroplet(ctx, b.DropletGUID)
		if pando.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		d.State = pando.DropletFailed
		d.Error = reason
		d.UpdatedAt = now
		return tx.UpdateDroplet(ctx, d)
	})
	switch {
	case errors.Is(err, errBuildDone):
		a.log.Info("build finished before it could be failed", "build_guid", b.GUID)
	case pando.IsNotFound(err):
		a.log.Info("build gone before it could be failed (app deleted)", "build_guid", b.GUID)
	case err != nil:
		a.log.Error("fail build", "build_guid", b.GUID, "err", err)
	}
	a.notifyBuild(b.GUID)
}

// stagingNote ends the app's staging log with why its build failed: the
// cell's reported failure or the API's own verdict (a timeout, a restart,
// a placement failure). A cell's lines reach the log store before its
// completion does, so this line comes after them.
func (a *API) stagingNote(appGUID, reason string) {
	if a.cfg.Logs != nil {
		a.cfg.Logs.Emit(pando.LogEnvelope{Timestamp: a.now(), SourceID: appGUID, InstanceID: "0", SourceType: pando.LogSourceStaging, Type: "ERR", Payload: []byte(stagingLogLine(reason))})
	}
}
