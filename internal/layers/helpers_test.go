package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/pandoplatform/pando/internal/testenv"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root (chown to image ids, whiteout devices, trusted xattrs)")
	}
}

// ent is one tar entry of a test layer.
type ent struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	size     int64 // header size when it should differ from len(body)
}

func file(name, body string) ent { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

var epoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// tarball builds a layer blob; compression is "gzip", "zstd" or "".
func tarball(t testing.TB, compression string, ents ...ent) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range ents {
		size := int64(len(e.body))
		if e.typ != tar.TypeReg {
			size = 0
		}
		if e.size != 0 {
			size = e.size
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid, Size: size, ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	switch compression {
	case "gzip":
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		zw.Close()
	case "zstd":
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw.Bytes())
		zw.Close()
	default:
		out = raw
	}
	return out.Bytes()
}

func describe(blob []byte) Layer {
	sum := sha256.Sum256(blob)
	return Layer{Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(blob)), MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}
}

// memSource serves blobs from memory, counting opens; serve, when set,
// replaces what is served for a digest (tampering).
type memSource struct {
	mu    sync.Mutex
	blobs map[string][]byte
	opens map[string]int
	gate  chan struct{} // when non-nil, OpenBlob waits for it (or ctx)
	serve func(digest string, blob []byte) []byte
}

func newSource(blobs ...[]byte) (*memSource, []Layer) {
	s := &memSource{blobs: map[string][]byte{}, opens: map[string]int{}}
	var ls []Layer
	for _, b := range blobs {
		l := describe(b)
		s.blobs[l.Digest] = b
		ls = append(ls, l)
	}
	return s, ls
}

var errNoBlob = errors.New("no such blob")

func (s *memSource) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.opens[digest]++
	b, ok := s.blobs[digest]
	gate, serve := s.gate, s.serve
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, errNoBlob
	}
	if serve != nil {
		b = serve(digest, b)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memSource) openCount(digest string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[digest]
}

func openCache(t *testing.T, opts Options) (*Cache, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	opts.NoSync = true
	c, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, dir
}

// names lists a directory's entries (nil when it is absent).
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

// assertEmptyCache checks a failed fetch left nothing behind.
func assertEmptyCache(t *testing.T, c *Cache, dir string) {
	t.Helper()
	if n := names(t, filepath.Join(dir, "unpacked")); len(n) != 0 {
		t.Fatalf("unpacked/ holds %v", n)
	}
	if n := names(t, filepath.Join(dir, "tmp")); len(n) != 0 {
		t.Fatalf("tmp/ holds %v", n)
	}
	if size, count := c.Usage(); size != 0 || count != 0 {
		t.Fatalf("usage %d bytes in %d layers", size, count)
	}
}
