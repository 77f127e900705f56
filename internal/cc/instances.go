package cc

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pandoplatform/pando"
)

func (a *API) registerInstanceRoutes(h func(string, handlerFunc)) {
	h("DELETE /v3/apps/{guid}/processes/{type}/instances/{index}", a.byType(a.terminateInstance))
	h("DELETE /v3/processes/{guid}/instances/{index}", a.byGUID(a.terminateInstance))
}

// terminateInstance is cf restart-app-instance: the runtime retires the
// instance at the index and starts a fresh one in its place at once (CF
// leaves that to health management, which does the same a little later).
// It answers 204, like CF; an index nothing runs at (a stopped app) has
// nothing to stop.
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
	actuals, err := a.rt.ActualLRPs(ctx, p.GUID)
	if err != nil {
		return fmt.Errorf("instances of process %s: %w", p.GUID, err)
	}
	for _, al := range actuals {
		if al.Index != index {
			continue
		}
		// The restart must finish even if the client goes away.
		err := a.rt.RetireActualLRP(context.WithoutCancel(ctx), p.GUID, al.InstanceGUID)
		if err != nil && !pando.IsNotFound(err) {
			return fmt.Errorf("restart instance %d of process %s: %w", index, p.GUID, err)
		}
	}
	a.recordAppEvent(ctx, identityFrom(ctx), "audit.app.process.terminate_instance", app, map[string]any{
		"process_guid": p.GUID, "process_type": p.Type, "process_index": index,
	})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
