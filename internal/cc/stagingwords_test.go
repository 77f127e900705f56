package cc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/logs"
	"github.com/pandoplatform/pando/internal/sqlstore"
)

// TestStagingError: each way a staging fails reads as CF words it on the
// build (and as Pando did when cells sent the words).
func TestStagingError(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    pando.Failure
		want string
	}{
		{"no buildpack detected", pando.Failure{Kind: pando.FailureNoAppDetected, ExitCode: 222},
			"NoAppDetectedError - An app was not successfully detected by any available buildpack"},
		{"compile failed", pando.Failure{Kind: pando.FailureCompileFailed, ExitCode: 223},
			"BuildpackCompileFailed - App staging failed in the buildpack compile phase"},
		{"release failed", pando.Failure{Kind: pando.FailureReleaseFailed, ExitCode: 224},
			"BuildpackReleaseFailed - App staging failed in the buildpack release phase"},
		{"supply failed", pando.Failure{Kind: pando.FailureSupplyFailed, ExitCode: 225},
			"StagingError - Staging error: App staging failed in the buildpack supply phase"},
		{"another exit status", pando.Failure{Kind: pando.FailureExited, ExitCode: 1},
			"StagingError - Staging error: staging failed (exit status 1)"},
		{"out of memory", pando.Failure{Kind: pando.FailureOOM, ExitCode: 137, LimitMB: 1024},
			"StagingError - Staging error: staging failed: out of memory (limit 1024 MB)"},
		{"disk quota", pando.Failure{Kind: pando.FailureDiskFull, LimitMB: 32},
			"StagingError - Staging error: staging exceeded its disk quota of 32 MB"},
		{"timeout", pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: 15 * time.Minute},
			"StagingTimeExpired - Staging time expired: staging did not finish within 15m0s"},
		{"cancelled", pando.Failure{Kind: pando.FailureCancelled}, "StagingError - Staging error: staging was cancelled"},
		{"cell shut down", pando.Failure{Kind: pando.FailureCellShutdown},
			"StagingError - Staging error: cell cell-7 shut down before staging completed; push again"},
		{"cell-side error", pando.Failure{Kind: pando.FailureStagingError, Detail: "download app package: connection reset"},
			"StagingError - Staging error: download app package: connection reset"},
		{"registry refused the credentials", pando.Failure{Kind: pando.FailureRegistryDenied,
			Detail: "unauthorized: registry r.example refused the credentials for r.example/web:v1 (or the repository does not exist)"},
			"StagingError - Staging error: unauthorized: registry r.example refused the credentials for r.example/web:v1 (or the repository does not exist)"},
		{"image not found", pando.Failure{Kind: pando.FailureImageNotFound, Detail: "r.example/web:nope not found: the repository has no such tag or manifest"},
			"StagingError - Staging error: r.example/web:nope not found: the repository has no such tag or manifest"},
		{"registry unreachable", pando.Failure{Kind: pando.FailureRegistryDown, Detail: "cannot reach registry r.example: connection refused"},
			"StagingError - Staging error: cannot reach registry r.example: connection refused"},
		{"no linux/amd64", pando.Failure{Kind: pando.FailureImageNoPlatform, Detail: "no linux/amd64 image in r.example/arm:1 (it is linux/arm64)"},
			"StagingError - Staging error: no linux/amd64 image in r.example/arm:1 (it is linux/arm64): Pando runs linux/amd64 images"},
		{"invalid image", pando.Failure{Kind: pando.FailureImageInvalid, Detail: `invalid image reference "Bad Ref!"`},
			`StagingError - Staging error: invalid image reference "Bad Ref!"`},
		{"a kind without detail", pando.Failure{Kind: pando.FailureRegistryDown}, "StagingError - Staging error: registry-unreachable"},
		{"a newer cell's kind", pando.Failure{Kind: "frozen", Detail: "cgroup frozen"}, "StagingError - Staging error: staging failed: frozen: cgroup frozen"},
		{"a hint", pando.Failure{Kind: pando.FailureExited, ExitCode: 2, Hint: "see the output above"},
			"StagingError - Staging error: staging failed (exit status 2) (see the output above)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stagingError(tc.f, "cell-7"); got != tc.want {
				t.Errorf("stagingError = %q, want %q", got, tc.want)
			}
		})
	}
	if got := stagingError(pando.Failure{Kind: pando.FailureCellShutdown}, ""); got != "StagingError - Staging error: its cell shut down before staging completed; push again" {
		t.Errorf("cell shut down, cell unknown: %q", got)
	}
}

