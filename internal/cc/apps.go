package cc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// validAppName says what an app name may hold: 1 to 255 characters, no
// control characters (CF allows most printable ones; the route code checks
// separately that a derived hostname is valid). Checked by hand, not by
// a regexp: a bounded repeat compiles into thousands of allocations at
// every start of the pando binary, CLI commands included.
func validAppName(s string) bool {
	n := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
		n++
	}
	return n >= 1 && n <= 255
}

// appCreate is a validated request to create an app.
type appCreate struct {
	Name          string
	SpaceGUID     string
	LifecycleType string
	Buildpacks    []string
	Stack         string
	EnvVars       map[string]string
}

func validateAppName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("Name must not be empty")
	}
	if !validAppName(name) {
		return invalid("Name must be 1 to 255 printable characters")
	}
	return nil
}

// Bounds on an app's environment: past these, containers fail to exec
// (E2BIG) long after the API accepted the change.
const (
	maxEnvVars      = 1000
	maxEnvVarsBytes = 256 << 10
)

func checkEnvSize(env map[string]string) error {
	total := 0
	for k, v := range env {
		total += len(k) + len(v) + 2
	}
	if len(env) > maxEnvVars || total > maxEnvVarsBytes {
		return invalid("Environment variables are limited to %d variables and %d KiB in all (this change would make %d variables, %d bytes)", maxEnvVars, maxEnvVarsBytes>>10, len(env), total)
	}
	return nil
}

func validateEnvVars(env map[string]string) error {
	if err := checkEnvSize(env); err != nil {
		return err
	}
	for k := range env {
		if k == "" {
			return invalid("Environment variable names must not be empty")
		}
		if strings.HasPrefix(k, "VCAP_") {
			return invalid("Environment variable names cannot start with VCAP_")
		}
		if k == "PORT" {
			return invalid("Environment variable PORT cannot be set")
		}
		if strings.ContainsAny(k, "=\x00") {
			return invalid("Environment variable name %q is invalid", k)
		}
	}
	return nil
}

// checkBuildpacks verifies that every named buildpack exists (or is a URL,
// which Pando cannot fetch offline and so rejects clearly).
func (a *API) checkBuildpacks(ctx context.Context, names []string) error {
	for _, n := range names {
		if n == "" || n == "default" || n == "null" {
			continue
		}
		if strings.Contains(n, "://") {
			return &pando.Error{Kind: pando.EUnknownBuildpk, Message: fmt.Sprintf("Buildpack %q must be an existing admin buildpack: Pando stages offline and cannot download buildpacks from URLs", n)}
		}
		bps, err := a.db(ctx).ListBuildpacks(ctx, []string{n})
		if err != nil {
			return fmt.Errorf("list buildpacks: %w", err)
		}
		if len(bps) == 0 {
			return &pando.Error{Kind: pando.EUnknownBuildpk, Message: fmt.Sprintf("Buildpack %q must be an existing admin buildpack or a valid git URI", n)}
		}
	}
	return nil
}

func (a *API) checkStack(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	stacks, err := a.db(ctx).ListStacks(ctx, []string{name})
	if err != nil {
		return fmt.Errorf("list stacks: %w", err)
	}
	if len(stacks) == 0 {
		return invalid("Stack %q must be an existing stack", name)
	}
	return nil
}

// cleanBuildpacks drops the "default"/"null" placeholders the CLI sends.
func cleanBuildpacks(in []string) []string {
	var out []string
	for _, b := range in {
		if b == "" || b == "default" || b == "null" {
			continue
		}
		out = append(out, b)
	}
	return out
}

