package cc

import (
	"context"

	pando "github.com/pandoplatform/pando"
)

// EventPlacementFailed is the audit event of an instance that no cell can
// take (CF has no such event; Diego only shows the reason on the instance).
const EventPlacementFailed = "audit.app.process.placement-failed"

// HandlePlacementFailed records that an instance fits on no cell, with the
// reason ("insufficient resources: memory", "found no compatible cell: no
// cell has stack ...", "no healthy cells"), so `cf events` and `pando
// events` say why an app is not running. The instance stays UNCLAIMED and
// is placed as soon as a cell can take it; the caller records one event
// per process revision and reason, not one per instance or retry.
func (a *API) HandlePlacementFailed(ctx context.Context, al pando.ActualLRP) {
	p, err := a.store.GetProcess(ctx, al.ProcessGUID)
	if err != nil {
		return
	}
	app, err := a.store.GetApp(ctx, p.AppGUID)
	if err != nil {
		return
	}
	a.recordAppEvent(ctx, Identity{}, EventPlacementFailed, app, map[string]any{
		"index":        al.Index,
		"instance":     al.InstanceGUID,
		"reason":       al.PlacementError,
		"process_type": p.Type,
	})
}
