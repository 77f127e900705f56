package cell

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container/fake"
	"github.com/pandoplatform/pando/internal/lifecycle/dockerstager"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// dockerCell is a cell whose docker stagings go to stager; no container
// runs for them.
func dockerCell(t *testing.T, stager func(context.Context, pando.StagingRequest, func(string)) (pando.StagingResult, error)) (*Rep, *recorder, *sink) {
	t.Helper()
	rec, logs := newRecorder(), newSink()
	rep, err := New(Config{
		ID: "cell-docker", Backend: fake.New(fake.Options{}), Blobs: newMemBlobs(), Reporter: rec, Logs: logs,
		WorkDir: t.TempDir(), TotalMemoryMB: 1024, TotalDiskMB: 1024, DockerStager: stager,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rep, rec, logs
}

func dockerTask(guid string) pando.Task {
	return pando.Task{GUID: guid, Kind: pando.TaskStaging, Staging: &pando.StagingRequest{
		AppGUID: "app-" + guid, BuildGUID: guid, DropletGUID: "d-" + guid,
		// More than the cell has: a docker staging runs in the rep and
		// reserves nothing.
		MemoryMB: 4096, DiskMB: 4096,
		DockerImage: "registry.example/web:v1", DockerUsername: "bot", DockerPassword: "pw",
	}}
}

func TestDockerStaging_streamsTheStagersLinesAndReportsItsResult(t *testing.T) {
	var got pando.StagingRequest
	rep, rec, logs := dockerCell(t, func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
		got = req
		out("Resolved registry.example/web:v1 to sha256:abc")
		return pando.StagingResult{Image: "registry.example/web@sha256:abc", ExecutionMetadata: `{"cmd":["serve"]}`,
			StartCommand: "serve", ProcessTypes: map[string]string{"web": "serve"}}, nil
	})
	if err := rep.RunTask(context.Background(), dockerTask("b1")); err != nil {
		t.Fatal(err)
	}
	done := rec.wait(t, 5*time.Second, "task completion", isTask("b1")).task
	if done.Failed || done.Result == nil || done.Result.Image != "registry.example/web@sha256:abc" ||
		done.Result.ProcessTypes["web"] != "serve" || done.Result.ExecutionMetadata != `{"cmd":["serve"]}` {
		t.Fatalf("completed task %+v result %+v", done, done.Result)
	}
	if got.DockerImage != "registry.example/web:v1" || got.DockerUsername != "bot" || got.DockerPassword != "pw" {
		t.Errorf("the stager got %+v", got)
	}
	line := logs.wait(t, time.Second, pando.LogSourceStaging, "Resolved registry.example/web:v1")
	if line.SourceID != "app-b1" || line.Type != "OUT" || line.InstanceID != "0" {
		t.Errorf("staging line %+v", line)
	}
}

func TestDockerStaging_aFailureIsReportedWithTheStagersKindAndMessage(t *testing.T) {
	const msg = "unauthorized: registry registry.example refused the credentials for registry.example/web:v1"
	rep, rec, logs := dockerCell(t, func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
		out("Staging docker image registry.example/web:v1...")
		return pando.StagingResult{}, &dockerstager.Error{Kind: registry.Unauthorized, Message: msg}
	})
	if err := rep.RunTask(context.Background(), dockerTask("b2")); err != nil {
		t.Fatal(err)
	}
	done := rec.wait(t, 5*time.Second, "task completion", isTask("b2")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureRegistryDenied, Detail: msg})
	if done.Result != nil {
		t.Errorf("a failed staging has a result: %+v", done.Result)
	}
	logs.wait(t, time.Second, pando.LogSourceStaging, "Staging docker image")
	logs.noCFWords(t, pando.LogSourceStaging)

	// Any other error of the stager's is a staging error with its text.
	rep, rec, _ = dockerCell(t, func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
		return pando.StagingResult{}, errors.New("execution metadata of x: bad json")
	})
	if err := rep.RunTask(context.Background(), dockerTask("b4")); err != nil {
		t.Fatal(err)
	}
	done = rec.wait(t, 5*time.Second, "task completion", isTask("b4")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureStagingError, Detail: "execution metadata of x: bad json"})
}

func TestDockerStaging_withoutAStagerIsRefused(t *testing.T) {
	rep, _, _ := dockerCell(t, nil)
	err := rep.RunTask(context.Background(), dockerTask("b3"))
	if err == nil || !strings.Contains(err.Error(), "cannot stage docker images") {
		t.Fatalf("RunTask = %v", err)
	}
}

// The server's wiring: the real docker stager behind the hook, against a
// registry on loopback. An unknown tag fails the staging within seconds
// with the registry's message.
func TestDockerStaging_withTheDockerStagerAgainstARegistry(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	img := registrytest.RandomImage(t, 64, 1, "amd64", v1.Config{Cmd: []string{"/serve"}})
	digest := registrytest.Push(t, host+"/web:v1", img, "", "")
	client, err := registry.New(registry.Options{Insecure: []string{host}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rep, rec, logs := dockerCell(t, dockerstager.New(client).Stage)

	ok := dockerTask("ok")
	ok.Staging.DockerImage, ok.Staging.DockerUsername, ok.Staging.DockerPassword = host+"/web:v1", "", ""
	if err := rep.RunTask(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	done := rec.wait(t, 10*time.Second, "task completion", isTask("ok")).task
	if done.Failed || done.Result == nil || done.Result.Image != host+"/web@"+digest.String() || done.Result.ProcessTypes["web"] != "/serve" {
		t.Fatalf("completed %+v result %+v", done, done.Result)
	}
	logs.wait(t, time.Second, pando.LogSourceStaging, "Resolved "+host+"/web:v1 to "+digest.String())

	missing := dockerTask("missing")
	missing.Staging.DockerImage, missing.Staging.DockerUsername, missing.Staging.DockerPassword = host+"/web:nope", "", ""
	start := time.Now()
	if err := rep.RunTask(context.Background(), missing); err != nil {
		t.Fatal(err)
	}
	done = rec.wait(t, 10*time.Second, "task completion", isTask("missing")).task
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("failing took %v", took)
	}
	if !done.Failed || done.Failure == nil || done.Failure.Kind != pando.FailureImageNotFound ||
		!strings.Contains(done.Failure.Detail, host+"/web:nope not found") {
		t.Errorf("failure %+v", done.Failure)
	}
}