// createApp records a new app with its web process.
func (a *API) createApp(ctx context.Context, id Identity, in appCreate) (pando.App, error) {
	if err := validateAppName(in.Name); err != nil {
		return pando.App{}, err
	}
	if err := validateEnvVars(in.EnvVars); err != nil {
		return pando.App{}, err
	}
	space, err := a.db(ctx).GetSpace(ctx, in.SpaceGUID)
	if err != nil {
		return pando.App{}, asNotFound(err, "Space")
	}
	if in.LifecycleType == "" {
		in.LifecycleType = pando.LifecycleBuildpack
	}
	if in.LifecycleType != pando.LifecycleBuildpack && in.LifecycleType != pando.LifecycleDocker {
		return pando.App{}, invalid("Lifecycle type must be 'buildpack' or 'docker'")
	}
	if in.LifecycleType == pando.LifecycleDocker {
		if !a.cfg.DockerEnabled {
			return pando.App{}, errDockerDisabled
		}
		if err := a.requireFeature(ctx, id, FlagDiegoDocker); err != nil {
			return pando.App{}, err
		}
	}
	in.Buildpacks = cleanBuildpacks(in.Buildpacks)
	if err := a.checkBuildpacks(ctx, in.Buildpacks); err != nil {
		return pando.App{}, err
	}
	if in.LifecycleType == pando.LifecycleBuildpack {
		if in.Stack == "" {
			in.Stack = a.cfg.DefaultStack
		}
		if err := a.checkStack(ctx, in.Stack); err != nil {
			return pando.App{}, err
		}
	} else {
		in.Stack = ""
	}
	now := a.now()
	app := pando.App{
		GUID: a.newGUID(), Name: in.Name, SpaceGUID: space.GUID, State: pando.AppStopped,
		LifecycleType: in.LifecycleType, Buildpacks: in.Buildpacks, Stack: in.Stack,
		EnvVars: in.EnvVars, CreatedAt: now, UpdatedAt: now,
	}
	if app.EnvVars == nil {
		app.EnvVars = map[string]string{}
	}
	err = a.db(ctx).InTx(ctx, func(tx pando.Store) error {
		existing, err := tx.ListApps(ctx, pando.AppFilter{Names: []string{in.Name}, SpaceGUIDs: []string{space.GUID}})
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return appNameTaken(in.Name)
		}
		if err := tx.CreateApp(ctx, app); err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				return appNameTaken(in.Name)
			}
			return err
		}
		// The web process shares the app's GUID, as in CF.
		return tx.CreateProcess(ctx, a.defaultProcess(app, "web"))
	})
	if err != nil {
		return pando.App{}, fmt.Errorf("create app %q: %w", in.Name, err)
	}
	a.recordAppEvent(ctx, id, "audit.app.create", app, map[string]any{"request": map[string]any{"name": app.Name, "space_guid": app.SpaceGUID}})
	return app, nil
}

// errDockerDisabled is CF's answer for a docker push when this server
// cannot run images at all (Config.DockerEnabled off).
var errDockerDisabled = &pando.Error{Kind: pando.EForbidden, Code: 330002, Title: "CF-FeatureDisabled",
	Message: "Feature Disabled: diego_docker. This Pando server runs buildpack apps only for now: push from source instead of --docker-image."}

func appNameTaken(name string) error {
	return &pando.Error{Kind: pando.EConflict, Code: 10016, Title: "CF-UniquenessError", Message: fmt.Sprintf("App with the name '%s' already exists.", name)}
}

func (a *API) defaultProcess(app pando.App, typ string) pando.Process {
	guid := app.GUID
	if typ != "web" {
		guid = a.newGUID()
	}
	instances := 0
	hc := pando.HealthCheckProcess
	if typ == "web" {
		instances = a.cfg.DefaultInstances
		hc = pando.HealthCheckPort
	}
	return pando.Process{
		GUID: guid, AppGUID: app.GUID, Type: typ, Instances: instances,
		MemoryMB: a.cfg.DefaultMemoryMB, DiskMB: a.cfg.DefaultDiskMB, LogRateLimitBytes: a.cfg.DefaultLogRateLimit,
		HealthCheckType: hc, CreatedAt: app.CreatedAt, UpdatedAt: app.CreatedAt,
	}
}

func (a *API) getAppByGUID(ctx context.Context, guid string) (pando.App, error) {
	app, err := a.db(ctx).GetApp(ctx, guid)
	if err != nil {
		return pando.App{}, asNotFound(err, "App")
	}
	return app, nil
}

