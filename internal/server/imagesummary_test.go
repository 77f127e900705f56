package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/testenv"
)

// Staging's prefetch makes the cell name the image in its state while the
// layers download and once they are cached, so the auction places the
// image's instances on it.
func TestImagePuller_namesTheImageWhilePullingAndOnceCached(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	// The layer's download waits for gate (staging's config read does not).
	layer := layerOf(t, "srv/one.txt", "one\n")
	layerDigest := mustDigest(t, layer)
	gate := make(chan struct{})
	host := registrytest.InProcess(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layerDigest) {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	registrytest.Push(t, host+"/app:1", registrytest.ImageOf(t, v1.Config{}, layer), "", "")
	p := testPuller(t, host)
	if got := p.CachedImages(); len(got) != 0 {
		t.Fatalf("a new cell names images %q", got)
	}
	stageDone := make(chan error, 1)
	var res pando.StagingResult
	go func() {
		var err error
		res, err = dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: host + "/app:1", DiskMB: 64}, func(string) {})
		stageDone <- err
	}()
	var released bool
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()
	select {
	case err := <-stageDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("staging did not end in 30s")
	}
	digest := pando.ImageDigest(res.Image)
	waitUntil(t, "the image named while its layer is held back", func() bool {
		return slices.Equal(p.CachedImages(), []string{digest})
	})
	release()
	waitUntil(t, "the layer cached", func() bool { return p.cache.Holds(layerDigest) })
	if got := p.CachedImages(); !slices.Equal(got, []string{digest}) {
		t.Errorf("once cached the cell names %q, want [%s]", got, digest)
	}
}

// Only recent images are named, at most pando.MaxCellImages, most recent
// first, and only while pulling or with every layer still cached.
func TestImagePuller_namesRecentImagesWithTheirLayers(t *testing.T) {
	p := testPuller(t)
	img := func(i int) string { return fmt.Sprintf("registry.example/app@sha256:%064x", i) }
	layer := func(i int) string { return fmt.Sprintf("sha256:%064x", 1000+i) }
	var dones []func()
	for i := range pando.MaxCellImages + 8 {
		dones = append(dones, p.pullStarted(img(i), []string{layer(i)}))
	}
	p.pullStarted("registry.example/app:latest", []string{layer(0)}) // not pinned: not named
	got := p.CachedImages()
	if len(got) != pando.MaxCellImages {
		t.Fatalf("%d images named, want %d", len(got), pando.MaxCellImages)
	}
	for k, d := range got {
		if want := pando.ImageDigest(img(pando.MaxCellImages + 7 - k)); d != want {
			t.Fatalf("image %d named is %s, want %s (most recent first)", k, d, want)
		}
	}
	// Pulls that ended without their layers cached (failed, or the
	// layers since collected) are not named; a pull of the same image
	// again puts it first.
	for _, done := range dones {
		done()
	}
	if got := p.CachedImages(); len(got) != 0 {
		t.Fatalf("named %q with no layer cached and no pull in flight", got)
	}
	done := p.pullStarted(img(20), []string{layer(20)})
	defer done()
	if got := p.CachedImages(); !slices.Equal(got, []string{pando.ImageDigest(img(20))}) {
		t.Errorf("named %q, want the image pulled again", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
