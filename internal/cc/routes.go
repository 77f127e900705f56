package cc

import (
	"net/http"
)

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) wrap(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// routes registers every endpoint. Root, info and the UAA endpoints need no
// token; everything else needs one with the scope authorize asks for.
func (a *API) routes() {
	pub := http.NewServeMux()
	authed := http.NewServeMux()
	a.mux = pub
	a.authed = authed

	pub.Handle("GET /{$}", a.wrap(a.getRoot))
	pub.Handle("GET /v3/{$}", a.wrap(a.getV3Root))
	pub.Handle("GET /v3", a.wrap(a.getV3Root))
	pub.Handle("GET /v3/info", a.wrap(a.getInfo))
	if a.cfg.PublicRoutes != nil {
		a.cfg.PublicRoutes(pub)
	}
	pub.Handle("/", a.requireAuth(a.authorize(a.refuseUnsupported(authed))))

	h := func(pattern string, fn handlerFunc) {
		a.patterns = append(a.patterns, pattern)
		authed.Handle(pattern, a.wrap(fn))
	}

	// Apps.
	h("GET /v3/apps", a.listApps)
	h("POST /v3/apps", a.postApp)
	h("GET /v3/apps/{guid}", a.getApp)
	h("PATCH /v3/apps/{guid}", a.patchApp)
	h("DELETE /v3/apps/{guid}", a.deleteAppHandler)
	h("POST /v3/apps/{guid}/actions/start", a.startAppHandler)
	h("POST /v3/apps/{guid}/actions/stop", a.stopAppHandler)
	h("POST /v3/apps/{guid}/actions/restart", a.restartAppHandler)
	h("GET /v3/apps/{guid}/droplets/current", a.getCurrentDroplet)
	h("GET /v3/apps/{guid}/relationships/current_droplet", a.getCurrentDropletRel)
	h("PATCH /v3/apps/{guid}/relationships/current_droplet", a.setCurrentDroplet)
	h("GET /v3/apps/{guid}/droplets", a.listAppDroplets)
	h("GET /v3/apps/{guid}/packages", a.listAppPackages)
	h("GET /v3/apps/{guid}/builds", a.listAppBuilds)
	h("GET /v3/apps/{guid}/env", a.getAppEnv)
	h("GET /v3/apps/{guid}/environment_variables", a.getAppEnvVars)
	h("PATCH /v3/apps/{guid}/environment_variables", a.patchAppEnvVars)
	h("GET /v3/apps/{guid}/processes", a.listAppProcesses)
	h("GET /v3/apps/{guid}/processes/{type}", a.byType(a.getProcess))
	h("PATCH /v3/apps/{guid}/processes/{type}", a.byType(a.patchProcess))
	h("GET /v3/apps/{guid}/processes/{type}/stats", a.byType(a.getProcessStats))
	h("POST /v3/apps/{guid}/processes/{type}/actions/scale", a.byType(a.scaleProcess))
	h("GET /v3/apps/{guid}/features", a.listAppFeatures)
	h("GET /v3/apps/{guid}/features/{name}", a.getAppFeature)
	h("PATCH /v3/apps/{guid}/features/{name}", a.patchAppFeature)
	h("GET /v3/apps/{guid}/ssh_enabled", a.getSSHEnabled)
	h("GET /v3/apps/{guid}/revisions", a.appEmptyList)
	h("GET /v3/apps/{guid}/revisions/deployed", a.appEmptyList)
	h("GET /v3/apps/{guid}/sidecars", a.appEmptyList)
	h("GET /v3/apps/{guid}/tasks", a.listAppTasks)
	h("POST /v3/apps/{guid}/tasks", a.postAppTask)

	// Processes.
	h("GET /v3/processes", a.listProcesses)
	h("GET /v3/processes/{guid}", a.byGUID(a.getProcess))
	h("PATCH /v3/processes/{guid}", a.byGUID(a.patchProcess))
	h("GET /v3/processes/{guid}/stats", a.byGUID(a.getProcessStats))
	h("POST /v3/processes/{guid}/actions/scale", a.byGUID(a.scaleProcess))
	h("GET /v3/processes/{guid}/sidecars", a.emptyListHandler)
	h("GET /pando/v1/processes/{guid}/stats", a.waitProcessStats)
	h("GET /v3/deployments", a.emptyListHandler)

	// Packages, bits, builds, droplets.
	h("POST /v3/resource_matches", a.postResourceMatches)
	h("GET /v3/packages", a.listPackages)
	h("POST /v3/packages", a.postPackage)
	h("GET /v3/packages/{guid}", a.getPackage)
	h("POST /v3/packages/{guid}/upload", a.uploadPackage)
	h("GET /v3/packages/{guid}/download", a.downloadPackage)
	h("GET /v3/packages/{guid}/droplets", a.listPackageDroplets)
	h("GET /v3/builds", a.listBuilds)
	h("POST /v3/builds", a.postBuild)
	h("GET /v3/builds/{guid}", a.getBuild)
	h("GET /pando/v1/builds/{guid}", a.waitBuild)
	h("GET /v3/droplets", a.listDroplets)
	h("GET /v3/droplets/{guid}", a.getDroplet)
	h("GET /v3/droplets/{guid}/download", a.downloadDroplet)
	h("GET /v3/jobs/{guid}", a.getJob)

	// Tasks (cf run-task).
	h("GET /v3/tasks", a.listTasks)
	h("GET /v3/tasks/{guid}", a.getTask)
	h("POST /v3/tasks/{guid}/actions/cancel", a.cancelTaskHandler)
	// cf terminate-task sends the older form (the CLI's PutTaskCancelRequest).
	h("PUT /v3/tasks/{guid}/cancel", a.cancelTaskHandler)
	h("GET /pando/v1/tasks/{guid}", a.waitTask)
	h("GET /pando/v1/cells", a.getCells)
	h("POST /pando/v1/cells/{id}/drain", a.drainCell)
	h("POST /pando/v1/cells/{id}/undrain", a.undrainCell)

	a.registerPlatformRoutes(h)
	a.registerTenancyRoutes(h)
	a.registerServiceRoutes(h)

	if a.cfg.AuthedRoutes != nil {
		a.cfg.AuthedRoutes(authed)
	}
	authed.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeCFError(w, http.StatusNotFound, 10000, "CF-NotFound", "Unknown request")
	})
}

// appEmptyList answers an app's sub-collection Pando has nothing in yet
// (sidecars, revisions) — after checking the app exists.
func (a *API) appEmptyList(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.getAppByGUID(r.Context(), r.PathValue("guid")); err != nil {
		return err
	}
	a.emptyList(w, r)
	return nil
}

func (a *API) emptyListHandler(w http.ResponseWriter, r *http.Request) error {
	a.emptyList(w, r)
	return nil
}