// mutateApp re-reads the app inside a transaction, applies fn and writes
// it back, so concurrent edits (set-env during a push, say) never undo each
// other. fn returning errUnchanged skips the write.
func (a *API) mutateApp(ctx context.Context, guid string, fn func(app *pando.App) error) (pando.App, error) {
	var out pando.App
	err := a.db(ctx).InTx(ctx, func(tx pando.Store) error {
		app, err := tx.GetApp(ctx, guid)
		if err != nil {
			return asNotFound(err, "App")
		}
		if err := fn(&app); err != nil {
			out = app
			return err
		}
		app.UpdatedAt = a.now()
		if err := tx.UpdateApp(ctx, app); err != nil {
			return err
		}
		out = app
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return out, nil
	}
	return out, err
}

// pinRevision records what the revision being started runs: the current
// droplet, env and binding-file feature. Later changes wait for the next restart.
func pinRevision(app *pando.App) {
	app.RunningDropletGUID = app.DropletGUID
	app.RunningEnvVars = maps.Clone(app.EnvVars)
	app.RunningBindingFiles = bindingFiles(*app)
	if app.RunningEnvVars == nil {
		app.RunningEnvVars = map[string]string{}
	}
}

// runningDroplet and runningEnv are what the app's instances run.
func runningDroplet(app pando.App) string {
	if app.RunningDropletGUID != "" {
		return app.RunningDropletGUID
	}
	return app.DropletGUID
}

func runningEnv(app pando.App) map[string]string {
	if app.RunningEnvVars != nil {
		return app.RunningEnvVars
	}
	return app.EnvVars
}

// errUnchanged tells mutateApp there is nothing to write.
var errUnchanged = errors.New("unchanged")

// startApp marks the app started and desires its processes. The quotas
// are checked in the start's transaction: two starts (or a start and a
// scale) cannot both take what only one of them fits in.
func (a *API) startApp(ctx context.Context, id Identity, app pando.App) (pando.App, error) {
	started := false
	err := a.inTx(ctx, func(ctx context.Context) error {
		var err error
		app, err = a.mutateApp(ctx, app.GUID, func(app *pando.App) error {
			if app.State != pando.AppStarted {
				if err := a.checkAppQuotas(ctx, *app, nil); err != nil {
					return err
				}
			}
			if app.DropletGUID == "" {
				return invalid("Assign a droplet before starting this app.")
			}
			if app.State == pando.AppStarted {
				return errUnchanged
			}
			app.State, started = pando.AppStarted, true
			pinRevision(app)
			return nil
		})
		return err
	})
	if err != nil {
		return app, fmt.Errorf("start app %s: %w", app.GUID, err)
	}
	if started {
		if err := a.db(ctx).PinServiceBindings(ctx, app.GUID); err != nil {
			return app, err
		}
		a.recordAppEvent(ctx, id, "audit.app.start", app, map[string]any{})
		a.recordProcessUsage(ctx, app, pando.UsageStarted, pando.UsageStopped)
	}
	return app, a.syncApp(ctx, app.GUID)
}

// stopApp marks the app stopped and removes its LRPs.
func (a *API) stopApp(ctx context.Context, id Identity, app pando.App) (pando.App, error) {
	stopped := false
	app, err := a.mutateApp(ctx, app.GUID, func(app *pando.App) error {
		if app.State == pando.AppStopped {
			return errUnchanged
		}
		app.State, stopped = pando.AppStopped, true
		return nil
	})
	if err != nil {
		return app, fmt.Errorf("stop app %s: %w", app.GUID, err)
	}
	if stopped {
		a.recordAppEvent(ctx, id, "audit.app.stop", app, map[string]any{})
		a.recordProcessUsage(ctx, app, pando.UsageStopped, pando.UsageStarted)
	}
	return app, a.syncApp(ctx, app.GUID)
}

// restartApp stops and starts: a new revision replaces every instance.
func (a *API) restartApp(ctx context.Context, id Identity, app pando.App) (pando.App, error) {
	wasStarted := false
	err := a.inTx(ctx, func(ctx context.Context) error {
		var err error
		app, err = a.mutateApp(ctx, app.GUID, func(app *pando.App) error {
			if err := a.checkAppQuotas(ctx, *app, nil); err != nil {
				return err
			}
			if app.DropletGUID == "" {
				return invalid("Assign a droplet before starting this app.")
			}
			wasStarted = app.State == pando.AppStarted
			app.State = pando.AppStarted
			app.Revision++
			pinRevision(app)
			return nil
		})
		return err
	})
	if err != nil {
		return app, fmt.Errorf("restart app %s: %w", app.GUID, err)
	}
	if err := a.db(ctx).PinServiceBindings(ctx, app.GUID); err != nil {
		return app, err
	}
	a.recordAppEvent(ctx, id, "audit.app.restart", app, map[string]any{})
	if wasStarted {
		a.recordProcessUsage(ctx, app, pando.UsageStopped, pando.UsageStarted)
	}
	a.recordProcessUsage(ctx, app, pando.UsageStarted, pando.UsageStopped)
	return app, a.syncApp(ctx, app.GUID)
}

// deleteApp removes the app, its LRPs and its blobs.
func (a *API) deleteApp(ctx context.Context, id Identity, app pando.App) error {
	procs, err := a.db(ctx).ListProcesses(ctx, nil, []string{app.GUID})
	if err != nil {
		return fmt.Errorf("delete app %s: %w", app.GUID, err)
	}
	for _, p := range procs {
		if err := a.rt.RemoveDesiredLRP(ctx, p.GUID); err != nil && !pando.IsNotFound(err) {
			return fmt.Errorf("delete app %s: remove lrp: %w", app.GUID, err)
		}
	}
	// Tasks would run on for an app that is gone.
	a.cancelAppTasks(ctx, app.GUID)
	// Stagings in flight would upload droplets nobody owns.
	if staging, err := a.db(ctx).ListBuilds(ctx, []string{app.GUID}, []string{pando.BuildStaging}); err == nil {
		for _, b := range staging {
			_ = a.rt.CancelTask(ctx, b.GUID)
		}
	}
	pkgs, _ := a.db(ctx).ListPackages(ctx, []string{app.GUID})
	drops, _ := a.db(ctx).ListDroplets(ctx, []string{app.GUID}, nil)
	if err := a.db(ctx).DeleteApp(ctx, app.GUID); err != nil {
		return fmt.Errorf("delete app %s: %w", app.GUID, err)
	}
	// Blobs go after the rows: a crash in between leaves garbage, never a
	// row pointing at a missing blob.
	for _, p := range pkgs {
		_ = a.blobs.Delete(ctx, pando.PackageBlobKey(p.GUID))
	}
	for _, d := range drops {
		_ = a.blobs.Delete(ctx, pando.DropletBlobKey(d.GUID))
	}
	_ = a.blobs.Delete(ctx, pando.BuildCacheBlobKey(app.GUID))
	if app.State == pando.AppStarted {
		for _, p := range procs {
			a.recordScaleUsage(ctx, app, p, p, pando.UsageStopped, pando.UsageStarted)
		}
	}
	a.recordAppEvent(ctx, id, "audit.app.delete-request", app, map[string]any{"request": map[string]any{"recursive": true}})
	return nil
}

// --- handlers ---

func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := pando.AppFilter{GUIDs: splitList(q, "guids"), Names: splitList(q, "names"), SpaceGUIDs: splitList(q, "space_guids")}
	apps, err := a.store.ListApps(r.Context(), f)
	if err != nil {
		return err
	}
	if orgs := splitList(q, "organization_guids"); len(orgs) > 0 {
		spaces, err := a.store.ListSpaces(r.Context(), nil, nil, orgs)
		if err != nil {
			return err
		}
		in := map[string]bool{}
		for _, s := range spaces {
			in[s.GUID] = true
		}
		apps = slices.DeleteFunc(apps, func(x pando.App) bool { return !in[x.SpaceGUID] })
	}
	apps = visibleBySpace(r.Context(), apps, func(x pando.App) string { return x.SpaceGUID })
	paginate(a, w, r, apps, func(x pando.App) sortable {
		return sortable{name: x.Name, state: x.State, createdAt: x.CreatedAt, updatedAt: x.UpdatedAt}
	}, func(x pando.App) any { return a.presentApp(x) })
	return nil
}