// TestStagingOutcome: a cell's failure is worded and goes to the staging
// log; an older cell's CF words are kept as sent (it logged them itself);
// the runtime's own verdicts are made CF's and logged.
func TestStagingOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		task pando.Task
		want string
		note bool
	}{
		{"a failure", pando.Task{Failed: true, CellID: "c1", Failure: &pando.Failure{Kind: pando.FailureNoAppDetected, ExitCode: 222}},
			"NoAppDetectedError - An app was not successfully detected by any available buildpack", true},
		{"the failure wins over words", pando.Task{Failed: true, FailureReason: "old words", Failure: &pando.Failure{Kind: pando.FailureCompileFailed}},
			"BuildpackCompileFailed - App staging failed in the buildpack compile phase", true},
		{"an older cell's words", pando.Task{Failed: true, FailureReason: "BuildpackCompileFailed - App staging failed in the buildpack compile phase", FailureCode: 223},
			"BuildpackCompileFailed - App staging failed in the buildpack compile phase", false},
		{"an older cell's timeout", pando.Task{Failed: true, FailureReason: "StagingTimeExpired - Staging time expired: staging did not finish within 2s"},
			"StagingTimeExpired - Staging time expired: staging did not finish within 2s", false},
		{"the runtime's verdict", pando.Task{Failed: true, FailureReason: "cell c1 disappeared before completion"},
			"StagingError - Staging error: cell c1 disappeared before completion", true},
		{"an older cell's cancel", pando.Task{Failed: true, FailureReason: "cancelled"},
			"StagingError - Staging error: cancelled", true},
		{"nothing said", pando.Task{Failed: true}, "StagingError - Staging error: staging failed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, note := stagingOutcome(tc.task)
			if got != tc.want || note != tc.note {
				t.Errorf("stagingOutcome = %q, %v; want %q, %v", got, note, tc.want, tc.note)
			}
		})
	}
}

// swEnv is an API on a real CCDB, blobstore, log store and BBS, with one
// app whose build is staging.
type swEnv struct {
	api   *API
	store *sqlstore.Store
	logs  *logs.Store
	app   pando.App
}

type swNoAuth struct{}

func (swNoAuth) Authenticate(*http.Request) (Identity, error) {
	return Identity{}, errors.New("no users in this test")
}

