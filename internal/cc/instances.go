package cc

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pandoplatform/pando"
)

// InstanceRestarter stops one instance of a desired process so the runtime
// starts a fresh one in its place (cf restart-app-instance). The BBS
// implements it; ENotFound means the runtime runs no such instance.
type InstanceRestarter interface {
	RestartInstance(ctx context.Context, processGUID string, index int) error
}

// instanceRestarter is Config.Instances, or the runtime when it can
// restart instances itself.
func (a *API) instanceRestarter() InstanceRestarter {
	if a.cfg.Instances != nil {
		return a.cfg.Instances
	}
	r, _ := a.rt.(InstanceRestarter)
	return r
}

func (a *API) registerInstanceRoutes(h func(string, handlerFunc)) {
	h("DELETE /v3/apps/{guid}/processes/{type}/instances/{index}", a.byType(a.terminateInstance))
	h("DELETE /v3/processes/{guid}/instances/{index}", a.byGUID(a.terminateInstance))
}

// terminateInstance stops one instance; the runtime replaces it at once
// (CF leaves that to health management, which does the same a little
// later). It answers 204, like CF.
func (a *API) terminateInstance(w http.ResponseWriter, r *http.Request, p pando.Process) error {
	ctx := r.Context()
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || index < 0 || index >= p.Instances {
		return notFound("Instance")
	}
	app, err := a.getAppByGUID(ctx, p.AppGUID)
	if err != nil {
		return err
	}
	restarter := a.instanceRestarter()
	if restarter == nil {
		return pando.Errorf(pando.EUnavailable, "This Pando runtime cannot restart single instances")
	}
	// The restart must finish even if the client goes away.
	err = restarter.RestartInstance(context.WithoutCancel(ctx), p.GUID, index)
	switch {
	case pando.IsNotFound(err):
		// Nothing runs (the app is stopped or not staged): nothing to stop.
	case err != nil:
		return fmt.Errorf("restart instance %d of process %s: %w", index, p.GUID, err)
	}
	a.recordAppEvent(ctx, identityFrom(ctx), "audit.app.process.terminate_instance", app, map[string]any{
		"process_guid": p.GUID, "process_type": p.Type, "process_index": index,
	})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