type lifecycleBody struct {
	Type string `json:"type"`
	Data struct {
		Buildpacks []string `json:"buildpacks"`
		Stack      string   `json:"stack"`
	} `json:"data"`
}

func (a *API) postApp(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name          string            `json:"name"`
		EnvVars       map[string]string `json:"environment_variables"`
		Lifecycle     *lifecycleBody    `json:"lifecycle"`
		Relationships struct {
			Space struct {
				Data struct {
					GUID string `json:"guid"`
				} `json:"data"`
			} `json:"space"`
		} `json:"relationships"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	in := appCreate{Name: body.Name, SpaceGUID: body.Relationships.Space.Data.GUID, EnvVars: body.EnvVars}
	if in.SpaceGUID == "" {
		return invalid("Relationships Space must be provided")
	}
	if body.Lifecycle != nil {
		in.LifecycleType = body.Lifecycle.Type
		in.Buildpacks = body.Lifecycle.Data.Buildpacks
		in.Stack = body.Lifecycle.Data.Stack
	}
	if err := a.checkSpace(r.Context(), in.SpaceGUID, needWrite); err != nil {
		return err
	}
	app, err := a.createApp(r.Context(), identityFrom(r.Context()), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.presentApp(app))
	return nil
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentApp(app))
	return nil
}

func (a *API) patchApp(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var body struct {
		Name      *string        `json:"name"`
		Lifecycle *lifecycleBody `json:"lifecycle"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	// Validate first (reads only), then apply in one transaction.
	if body.Name != nil {
		if err := validateAppName(*body.Name); err != nil {
			return err
		}
	}
	var bps []string
	if body.Lifecycle != nil {
		if body.Lifecycle.Type != "" && body.Lifecycle.Type != app.LifecycleType {
			return invalid("Lifecycle type cannot be changed")
		}
		if body.Lifecycle.Data.Buildpacks != nil {
			bps = cleanBuildpacks(body.Lifecycle.Data.Buildpacks)
			if err := a.checkBuildpacks(ctx, bps); err != nil {
				return err
			}
		}
		if body.Lifecycle.Data.Stack != "" {
			if err := a.checkStack(ctx, body.Lifecycle.Data.Stack); err != nil {
				return err
			}
		}
	}
	app, err = a.mutateApp(ctx, app.GUID, func(app *pando.App) error {
		if body.Name != nil {
			app.Name = *body.Name
		}
		if body.Lifecycle != nil {
			if body.Lifecycle.Data.Buildpacks != nil {
				app.Buildpacks = bps
			}
			if body.Lifecycle.Data.Stack != "" {
				app.Stack = body.Lifecycle.Data.Stack
			}
		}
		return nil
	})
	if err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict && body.Name != nil {
			return appNameTaken(*body.Name)
		}
		return err
	}
	a.recordAppEvent(ctx, identityFrom(ctx), "audit.app.update", app, map[string]any{})
	writeJSON(w, http.StatusOK, a.presentApp(app))
	return nil
}

