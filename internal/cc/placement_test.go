package cc

import (
	"net/http"
	"testing"

	pando "github.com/pandoplatform/pando"
)

func TestHandlePlacementFailed_recordsTheReason(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("big")
	procs, err := e.store.ListProcesses(t.Context(), nil, []string{app.GUID})
	if err != nil || len(procs) != 1 {
		t.Fatalf("processes %v %v", procs, err)
	}

	e.api.HandlePlacementFailed(t.Context(), pando.ActualLRP{ProcessGUID: procs[0].GUID, Index: 0,
		InstanceGUID: "i-0", State: pando.ActualUnclaimed, PlacementError: "insufficient resources: memory"})

	events := ptResources(e.ok(e.do("GET", "/v3/audit_events?target_guids="+app.GUID, "", nil), http.StatusOK))
	for _, ev := range events {
		if ev["type"] != EventPlacementFailed {
			continue
		}
		data, _ := ev["data"].(map[string]any)
		if data["reason"] != "insufficient resources: memory" || data["process_type"] != "web" {
			t.Errorf("event data %v", data)
		}
		if actor, _ := ev["actor"].(map[string]any); actor["type"] != "system" {
			t.Errorf("actor %v", ev["actor"])
		}
		return
	}
	t.Errorf("no %s event in %v", EventPlacementFailed, events)
}
