package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/testenv"
)

// gatedRegistry is a registry on loopback whose config blob is served
// only once a layer blob was asked for (or after 5 s), and whose layer
// blob requests wait until their client goes away when hold is set.
type gatedRegistry struct {
	host                      string
	configDigest, layerDigest string
	holdLayerBlobs            bool
	layerAsked                chan struct{} // closed at the first layer request
	layerCancelled            chan struct{} // closed when a held layer request's client went away
	layerAskedOnce            atomic.Bool
	cancelledOnce             atomic.Bool
	// layerFirst: a layer was asked for before the config was first served.
	layerFirst, configServed atomic.Bool
}

func newGatedRegistry(t *testing.T, platform string, hold bool) *gatedRegistry {
	t.Helper()
	g := &gatedRegistry{layerAsked: make(chan struct{}), layerCancelled: make(chan struct{}), holdLayerBlobs: hold}
	g.host = registrytest.InProcess(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				switch {
				case g.layerDigest != "" && strings.HasSuffix(r.URL.Path, "/blobs/"+g.layerDigest):
					if g.layerAskedOnce.CompareAndSwap(false, true) {
						close(g.layerAsked)
					}
					if g.holdLayerBlobs {
						<-r.Context().Done()
						if g.cancelledOnce.CompareAndSwap(false, true) {
							close(g.layerCancelled)
						}
						return
					}
				case g.configDigest != "" && strings.HasSuffix(r.URL.Path, "/blobs/"+g.configDigest):
					select {
					case <-g.layerAsked:
						if !g.configServed.Load() {
							g.layerFirst.Store(true)
						}
					case <-time.After(5 * time.Second):
					}
					g.configServed.Store(true)
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	layer := layerOf(t, "srv/one.txt", "one\n")
	img := registrytest.ArchImageOf(t, platform, v1.Config{}, layer)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	// Set before the handler can run: the push is its first request.
	g.configDigest = cfg.String()
	g.layerDigest = mustDigest(t, layer)
	registrytest.Push(t, g.host+"/app:1", img, "", "")
	return g
}

// Staging starts downloading the layers once it has read the manifest,
// before it fetches the image's config.
func TestDockerStager_prefetchStartsBeforeTheConfigIsFetched(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	g := newGatedRegistry(t, "amd64", false)
	p := testPuller(t, g.host)
	res, err := dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: g.host + "/app:1", DiskMB: 64}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Image, g.host+"/app@sha256:") {
		t.Fatalf("staged image %q", res.Image)
	}
	if !g.layerFirst.Load() {
		t.Fatal("the config was served before any layer was asked for: the prefetch did not start from the manifest")
	}
	_, release, err := p.Pull(context.Background(), res.Image, nil, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	release()
}

// A staging that fails after the manifest (here: the config names another
// platform) stops the layer downloads it started.
func TestDockerStager_failedStagingStopsItsPrefetch(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	g := newGatedRegistry(t, "arm64", true)
	p := testPuller(t, g.host)
	_, err := dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: g.host + "/app:1", DiskMB: 64}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Fatalf("staging of an arm64 image: %v, want a platform error", err)
	}
	select {
	case <-g.layerCancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the layer download started from the manifest still runs 10 s after staging failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for imgs := p.CachedImages(); len(imgs) != 0; imgs = p.CachedImages() {
		if time.Now().After(deadline) {
			t.Fatalf("the cell still names images 10 s after the failed staging: %v", imgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkDockerStager_toLayersCached times a docker staging until its
// prefetch has every layer in the cache, against a registry on loopback
// that answers each request after 20 ms (a nearby remote registry; the
// bench's local docker-registry takes 45-100 ms to a blob's first byte).
// Starting the prefetch from the manifest instead of after the config
// saves one such round trip.
func BenchmarkDockerStager_toLayersCached(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the layer cache needs root (chown to image ids)")
	}
	const latency = 20 * time.Millisecond
	host := registrytest.InProcess(b, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				time.Sleep(latency)
			}
			h.ServeHTTP(w, r)
		})
	})
	var ls []v1.Layer
	for k := range 3 {
		ls = append(ls, layerOf(b, fmt.Sprintf("srv/%d.bin", k), strings.Repeat("x", 1<<20)))
	}
	img := registrytest.ImageOf(b, v1.Config{}, ls...)
	registrytest.Push(b, host+"/app:1", img, "", "")
	reg, err := registryClient([]string{host})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p, err := newImagePuller(reg, b.TempDir(), 0, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: host + "/app:1", DiskMB: 64}, func(string) {})
		if err != nil {
			b.Fatal(err)
		}
		// The instance's pull joins the prefetch's downloads.
		_, release, err := p.Pull(context.Background(), res.Image, nil, 64<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		release()
		p.Close()
		b.StartTimer()
	}
}