func (a *API) deleteAppHandler(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	job := a.runJob(ctx, "app.delete", "app", app.GUID, func(ctx context.Context) error {
		return a.deleteApp(ctx, identityFrom(r.Context()), app)
	})
	a.writeJobAccepted(w, job)
	return nil
}

func (a *API) appAction(fn func(context.Context, Identity, pando.App) (pando.App, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
		if err != nil {
			return err
		}
		app, err = fn(ctx, identityFrom(ctx), app)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, a.presentApp(app))
		return nil
	}
}

func (a *API) startAppHandler(w http.ResponseWriter, r *http.Request) error {
	return a.appAction(a.startApp)(w, r)
}

func (a *API) stopAppHandler(w http.ResponseWriter, r *http.Request) error {
	return a.appAction(a.stopApp)(w, r)
}

func (a *API) restartAppHandler(w http.ResponseWriter, r *http.Request) error {
	return a.appAction(a.restartApp)(w, r)
}

func (a *API) getCurrentDroplet(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if app.DropletGUID == "" {
		return notFound("Droplet")
	}
	d, err := a.db(ctx).GetDroplet(ctx, app.DropletGUID)
	if err != nil {
		return asNotFound(err, "Droplet")
	}
	writeJSON(w, http.StatusOK, a.presentDroplet(d))
	return nil
}

func (a *API) getCurrentDropletRel(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": dataOrNil(app.DropletGUID),
		"links": map[string]any{
			"self":    link(a.url("/v3/apps/%s/relationships/current_droplet", app.GUID)),
			"related": link(a.url("/v3/apps/%s/droplets/current", app.GUID)),
		},
	})
	return nil
}

func dataOrNil(guid string) any {
	if guid == "" {
		return nil
	}
	return map[string]any{"guid": guid}
}

