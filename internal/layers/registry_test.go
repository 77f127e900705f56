package layers_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/testenv"
)

// gzTar is a gzipped tar of name -> content files.
func gzTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// appImage is a two-layer linux/amd64 image; the upper layer deletes a
// file of the lower one.
func appImage(t *testing.T) v1.Image {
	t.Helper()
	base := static.NewLayer(gzTar(t, map[string]string{"etc/os-release": "ID=test\n", "tmp/old": "x"}), types.DockerLayer)
	app := static.NewLayer(gzTar(t, map[string]string{"srv/app": "#!/bin/sh\necho hi\n", "tmp/.wh.old": ""}), types.DockerLayer)
	cfg := v1.Config{Cmd: []string{"/srv/app"}, WorkingDir: "/srv", ExposedPorts: map[string]struct{}{"8000/tcp": {}}}
	return registrytest.ImageOf(t, cfg, base, app)
}

// pull resolves ref and fetches its layers into cache.
func pull(t *testing.T, c *registry.Client, cache *layers.Cache, ref string, creds *registry.Credentials) (*registry.Image, []string, error) {
	t.Helper()
	img, err := c.Resolve(context.Background(), ref, creds)
	if err != nil {
		return nil, nil, err
	}
	blobs, err := c.Blobs(img.Pinned, creds)
	if err != nil {
		return nil, nil, err
	}
	var ls []layers.Layer
	for _, l := range img.Layers {
		ls = append(ls, layers.Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
	}
	dirs, release, err := cache.Pull(context.Background(), blobs, ls, layers.Shift{})
	release()
	return img, dirs, err
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root (whiteout devices)")
	}
}

func checkPulled(t *testing.T, dirs []string) {
	t.Helper()
	if len(dirs) != 2 {
		t.Fatalf("%d layer dirs", len(dirs))
	}
	if b, err := os.ReadFile(filepath.Join(dirs[0], "etc/os-release")); err != nil || string(b) != "ID=test\n" {
		t.Fatalf("base layer: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dirs[1], "srv/app")); err != nil || !strings.Contains(string(b), "echo hi") {
		t.Fatalf("app layer: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(dirs[1], "tmp/old")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("whiteout: %v %v", fi, err)
	}
}

func TestFetch_throughARegistry(t *testing.T) {
	requireRoot(t)
	host := registrytest.InProcess(t, nil)
	registrytest.Push(t, host+"/app:1", appImage(t), "", "")
	c, err := registry.New(registry.Options{Insecure: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := layers.Open(filepath.Join(t.TempDir(), "cache"), layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	_, dirs, err := pull(t, c, cache, host+"/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, dirs)
}

func TestFetch_aTamperedRegistryBlobFailsThePull(t *testing.T) {
	requireRoot(t)
	img := appImage(t)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	tampered := m.Layers[1].Digest.String()
	host := registrytest.InProcess(t, func(inner http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+tampered) {
				inner.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			body[len(body)/2] ^= 0x01
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	})
	registrytest.Push(t, host+"/app:1", img, "", "")
	c, err := registry.New(registry.Options{Insecure: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	cache, err := layers.Open(dir, layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	_, _, err = pull(t, c, cache, host+"/app:1", nil)
	if !errors.Is(err, layers.ErrDigestMismatch) || !strings.Contains(err.Error(), tampered) {
		t.Fatalf("err %v, want a digest mismatch of %s", err, tampered)
	}
	if _, ok := cache.Lookup(tampered, layers.Shift{}); ok {
		t.Fatal("the tampered layer is cached")
	}
	// The other layer's download, cancelled by the failure, cleans up
	// on its own goroutine; Close waits for it.
	cache.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Fatalf("tmp/ holds %d entries", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "unpacked")); len(ents) > 1 {
		t.Fatalf("unpacked/ holds %d layers, at most the untampered one expected", len(ents))
	}
}
