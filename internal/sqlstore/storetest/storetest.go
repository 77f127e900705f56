// Package storetest is the conformance suite for pando.Store: every
// implementation (SQLite, PostgreSQL) runs Run against a fresh, empty store
// and must pass unchanged. It pins down the contract the API relies on:
// not-found and conflict errors, filters, ordering, cascades, transactions,
// and exact round-trips of JSON fields and timestamps.
package storetest

import (
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// Run runs the suite. open must return a new, empty store for each call and
// close it when the test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) pando.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s pando.Store)
	}{
		{"Orgs", testOrgs},
		{"Spaces", testSpaces},
		{"Apps", testApps},
		{"Apps_jsonFieldsRoundTrip", testAppJSON},
		{"Processes", testProcesses},
		{"Packages", testPackages},
		{"Builds", testBuilds},
		{"Droplets", testDroplets},
		{"DeleteApp_cascades", testDeleteAppCascades},
		{"Domains", testDomains},
		{"Routes", testRoutes},
		{"RouteDestinations", testRouteDestinations},
		{"ServiceRouteBindings", testServiceRouteBindings},
		{"Buildpacks", testBuildpacks},
		{"Stacks", testStacks},
		{"Events", testEvents},
		{"Users", testUsers},
		{"Tenancy", testTenancy},
		{"Quotas", testQuotas},
		{"Jobs", testJobs},
		{"AppTasks", testAppTasks},
		{"FeatureFlags", testFeatureFlags},
		{"EnvGroups", testEnvGroups},
		{"AppUsageEvents", testAppUsageEvents},
		{"Timestamps", testTimestamps},
		{"Lists_creationOrder", testCreationOrder},
		{"InTx_commits", testTxCommit},
		{"InTx_rollsBackOnError", testTxRollback},
		{"InTx_rollsBackOnPanic", testTxPanic},
		{"InTx_nested", testTxNested},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// base is a fixed timestamp with nanoseconds, so round-trips are checked to
// full precision.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

func at(seconds int) time.Time { return base.Add(time.Duration(seconds) * time.Second) }

func newGUID(prefix string) string {
	return prefix + "-" + strings.ToLower(rand.Text()[:16])
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantKind fails unless err is a *pando.Error of kind whose message
// contains every string in contains.
func wantKind(t *testing.T, err error, kind pando.ErrorKind, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", kind)
	}
	var pe *pando.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want *pando.Error of kind %s", err, err, kind)
	}
	if pe.Kind != kind {
		t.Fatalf("got kind %s (%v), want %s", pe.Kind, err, kind)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not mention %q", err, c)
		}
	}
}

func wantEqual[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

// guidsOf returns the GUIDs of xs in order.
func guidsOf[T any](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = reflect.ValueOf(x).FieldByName("GUID").String()
	}
	return out
}

func wantGUIDs[T any](t *testing.T, got []T, want ...string) {
	t.Helper()
	g := guidsOf(got)
	if len(g) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("got GUIDs %v, want %v", g, want)
	}
}

// fixture creates an org, a space and an app and returns them.
type fixture struct {
	org   pando.Org
	space pando.Space
	app   pando.App
}

func seed(t *testing.T, s pando.Store) fixture {
	t.Helper()
	ctx := t.Context()
	f := fixture{
		org: pando.Org{GUID: newGUID("org"), Name: "org-" + newGUID("o"), CreatedAt: at(0), UpdatedAt: at(0)},
	}
	f.space = pando.Space{GUID: newGUID("space"), Name: "dev", OrgGUID: f.org.GUID, CreatedAt: at(1), UpdatedAt: at(1)}
	must(t, s.CreateOrg(ctx, f.org))
	must(t, s.CreateSpace(ctx, f.space))
	f.app = newApp(f.space.GUID, "app-"+newGUID("a"))
	must(t, s.CreateApp(ctx, f.app))
	return f
}

func newApp(spaceGUID, name string) pando.App {
	return pando.App{
		GUID:          newGUID("app"),
		Name:          name,
		SpaceGUID:     spaceGUID,
		State:         pando.AppStopped,
		LifecycleType: pando.LifecycleBuildpack,
		Buildpacks:    []string{"go_buildpack"},
		Stack:         "host",
		EnvVars:       map[string]string{"A": "1"},
		Revision:      1,
		CreatedAt:     at(2),
		UpdatedAt:     at(2),
	}
}

func newProcess(appGUID, typ string) pando.Process {
	return pando.Process{
		GUID:                         newGUID("proc"),
		AppGUID:                      appGUID,
		Type:                         typ,
		Command:                      "./server --port $PORT",
		Instances:                    2,
		MemoryMB:                     256,
		DiskMB:                       1024,
		LogRateLimitBytes:            -1,
		HealthCheckType:              pando.HealthCheckHTTP,
		HealthCheckEndpoint:          "/health",
		HealthCheckTimeout:           60,
		HealthCheckInvocationTimeout: 1,
		CreatedAt:                    at(3),
		UpdatedAt:                    at(3),
	}
}

func newPackage(appGUID string) pando.Package {
	return pando.Package{
		GUID:    newGUID("pkg"),
		AppGUID: appGUID,
		Type:    "bits",
		State:   pando.PackageReady,
		SHA1:    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
		SHA256:  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Size:    1 << 40, // beyond 32 bits
		// The digest of the package's files, kept for droplet reuse.
		FilesSHA256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		CreatedAt:   at(4),
		UpdatedAt:   at(4),
	}
}

func newBuild(appGUID, pkgGUID string) pando.Build {
	return pando.Build{
		GUID:            newGUID("build"),
		AppGUID:         appGUID,
		PackageGUID:     pkgGUID,
		State:           pando.BuildStaging,
		LifecycleType:   pando.LifecycleBuildpack,
		Buildpacks:      []string{"binary_buildpack", "go_buildpack"},
		Stack:           "host",
		StagingMemoryMB: 1024,
		StagingDiskMB:   4096,
		CreatedByGUID:   "user-1",
		CreatedByName:   "admin",
		CreatedAt:       at(5),
		UpdatedAt:       at(5),
	}
}

func newDroplet(appGUID, pkgGUID string) pando.Droplet {
	return pando.Droplet{
		GUID:              newGUID("droplet"),
		AppGUID:           appGUID,
		PackageGUID:       pkgGUID,
		State:             pando.DropletStaged,
		LifecycleType:     pando.LifecycleBuildpack,
		ProcessTypes:      map[string]string{"web": "./server", "worker": "./worker -q"},
		ExecutionMetadata: `{"cmd":["./server"]}`,
		DetectedBuildpack: "go",
		BuildpackName:     "go_buildpack",
		BuildpackVersion:  "1.2.3",
		Buildpacks:        []pando.StagedBuildpack{{Name: "apt_buildpack"}, {Name: "go_buildpack", Version: "1.2.3", DetectOutput: "go"}},
		StagingInputs:     "d2b1f7e0c6a34f6ad0b8b0f1bb3c4c1de64f5a8e1d7e2b2a3c4d5e6f708192a3",
		Stack:             "host",
		SHA1:              "abc",
		SHA256:            "def",
		Size:              12345,
		CreatedAt:         at(6),
		UpdatedAt:         at(6),
	}
}