func (a *API) setCurrentDroplet(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var body struct {
		Data *struct {
			GUID string `json:"guid"`
		} `json:"data"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if body.Data == nil || body.Data.GUID == "" {
		return invalid("Current droplet cannot be removed. Replace it with a preferable droplet.")
	}
	d, err := a.db(ctx).GetDroplet(ctx, body.Data.GUID)
	if err != nil || d.AppGUID != app.GUID {
		return invalid("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.")
	}
	if d.State != pando.DropletStaged {
		return invalid("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.")
	}
	if err := a.assignDroplet(ctx, identityFrom(ctx), app, d); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": map[string]any{"guid": d.GUID},
		"links": map[string]any{
			"self":    link(a.url("/v3/apps/%s/relationships/current_droplet", app.GUID)),
			"related": link(a.url("/v3/apps/%s/droplets/current", app.GUID)),
		},
	})
	return nil
}

// assignDroplet makes d the app's current droplet and updates process
// commands' defaults. A running app keeps its instances until restarted,
// as in CF.
func (a *API) assignDroplet(ctx context.Context, id Identity, app pando.App, d pando.Droplet) error {
	var created []pando.Process
	err := a.db(ctx).InTx(ctx, func(tx pando.Store) error {
		created = created[:0]
		cur, err := tx.GetApp(ctx, app.GUID)
		if err != nil {
			return asNotFound(err, "App")
		}
		app = cur
		app.DropletGUID = d.GUID
		app.UpdatedAt = a.now()
		if err := tx.UpdateApp(ctx, app); err != nil {
			return err
		}
		// Every process type the droplet declares exists as a process.
		procs, err := tx.ListProcesses(ctx, nil, []string{app.GUID})
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, p := range procs {
			have[p.Type] = true
		}
		for typ := range d.ProcessTypes {
			if !have[typ] {
				p := a.defaultProcess(app, typ)
				if err := tx.CreateProcess(ctx, p); err != nil {
					return err
				}
				created = append(created, p)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("assign droplet %s to app %s: %w", d.GUID, app.GUID, err)
	}
	for _, p := range created {
		a.recordProcessCreate(ctx, id, app, p)
	}
	a.recordAppEvent(ctx, id, "audit.app.droplet.mapped", app, map[string]any{"request": map[string]any{"droplet_guid": d.GUID}})
	return nil
}

func (a *API) listAppDroplets(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	drops, err := a.db(ctx).ListDroplets(ctx, []string{app.GUID}, splitList(r.URL.Query(), "states"))
	if err != nil {
		return err
	}
	a.paginateDroplets(w, r, drops)
	return nil
}

func (a *API) listAppPackages(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	pkgs, err := a.db(ctx).ListPackages(ctx, []string{app.GUID})
	if err != nil {
		return err
	}
	a.paginatePackages(w, r, filterPackages(pkgs, r))
	return nil
}

func (a *API) listAppBuilds(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	builds, err := a.db(ctx).ListBuilds(ctx, []string{app.GUID}, splitList(r.URL.Query(), "states"))
	if err != nil {
		return err
	}
	a.paginateBuilds(w, r, builds)
	return nil
}

func (a *API) getAppEnvVars(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	if err := a.requireFeature(r.Context(), identityFrom(r.Context()), FlagSpaceDeveloperEnvVarVisibility); err != nil {
		return err
	}
	a.recordAppEvent(r.Context(), identityFrom(r.Context()), "audit.app.environment_variables.show", app, map[string]any{})
	a.writeEnvVars(w, app)
	return nil
}

func (a *API) writeEnvVars(w http.ResponseWriter, app pando.App) {
	vars := app.EnvVars
	if vars == nil {
		vars = map[string]string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"var": vars,
		"links": map[string]any{
			"self": link(a.url("/v3/apps/%s/environment_variables", app.GUID)),
			"app":  link(a.url("/v3/apps/%s", app.GUID)),
		},
	})
}

func (a *API) patchAppEnvVars(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var body struct {
		Var map[string]*string `json:"var"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	set := map[string]string{}
	for k, v := range body.Var {
		if v != nil {
			set[k] = *v
		}
	}
	if err := validateEnvVars(set); err != nil {
		return err
	}
	app, err = a.updateEnvVars(ctx, identityFrom(ctx), app, body.Var)
	if err != nil {
		return err
	}
	a.writeEnvVars(w, app)
	return nil
}

// updateEnvVars merges vars into the app's env; a nil value unsets.
func (a *API) updateEnvVars(ctx context.Context, id Identity, app pando.App, vars map[string]*string) (pando.App, error) {
	app, err := a.mutateApp(ctx, app.GUID, func(app *pando.App) error {
		if app.EnvVars == nil {
			app.EnvVars = map[string]string{}
		}
		for k, v := range vars {
			if v == nil {
				delete(app.EnvVars, k)
			} else {
				app.EnvVars[k] = *v
			}
		}
		return checkEnvSize(app.EnvVars)
	})
	if err != nil {
		return app, fmt.Errorf("update env of app %s: %w", app.GUID, err)
	}
	a.recordAppEvent(ctx, id, "audit.app.update", app, map[string]any{"request": map[string]any{"environment_variables": "[PRIVATE DATA HIDDEN]"}})
	return app, nil
}

func (a *API) getSSHEnabled(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.getAppByGUID(r.Context(), r.PathValue("guid")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": false, "reason": "SSH is not supported by Pando yet"})
	return nil
}

// recordAppEvent writes an audit event; failures are logged, not returned:
// the user's action already happened.
func (a *API) recordAppEvent(ctx context.Context, id Identity, typ string, app pando.App, data map[string]any) {
	orgGUID := ""
	if s, err := a.db(ctx).GetSpace(ctx, app.SpaceGUID); err == nil {
		orgGUID = s.OrgGUID
	}
	ev := pando.Event{
		GUID: a.newGUID(), Type: typ, ActorGUID: id.UserGUID, ActorType: "user", ActorName: id.UserName,
		TargetGUID: app.GUID, TargetType: "app", TargetName: app.Name, SpaceGUID: app.SpaceGUID,
		OrgGUID: orgGUID, Data: data, CreatedAt: a.now(),
	}
	if ev.ActorGUID == "" {
		ev.ActorType = "system"
		ev.ActorName = "pando"
	}
	if err := a.createEvent(ctx, ev); err != nil {
		a.log.Warn("record event", "type", typ, "app_guid", app.GUID, "err", err)
	}
}

// getAppEnv answers /v3/apps/:guid/env: the user's variables plus the
// system and application environment the app runs with.
func (a *API) getAppEnv(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	// Non-admin users are space developers until Pando has roles.
	for _, flag := range []string{FlagEnvVarVisibility, FlagSpaceDeveloperEnvVarVisibility} {
		if err := a.requireFeature(ctx, identityFrom(ctx), flag); err != nil {
			return err
		}
	}
	vars := app.EnvVars
	if vars == nil {
		vars = map[string]string{}
	}
	a.recordAppEvent(ctx, identityFrom(ctx), "audit.app.environment.show", app, map[string]any{})
	running, err := a.envGroup(ctx, pando.EnvGroupRunning)
	if err != nil {
		return err
	}
	staging, err := a.envGroup(ctx, pando.EnvGroupStaging)
	if err != nil {
		return err
	}
	services, err := a.vcapServices(ctx, app.GUID, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"environment_variables": vars,
		"staging_env_json":      staging.Vars,
		"running_env_json":      running.Vars,
		"system_env_json":       map[string]any{"VCAP_SERVICES": services},
		"application_env_json":  map[string]any{"VCAP_APPLICATION": a.vcapApplication(ctx, app)},
	})
	return nil
}

// vcapApplication is the API's part of VCAP_APPLICATION (the cell adds the
// instance's own fields when it runs it).
func (a *API) vcapApplication(ctx context.Context, app pando.App) map[string]any {
	space, _ := a.db(ctx).GetSpace(ctx, app.SpaceGUID)
	org, _ := a.db(ctx).GetOrg(ctx, space.OrgGUID)
	uris, _ := a.routeHostnames(ctx, app.GUID)
	if uris == nil {
		uris = []string{}
	}
	memMB, diskMB := a.cfg.DefaultMemoryMB, a.cfg.DefaultDiskMB
	if p, err := a.db(ctx).GetProcess(ctx, app.GUID); err == nil {
		memMB, diskMB = p.MemoryMB, p.DiskMB
	}
	return map[string]any{
		"application_id": app.GUID, "application_name": app.Name, "name": app.Name,
		"application_uris": uris, "uris": uris, "space_id": space.GUID, "space_name": space.Name,
		"organization_id": org.GUID, "organization_name": org.Name, "cf_api": a.cfg.BaseURL,
		"limits": map[string]any{"mem": memMB, "disk": diskMB, "fds": 16384},
	}
}
