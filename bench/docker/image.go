package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/pandoplatform/pando/bench/internal/benchrun"
)

// serverSource is the image's app: a static Go HTTP server on $PORT.
const serverSource = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello from the bench image\n"))
	})
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
`

// buildImage builds the bench image: a layer with a static Go HTTP server
// at /app/server and dataLayers layers of incompressible random data,
// dataBytes in all, with ENTRYPOINT and EXPOSE 8000.
func buildImage(ctx context.Context, dir string, dataLayers int, dataBytes int64) (v1.Image, error) {
	bin := filepath.Join(dir, "image-server")
	if err := benchrun.BuildGo(ctx, filepath.Join(dir, "image-src"), "example.com/benchimage", serverSource, bin); err != nil {
		return nil, err
	}
	server, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	appTar, err := tarOf([]entry{
		{hdr: tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{hdr: tar.Header{Name: "app/server", Typeflag: tar.TypeReg, Mode: 0o755}, body: server},
	})
	if err != nil {
		return nil, err
	}
	ls := []v1.Layer{}
	appLayer, err := gzipLayer(appTar)
	if err != nil {
		return nil, err
	}
	ls = append(ls, appLayer)
	per := dataBytes / int64(dataLayers)
	for i := range dataLayers {
		// Several files per layer, as real layers have.
		var entries []entry
		dirName := fmt.Sprintf("data%d/", i)
		entries = append(entries, entry{hdr: tar.Header{Name: dirName, Typeflag: tar.TypeDir, Mode: 0o755}})
		const fileSize = 1 << 20
		for left, k := per, 0; left > 0; k++ {
			n := min(left, fileSize)
			body := make([]byte, n)
			if _, err := rand.Read(body); err != nil {
				return nil, err
			}
			entries = append(entries, entry{hdr: tar.Header{Name: fmt.Sprintf("%sblob%03d", dirName, k), Typeflag: tar.TypeReg, Mode: 0o644}, body: body})
			left -= n
		}
		t, err := tarOf(entries)
		if err != nil {
			return nil, err
		}
		l, err := gzipLayer(t)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		Entrypoint:   []string{"/app/server"},
		Env:          []string{"PATH=/app"},
		ExposedPorts: map[string]struct{}{"8000/tcp": {}},
	}
	return mutate.ConfigFile(img, cf)
}

type entry struct {
	hdr  tar.Header
	body []byte
}

func tarOf(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Size = int64(len(e.body))
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipLayer compresses t once, so pushing and digesting the layer do not
// compress it again.
func gzipLayer(t []byte) (v1.Layer, error) {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(t)), nil
	})
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	gz, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	})
}
