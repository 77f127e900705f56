package server

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// The server's docker stager speaks plain HTTP to the registries listed
// with --insecure-registry, and to no other.
func TestDockerStager_plainHTTPOnlyToListedRegistries(t *testing.T) {
	listed := registrytest.InProcess(t, nil)
	other := registrytest.InProcess(t, nil)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	registrytest.Push(t, listed+"/app:1", img, "", "")
	registrytest.Push(t, other+"/app:1", img, "", "")
	stage, err := dockerStager([]string{listed})
	if err != nil {
		t.Fatal(err)
	}
	res, err := stage(context.Background(), pando.StagingRequest{DockerImage: listed + "/app:1"}, func(string) {})
	if err != nil || !strings.HasPrefix(res.Image, listed+"/app@sha256:") {
		t.Fatalf("listed registry: %+v, %v", res, err)
	}
	_, err = stage(context.Background(), pando.StagingRequest{DockerImage: other + "/app:1"}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "--insecure-registry "+other) {
		t.Fatalf("unlisted plain-HTTP registry: %v, want a refusal naming the flag", err)
	}
}

func TestDockerStager_badInsecureRegistryIsAFlagError(t *testing.T) {
	_, err := dockerStager([]string{"http://registry.example:5000/"})
	if err == nil || !strings.Contains(err.Error(), "--insecure-registry") {
		t.Fatalf("error %v, want one naming --insecure-registry", err)
	}
}
