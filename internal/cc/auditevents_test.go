package cc

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// TestEvents_crashIsRecordedTwiceAsCFDoes: a crash is both
// audit.app.process.crash and the legacy app.crash (what `cf events` users
// match on), with the app as the actor and the exit description.
func TestEvents_crashIsRecordedTwiceAsCFDoes(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("crashy")
	e.api.HandleInstanceCrashed(t.Context(), pando.ActualLRP{
		ProcessGUID: app.GUID, Index: 1, InstanceGUID: "inst-1", CellID: "cell-0", State: pando.ActualCrashed,
		CrashCount: 2, CrashReason: "APP/PROC/WEB: Exited with status 5", Since: time.Now(),
	})
	for _, typ := range []string{"audit.app.process.crash", "app.crash"} {
		evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types="+typ+"&target_guids="+app.GUID, "", nil), http.StatusOK))
		if len(evs) != 1 {
			t.Fatalf("%s events: %v", typ, evs)
		}
		ev := evs[0]
		actor, data := ev["actor"].(map[string]any), ev["data"].(map[string]any)
		if actor["type"] != "app" || actor["guid"] != app.GUID || actor["name"] != "crashy" {
			t.Errorf("%s actor = %v, want the app", typ, actor)
		}
		if data["exit_description"] != "APP/PROC/WEB: Exited with status 5" || data["index"] != 1.0 || data["reason"] != "CRASHED" ||
			data["instance"] != "inst-1" || data["cell_id"] != "cell-0" {
			t.Errorf("%s data = %v", typ, data)
		}
	}
}

// TestEvents_crashFromACellsFailureIsWordedAsCFDoes: a cell reports the
// failure's kind; both crash events carry CF's words for it.
func TestEvents_crashFromACellsFailureIsWordedAsCFDoes(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("oomy")
	e.api.HandleInstanceCrashed(t.Context(), pando.ActualLRP{
		ProcessGUID: app.GUID, Index: 1, InstanceGUID: "inst-1", CellID: "cell-0", State: pando.ActualCrashed,
		CrashCount: 1, Crash: &pando.Failure{Kind: pando.FailureOOM, ExitCode: 137}, Since: time.Now(),
	})
	for _, typ := range []string{"audit.app.process.crash", "app.crash"} {
		evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types="+typ+"&target_guids="+app.GUID, "", nil), http.StatusOK))
		if len(evs) != 1 {
			t.Fatalf("%s events: %v", typ, evs)
		}
		if got := evs[0]["data"].(map[string]any)["exit_description"]; got != "APP/PROC/WEB/1 Exited with status 137 (out of memory)" {
			t.Errorf("%s exit_description = %q", typ, got)
		}
	}
}

func TestEvents_envReadsAreAudited(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("secretive")
	e.ok(e.do("GET", "/v3/apps/"+app.GUID+"/env", "", nil), http.StatusOK)
	e.ok(e.do("GET", "/v3/apps/"+app.GUID+"/environment_variables", "", nil), http.StatusOK)
	for _, typ := range []string{"audit.app.environment.show", "audit.app.environment_variables.show"} {
		evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types="+typ+"&target_guids="+app.GUID, "", nil), http.StatusOK))
		if len(evs) != 1 || evs[0]["actor"].(map[string]any)["name"] != "admin" {
			t.Errorf("%s events: %v", typ, evs)
		}
	}
}

func TestEvents_routeCreateAndDeleteAreAudited(t *testing.T) {
	e := ptNew(t, nil)
	body := `{"host":"audited","relationships":{"space":{"data":{"guid":"` + e.space().GUID + `"}},"domain":{"data":{"guid":"` + e.domain().GUID + `"}}}}`
	rt := e.ok(e.do("POST", "/v3/routes", "application/json", strings.NewReader(body)), http.StatusCreated)["guid"].(string)
	e.job(e.do("DELETE", "/v3/routes/"+rt, "", nil))
	for _, typ := range []string{"audit.route.create", "audit.route.delete-request"} {
		evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types="+typ+"&target_guids="+rt, "", nil), http.StatusOK))
		if len(evs) != 1 || evs[0]["target"].(map[string]any)["type"] != "route" || evs[0]["target"].(map[string]any)["name"] != "audited" ||
			evs[0]["actor"].(map[string]any)["name"] != "admin" {
			t.Errorf("%s events: %v", typ, evs)
		}
	}
}

