package storetest

import (
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

func testFeatureFlags(t *testing.T, s pando.Store) {
	ctx := t.Context()
	flags, err := s.ListFeatureFlags(ctx)
	must(t, err)
	if len(flags) != 0 {
		t.Fatalf("fresh store has flags %v", flags)
	}
	must(t, s.PutFeatureFlag(ctx, pando.FeatureFlag{Name: "task_creation", Enabled: false, CustomErrorMessage: "no tasks here", UpdatedAt: at(1)}))
	must(t, s.PutFeatureFlag(ctx, pando.FeatureFlag{Name: "diego_docker", Enabled: true, UpdatedAt: at(2)}))
	// A second put replaces the first.
	must(t, s.PutFeatureFlag(ctx, pando.FeatureFlag{Name: "task_creation", Enabled: true, UpdatedAt: at(3)}))
	flags, err = s.ListFeatureFlags(ctx)
	must(t, err)
	wantEqual(t, flags, []pando.FeatureFlag{
		{Name: "diego_docker", Enabled: true, UpdatedAt: at(2)},
		{Name: "task_creation", Enabled: true, UpdatedAt: at(3)},
	})
}

func testEnvGroups(t *testing.T, s pando.Store) {
	ctx := t.Context()
	_, err := s.GetEnvGroup(ctx, pando.EnvGroupRunning)
	wantKind(t, err, pando.ENotFound, "running")
	must(t, s.PutEnvGroup(ctx, pando.EnvGroup{Name: pando.EnvGroupRunning, Vars: map[string]string{"A": "1", "B": "x y"}, UpdatedAt: at(1)}))
	must(t, s.PutEnvGroup(ctx, pando.EnvGroup{Name: pando.EnvGroupStaging, UpdatedAt: at(2)}))
	must(t, s.PutEnvGroup(ctx, pando.EnvGroup{Name: pando.EnvGroupRunning, Vars: map[string]string{"A": "2"}, UpdatedAt: at(3)}))
	g, err := s.GetEnvGroup(ctx, pando.EnvGroupRunning)
	must(t, err)
	wantEqual(t, g, pando.EnvGroup{Name: pando.EnvGroupRunning, Vars: map[string]string{"A": "2"}, UpdatedAt: at(3)})
	g, err = s.GetEnvGroup(ctx, pando.EnvGroupStaging)
	must(t, err)
	wantEqual(t, g, pando.EnvGroup{Name: pando.EnvGroupStaging, Vars: map[string]string{}, UpdatedAt: at(2)})
}

func testAppUsageEvents(t *testing.T, s pando.Store) {
	ctx := t.Context()
	ev := func(guid, state string, sec int) pando.AppUsageEvent {
		return pando.AppUsageEvent{
			GUID: guid, State: state, PreviousState: pando.UsageStopped, AppGUID: "app-1", AppName: "web",
			ProcessGUID: "app-1", ProcessType: "web", SpaceGUID: "space-1", SpaceName: "dev", OrgGUID: "org-1",
			InstanceCount: 2, PreviousInstanceCount: 1, MemoryMB: 256, PreviousMemoryMB: 128, CreatedAt: at(sec),
		}
	}
	a, b, c := ev(newGUID("u"), pando.UsageStarted, 1), ev(newGUID("u"), pando.UsageStopped, 2), ev(newGUID("u"), pando.UsageBuildpackSet, 2)
	c.BuildpackGUID, c.BuildpackName = "bp-1", "go_buildpack"
	for _, e := range []pando.AppUsageEvent{a, b, c} {
		must(t, s.CreateAppUsageEvent(ctx, e))
	}
	wantKind(t, s.CreateAppUsageEvent(ctx, a), pando.EConflict)

	got, err := s.GetAppUsageEvent(ctx, c.GUID)
	must(t, err)
	wantEqual(t, got, c)
	_, err = s.GetAppUsageEvent(ctx, "nope")
	wantKind(t, err, pando.ENotFound)

	all, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{})
	must(t, err)
	wantGUIDs(t, all, a.GUID, b.GUID, c.GUID)
	after, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{AfterGUID: a.GUID, Descending: true})
	must(t, err)
	wantGUIDs(t, after, c.GUID, b.GUID)
	some, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{GUIDs: []string{a.GUID, c.GUID}})
	must(t, err)
	wantGUIDs(t, some, a.GUID, c.GUID)

	must(t, s.DeleteAppUsageEventsBefore(ctx, at(2)))
	left, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{})
	must(t, err)
	wantGUIDs(t, left, b.GUID, c.GUID)
	must(t, s.DeleteAppUsageEventsBefore(ctx, time.Time{}))
	left, err = s.ListAppUsageEvents(ctx, pando.AppUsageFilter{})
	must(t, err)
	wantGUIDs(t, left)
}