func swNew(t *testing.T) *swEnv {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	st, err := sqlstore.Open(ctx, filepath.Join(root, "ccdb.sqlite"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, err := fsblob.New(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ls := logs.New(logs.Config{})
	t.Cleanup(ls.Close)
	api, err := New(Config{Store: st, Blobs: blobs, Runtime: bbs.New(bbs.Config{}), Auth: swNoAuth{}, Logs: ls,
		TempDir: filepath.Join(root, "tmp"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	org := pando.Org{GUID: "org-1", Name: "org", CreatedAt: now, UpdatedAt: now}
	space := pando.Space{GUID: "space-1", Name: "dev", OrgGUID: org.GUID, CreatedAt: now, UpdatedAt: now}
	app := pando.App{GUID: "app-1", Name: "web", SpaceGUID: space.GUID, State: pando.AppStopped,
		LifecycleType: pando.LifecycleBuildpack, Stack: "host", Revision: 1, CreatedAt: now, UpdatedAt: now}
	for _, err := range []error{st.CreateOrg(ctx, org), st.CreateSpace(ctx, space), st.CreateApp(ctx, app)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return &swEnv{api: api, store: st, logs: ls, app: app}
}

// build records a STAGING build (and its droplet) of the app.
func (e *swEnv) build(t *testing.T, guid string) pando.Build {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	pkg := pando.Package{GUID: "pkg-" + guid, AppGUID: e.app.GUID, Type: "bits", State: pando.PackageReady, CreatedAt: now, UpdatedAt: now}
	b := pando.Build{GUID: guid, AppGUID: e.app.GUID, PackageGUID: pkg.GUID, DropletGUID: "droplet-" + guid, State: pando.BuildStaging,
		LifecycleType: pando.LifecycleBuildpack, Stack: "host", CreatedAt: now, UpdatedAt: now}
	d := pando.Droplet{GUID: b.DropletGUID, AppGUID: e.app.GUID, PackageGUID: pkg.GUID, State: pando.DropletProcessingUpload,
		LifecycleType: pando.LifecycleBuildpack, Stack: "host", CreatedAt: now, UpdatedAt: now}
	for _, err := range []error{e.store.CreatePackage(ctx, pkg), e.store.CreateBuild(ctx, b), e.store.CreateDroplet(ctx, d)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// stagingLines is the app's staging log, in order.
func (e *swEnv) stagingLines() []string {
	var out []string
	for _, l := range e.logs.Read(e.app.GUID, logs.ReadQuery{}) {
		if l.SourceType == pando.LogSourceStaging {
			out = append(out, l.Type+" "+string(l.Payload))
		}
	}
	return out
}

// TestHandleTaskCompleted_aCellsStagingFailureIsCFsErrorAndTheLogsLastLine:
// the cell's lines are in the log store when its completion arrives; the
// API fails the build with CF's words and ends the staging log with them,
// once however often the completion is delivered. An older cell's words
// are kept, and not logged twice.
func TestHandleTaskCompleted_aCellsStagingFailureIsCFsErrorAndTheLogsLastLine(t *testing.T) {
	e := swNew(t)
	ctx := context.Background()
	emit := func(typ, line string) {
		e.logs.Emit(pando.LogEnvelope{SourceID: e.app.GUID, InstanceID: "0", SourceType: pando.LogSourceStaging, Type: typ, Payload: []byte(line)})
	}
	check := func(guid, wantErr string, wantLines ...string) {
		t.Helper()
		b, err := e.store.GetBuild(ctx, guid)
		if err != nil {
			t.Fatal(err)
		}
		if b.State != pando.BuildFailed || b.Error != wantErr {
			t.Errorf("build %s: %s %q, want FAILED %q", guid, b.State, b.Error, wantErr)
		}
		d, err := e.store.GetDroplet(ctx, b.DropletGUID)
		if err != nil || d.State != pando.DropletFailed || d.Error != wantErr {
			t.Errorf("droplet of %s: %+v %v", guid, d, err)
		}
		got := e.stagingLines()
		if len(got) < len(wantLines) || strings.Join(got[len(got)-len(wantLines):], "\n") != strings.Join(wantLines, "\n") {
			t.Errorf("staging log ends\n  %s\nwant it to end\n  %s", strings.Join(got, "\n  "), strings.Join(wantLines, "\n  "))
		}
	}

	// A cell that reports kinds.
	e.build(t, "b1")
	emit("ERR", "boom")
	emit("OUT", "Exit status 223")
	done := pando.Task{GUID: "b1", Kind: pando.TaskStaging, CellID: "cell-1", State: pando.TaskCompleted, Failed: true,
		Failure: &pando.Failure{Kind: pando.FailureCompileFailed, ExitCode: 223}}
	e.api.HandleTaskCompleted(ctx, done)
	const compile = "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
	check("b1", compile, "ERR boom", "OUT Exit status 223", "ERR Staging failed: "+compile)
	before := len(e.stagingLines())
	e.api.HandleTaskCompleted(ctx, done) // delivered again
	if n := len(e.stagingLines()); n != before {
		t.Errorf("a repeated completion added %d staging lines", n-before)
	}

	// A docker staging the registry refused.
	e.build(t, "b2")
	e.api.HandleTaskCompleted(ctx, pando.Task{GUID: "b2", Kind: pando.TaskStaging, CellID: "cell-1", State: pando.TaskCompleted, Failed: true,
		Failure: &pando.Failure{Kind: pando.FailureRegistryDenied, Detail: "unauthorized: registry r.example refused the credentials for r.example/web:v1"}})
	const denied = "StagingError - Staging error: unauthorized: registry r.example refused the credentials for r.example/web:v1"
	check("b2", denied, "ERR Staging failed: "+denied)

	// A cell that predates Failure logged its words itself.
	e.build(t, "b3")
	const detect = "NoAppDetectedError - An app was not successfully detected by any available buildpack"
	emit("ERR", detect)
	e.api.HandleTaskCompleted(ctx, pando.Task{GUID: "b3", Kind: pando.TaskStaging, CellID: "cell-old", State: pando.TaskCompleted, Failed: true,
		FailureReason: detect, FailureCode: 222})
	check("b3", detect, "ERR Staging failed: "+denied, "ERR "+detect)
}
