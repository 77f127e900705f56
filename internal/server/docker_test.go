package server

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/testenv"
)

// The server's docker stager speaks plain HTTP to the registries listed
// with --insecure-registry, and to no other.
func TestDockerStager_plainHTTPOnlyToListedRegistries(t *testing.T) {
	listed := registrytest.InProcess(t, nil)
	other := registrytest.InProcess(t, nil)
	img := registrytest.RandomImage(t, 64, 1, "amd64", v1.Config{})
	registrytest.Push(t, listed+"/app:1", img, "", "")
	registrytest.Push(t, other+"/app:1", img, "", "")
	reg, err := registryClient([]string{listed})
	if err != nil {
		t.Fatal(err)
	}
	stage := dockerStager(reg)
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
	_, err := registryClient([]string{"http://registry.example:5000/"})
	if err == nil || !strings.Contains(err.Error(), "--insecure-registry") {
		t.Fatalf("error %v, want one naming --insecure-registry", err)
	}
}

// The image puller pulls a pinned image's layers into the layer cache,
// with the package's credentials, and keeps its layer list: after a restart (a new puller on the same data)
// cached layers start without asking the registry.
func TestImagePuller_pullsLayersAndRestartsWithoutTheRegistry(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	var requests atomic.Int64
	const user, pass = "bot", "pull-secret"
	host := registrytest.InProcess(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	const body = "hello\n"
	img := registrytest.ImageOf(t, v1.Config{}, layerOf(t, "srv/hello.txt", body))
	digest := registrytest.Push(t, host+"/app:1", img, user, pass)
	pinned := host + "/app@" + digest.String()
	reg, err := registryClient([]string{host})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	// A private image needs the package's credentials.
	if p, err := newImagePuller(reg, t.TempDir(), 0, log); err != nil {
		t.Fatal(err)
	} else {
		_, _, err := p.Pull(ctx, pinned, &pando.ImageCredentials{Username: user, Password: "wrong"}, 0)
		p.Close()
		if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
			t.Fatalf("pull with wrong credentials: %v", err)
		}
	}
	for round := range 2 {
		p, err := newImagePuller(reg, dir, 0, log)
		if err != nil {
			t.Fatal(err)
		}
		before := requests.Load()
		dirs, release, err := p.Pull(ctx, pinned, &pando.ImageCredentials{Username: user, Password: pass}, 1<<20)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got, err := os.ReadFile(filepath.Join(dirs[0], "srv", "hello.txt")); len(dirs) != 1 || err != nil || string(got) != body {
			t.Fatalf("round %d: layers %v, file %q %v", round, dirs, got, err)
		}
		if n := requests.Load() - before; round == 1 && n != 0 {
			t.Errorf("a restarted puller asked the registry %d times for a cached image", n)
		} else if round == 0 && n == 0 {
			t.Errorf("the first pull asked the registry nothing")
		}
		release()
		// An image over the disk quota is refused before any download.
		if _, _, err := p.Pull(ctx, pinned, &pando.ImageCredentials{Username: user, Password: pass}, 100); err == nil || !strings.Contains(err.Error(), "more than the disk quota") {
			t.Errorf("round %d: an image over the quota: %v", round, err)
		}
		p.Close()
	}
}

// TestImagePuller_stagingKeepsTheLayerListForTheInstances: staged through
// the puller, an image's first instance start reads no manifest again; it
// only fetches the layers.
func TestImagePuller_stagingKeepsTheLayerListForTheInstances(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	host, manifests := countingRegistry(t, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") })
	registrytest.Push(t, host+"/app:1", registrytest.ImageOf(t, v1.Config{}, layerOf(t, "srv/hello.txt", "hello\n")), "", "")
	p := testPuller(t, host)
	res, err := dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: host + "/app:1"}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	before := manifests.Load()
	_, release, err := p.Pull(context.Background(), res.Image, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if n := manifests.Load() - before; n != 0 {
		t.Errorf("the first start read %d manifests again after staging", n)
	}
}

// layerOf is an uncompressed layer holding one file, name with body.
func layerOf(t testing.TB, name, body string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(buf.Bytes(), types.DockerUncompressedLayer)
}

// countingRegistry serves a registry on loopback until the test ends and
// counts the requests that counted picks.
func countingRegistry(t *testing.T, counted func(*http.Request) bool) (string, *atomic.Int64) {
	t.Helper()
	n := new(atomic.Int64)
	host := registrytest.InProcess(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if counted(r) {
				n.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	return host, n
}

// isBlobGet picks the downloads of blobs (layers and configs).
func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

// testPuller is an image puller in a temp dir that speaks plain HTTP to
// hosts; it closes when the test ends (closing it earlier is fine).
func testPuller(t *testing.T, hosts ...string) *imagePuller {
	t.Helper()
	reg, err := registryClient(hosts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newImagePuller(reg, t.TempDir(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestImagePuller_stagingPrefetchesTheLayers: staging starts pulling the
// image's layers into the cache, so the first instance finds them there
// (or joins their downloads) and no layer is downloaded twice.
func TestImagePuller_stagingPrefetchesTheLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	host, blobGets := countingRegistry(t, isBlobGet)
	one, two := layerOf(t, "srv/one.txt", "one\n"), layerOf(t, "srv/two.txt", "two\n")
	registrytest.Push(t, host+"/app:1", registrytest.ImageOf(t, v1.Config{}, one, two), "", "")
	p := testPuller(t, host)
	before := blobGets.Load() // the config blob, read by staging
	res, err := dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: host + "/app:1", DiskMB: 64}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	digests := []string{mustDigest(t, one), mustDigest(t, two)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cached := 0
		for _, d := range digests {
			if _, ok := p.cache.Lookup(d, layers.Shift{}); ok {
				cached++
			}
		}
		if cached == len(digests) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d layers cached 10s after staging", cached, len(digests))
		}
		time.Sleep(time.Millisecond)
	}
	dirs, release, err := p.Pull(context.Background(), res.Image, nil, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if data, err := os.ReadFile(filepath.Join(dirs[1], "srv", "two.txt")); err != nil || string(data) != "two\n" {
		t.Fatalf("top layer: %q %v", data, err)
	}
	// Staging reads the config blob; the layers are downloaded once.
	if n := blobGets.Load() - before; n != 1+int64(len(digests)) {
		t.Fatalf("%d blob downloads, want the config and each layer once (%d)", n, 1+len(digests))
	}
}

// An image over the staging's disk quota is not prefetched: its instances
// would refuse it.
func TestImagePuller_noPrefetchOverTheDiskQuota(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the layer cache needs root (chown to image ids)")
	}
	host, blobGets := countingRegistry(t, isBlobGet)
	registrytest.Push(t, host+"/big:1", registrytest.RandomImage(t, 2<<20, 1, "amd64", v1.Config{}), "", "")
	p := testPuller(t, host)
	before := blobGets.Load()
	if _, err := dockerStager(p)(context.Background(), pando.StagingRequest{DockerImage: host + "/big:1", DiskMB: 1}, func(string) {}); err != nil {
		t.Fatal(err)
	}
	p.Close() // waits for the prefetch
	if n := blobGets.Load() - before; n != 1 {
		t.Fatalf("%d blob downloads, want only the config's", n)
	}
	if _, n := p.cache.Usage(); n != 0 {
		t.Fatalf("%d layers cached", n)
	}
}

func mustDigest(t *testing.T, l v1.Layer) string {
	t.Helper()
	h, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