// TestEvents_updatesAndCredentialReadsAreAudited: the events CF records for
// renaming an org or space (cf rename-org, rename-space) and for reading a
// user-provided instance's credentials or a binding's details.
func TestEvents_updatesAndCredentialReadsAreAudited(t *testing.T) {
	e, app := svNew(t)
	sp := e.space()
	e.ok(e.do("PATCH", "/v3/organizations/"+sp.OrgGUID, "application/json", strings.NewReader(`{"name":"renamed-org"}`)), http.StatusOK)
	e.ok(e.do("PATCH", "/v3/spaces/"+sp.GUID, "application/json", strings.NewReader(`{"name":"renamed-space"}`)), http.StatusOK)
	si := e.post("/v3/service_instances", `{"credentials":{"pw":"x"},"name":"db","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}},"type":"user-provided"}`)["guid"].(string)
	b := e.post("/v3/service_credential_bindings", `{"relationships":{"app":{"data":{"guid":"`+app.GUID+`"}},"service_instance":{"data":{"guid":"`+si+`"}}},"type":"app"}`)["guid"].(string)
	e.ok(e.do("GET", "/v3/service_instances/"+si+"/credentials", "", nil), http.StatusOK)
	e.ok(e.do("GET", "/v3/service_credential_bindings/"+b+"/details", "", nil), http.StatusOK)

	for _, want := range []struct{ typ, target, targetType, name string }{
		{"audit.organization.update", sp.OrgGUID, "organization", "renamed-org"},
		{"audit.space.update", sp.GUID, "space", "renamed-space"},
		{"audit.user_provided_service_instance.show", si, "user_provided_service_instance", "db"},
		{"audit.service_binding.show", app.GUID, "app", app.Name},
	} {
		evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types="+want.typ+"&target_guids="+want.target, "", nil), http.StatusOK))
		if len(evs) != 1 {
			t.Errorf("%s events: %v", want.typ, evs)
			continue
		}
		tg := evs[0]["target"].(map[string]any)
		if tg["type"] != want.targetType || tg["name"] != want.name || evs[0]["actor"].(map[string]any)["type"] != "user" {
			t.Errorf("%s: %v", want.typ, evs[0])
		}
	}
	upd := ptResources(e.ok(e.do("GET", "/v3/audit_events?types=audit.space.update", "", nil), http.StatusOK))
	if req, _ := upd[0]["data"].(map[string]any)["request"].(map[string]any); req["name"] != "renamed-space" {
		t.Errorf("space update data: %v", upd[0]["data"])
	}
	show := ptResources(e.ok(e.do("GET", "/v3/audit_events?types=audit.service_binding.show", "", nil), http.StatusOK))
	if d := show[0]["data"].(map[string]any); d["service_binding_guid"] != b || strings.Contains(fmt.Sprint(d), "pw") {
		t.Errorf("binding show data: %v", d)
	}
}

// TestEvents_newProcessTypeIsAudited: a droplet that brings a new process
// type creates the process and records audit.app.process.create, as CF.
func TestEvents_newProcessTypeIsAudited(t *testing.T) {
	e := ptNew(t, nil)
	app := e.startedApp("workers")
	d := pando.Droplet{GUID: "droplet-2", AppGUID: app.GUID, State: pando.DropletStaged, LifecycleType: pando.LifecycleBuildpack,
		ProcessTypes: map[string]string{"web": "./run", "worker": "./work"}, Stack: "host"}
	if err := e.store.CreateDroplet(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	e.ok(e.do("PATCH", "/v3/apps/"+app.GUID+"/relationships/current_droplet", "application/json", strings.NewReader(`{"data":{"guid":"droplet-2"}}`)), http.StatusOK)
	evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types=audit.app.process.create&target_guids="+app.GUID, "", nil), http.StatusOK))
	if len(evs) != 1 || evs[0]["data"].(map[string]any)["process_type"] != "worker" {
		t.Fatalf("process create events: %v", evs)
	}
	procs, err := e.store.ListProcesses(t.Context(), nil, []string{app.GUID})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Type == "worker" && evs[0]["data"].(map[string]any)["process_guid"] != p.GUID {
			t.Errorf("event names process %v, the worker is %s", evs[0]["data"], p.GUID)
		}
	}
	// Assigning it again creates nothing.
	e.ok(e.do("PATCH", "/v3/apps/"+app.GUID+"/relationships/current_droplet", "application/json", strings.NewReader(`{"data":{"guid":"droplet-2"}}`)), http.StatusOK)
	if evs := ptResources(e.ok(e.do("GET", "/v3/audit_events?types=audit.app.process.create", "", nil), http.StatusOK)); len(evs) != 1 {
		t.Errorf("events after a second assignment: %d", len(evs))
	}
}

// Audit events older than CF's 31 days go when events are recorded (at
// most hourly), so what tenants do cannot grow the CCDB without end.
func TestEvents_olderThan31DaysArePruned(t *testing.T) {
	e := tnNew(t)
	ctx := t.Context()
	old := func(guid string, age time.Duration) {
		t.Helper()
		if err := e.store.CreateEvent(ctx, pando.Event{GUID: guid, Type: "audit.app.update", ActorType: "user", TargetType: "app", CreatedAt: time.Now().Add(-age)}); err != nil {
			t.Fatal(err)
		}
	}
	left := func() map[string]bool {
		t.Helper()
		evs, err := e.store.ListEvents(ctx, pando.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, ev := range evs {
			out[ev.GUID] = true
		}
		return out
	}
	old("expired", 32*24*time.Hour)
	old("recent", 30*24*time.Hour)
	e.post("/v3/organizations", `{"name":"o1"}`)
	got := left()
	if got["expired"] || !got["recent"] {
		t.Errorf("after an event: expired kept %v, recent kept %v; want only the recent one", got["expired"], got["recent"])
	}
	// Within the hour, recording does not prune again.
	old("expired-later", 32*24*time.Hour)
	e.post("/v3/organizations", `{"name":"o2"}`)
	if !left()["expired-later"] {
		t.Error("events pruned twice within an hour")
	}
}
