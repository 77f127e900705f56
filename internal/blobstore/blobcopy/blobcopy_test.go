package blobcopy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore/blobtest"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	s3blob "github.com/pandoplatform/pando/internal/blobstore/s3"
	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// populated is an fs blobstore holding blobs of every kind the platform
// stores, one larger than an S3 part, and an unfinished upload.
func populated(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	fs, err := fsblob.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{
		pando.DropletBlobKey("d-1"):     bytes.Repeat([]byte("droplet "), 1000),
		"packages/p-1":                  []byte("package zip"),
		"buildpacks/b-1":                {},
		"resources/ab/cdef0123":         []byte("a cached file"),
		"buildcache/app-1/cache.tgz":    bytes.Repeat([]byte{0, 1, 2, 255}, 3<<20/2), // 6 MiB: two parts of 5
		"droplets/d-2":                  []byte("second droplet"),
		"packages/with.dots_and-dashes": []byte("x"),
	}
	for k, v := range blobs {
		if _, err := fs.Put(t.Context(), k, bytes.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
	// Nor is a file a person or a tool left: it is named.
	if err := os.WriteFile(filepath.Join(dir, "droplets", ".hidden"), []byte("notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What a crashed upload leaves is no blob.
	if err := os.WriteFile(filepath.Join(dir, "droplets", ".put-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, blobs
}

var prefixSeq atomic.Int64

func newS3(t *testing.T, fake *fakes3.Server) *s3blob.Store {
	t.Helper()
	cfg, err := s3blob.ParseURL(fmt.Sprintf("s3://pando-blobs/move-%d?endpoint=http://%s&region=%s&path_style=true&part_size_mb=5", prefixSeq.Add(1), fake.Endpoint, fakes3.Region))
	if err != nil {
		t.Fatal(err)
	}
	s, err := s3blob.New(t.Context(), cfg, s3blob.Options{Getenv: fake.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCopy: every blob arrives under its key, byte for byte; a dry run
// uploads nothing; a second run uploads nothing and skips them all.
func TestCopy(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	dir, blobs := populated(t)
	dst := newS3(t, fake)

	dry, err := Copy(t.Context(), dir, dst, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.WouldCopy != int64(len(blobs)) || dry.WouldSkip != 0 {
		t.Fatalf("dry run: %+v, want %d to copy", dry, len(blobs))
	}
	for k := range blobs {
		if ok, err := dst.Exists(t.Context(), k); ok || err != nil {
			t.Fatalf("after the dry run %s exists=%v, %v", k, ok, err)
		}
	}

	var lines []string
	res, err := Copy(t.Context(), dir, dst, Options{Progress: func(m string) { lines = append(lines, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != int64(len(blobs)) || res.Skipped != 0 || res.Blobs != int64(len(blobs)) {
		t.Fatalf("first run: %+v, want all %d copied", res, len(blobs))
	}
	for k, v := range blobs {
		if got := blobtest.Read(t, dst, k); !bytes.Equal(got, v) {
			t.Errorf("%s: %d bytes in S3, want the %d in the fs blobstore", k, len(got), len(v))
		}
	}
	if ok, _ := dst.Exists(t.Context(), "droplets/.put-123"); ok || !strings.Contains(strings.Join(lines, "\n"), fmt.Sprintf("%d copied", len(blobs))) {
		t.Errorf("an unfinished upload was copied, or progress said %q", lines)
	}
	if !slices.Equal(res.Ignored, []string{"droplets/.hidden"}) || !slices.Contains(lines, "not a blob, left out: droplets/.hidden") {
		t.Errorf("ignored %q, progress %q; want droplets/.hidden named as left out, and the unfinished upload passed over", res.Ignored, lines)
	}

	again, err := Copy(t.Context(), dir, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Copied != 0 || again.Skipped != int64(len(blobs)) {
		t.Fatalf("second run: %+v, want all %d skipped", again, len(blobs))
	}
}

// A run that stopped part way resumes: blobs already there are skipped,
// one there with other bytes of the same size is replaced, and the rest
// are copied.
func TestCopy_resumes(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	dir, blobs := populated(t)
	dst := newS3(t, fake)
	ctx := t.Context()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range blobs {
			if !yield(k) {
				return
			}
		}
	})
	if _, err := dst.Put(ctx, keys[0], bytes.NewReader(blobs[keys[0]])); err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Repeat([]byte("?"), len(blobs["packages/p-1"]))
	if _, err := dst.Put(ctx, "packages/p-1", bytes.NewReader(wrong)); err != nil {
		t.Fatal(err)
	}
	res, err := Copy(ctx, dir, dst, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 || res.Copied != int64(len(blobs)-1) {
		t.Fatalf("resumed run: %+v, want 1 skipped and %d copied", res, len(blobs)-1)
	}
	if got := blobtest.Read(t, dst, "packages/p-1"); !bytes.Equal(got, blobs["packages/p-1"]) {
		t.Fatalf("packages/p-1 in S3 is %q, want the fs blobstore's", got)
	}
}

// corrupting stores other bytes than it was given, as a broken endpoint
// might.
type corrupting struct{ *s3blob.Store }

func (c corrupting) Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	if _, err := c.Store.Put(ctx, key, bytes.NewReader(append(b, '!'))); err != nil {
		return pando.BlobInfo{}, err
	}
	sum := sha256.Sum256(b)
	return pando.BlobInfo{Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, nil
}

func (c corrupting) PutExpecting(ctx context.Context, key string, r io.Reader, _ pando.BlobInfo) (pando.BlobInfo, error) {
	return c.Put(ctx, key, r)
}

// An upload that reads back otherwise fails the copy, saying so.
func TestCopy_uploadThatReadsBackOtherwiseFails(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	dir, _ := populated(t)
	_, err := Copy(t.Context(), dir, corrupting{newS3(t, fake)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "reads back as") {
		t.Fatalf("copy through a corrupting store: %v", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatalf("the error is the cancellation, not the cause: %v", err)
	}
}

// A resumed run learns what the bucket holds from the digests recorded
// with each blob (HEAD), downloading none of them, except a blob stored
// without them (by a copy of an older version), which it reads to check.
func TestCopy_resumeReadsRecordedDigests(t *testing.T) {
	var gets atomic.Int64
	fake := fakes3.StartWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// path style: /BUCKET/PREFIX/KEY; listings have no key
			if r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 2 {
				gets.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}, "pando-blobs")
	dir, blobs := populated(t)
	dst := newS3(t, fake)
	if _, err := Copy(t.Context(), dir, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if gets.Load() != int64(len(blobs)) {
		t.Fatalf("the first run made %d GETs, want one read-back per blob (%d)", gets.Load(), len(blobs))
	}
	big := "buildcache/app-1/cache.tgz"
	if info, err := dst.Stat(t.Context(), big); err != nil || info.SHA256 == "" {
		t.Fatalf("the multipart blob %s has no recorded digest: %+v, %v", big, info, err)
	}
	gets.Store(0)
	again, err := Copy(t.Context(), dir, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Skipped != int64(len(blobs)) || gets.Load() != 0 {
		t.Fatalf("second run: %+v with %d GETs, want all skipped and none downloaded", again, gets.Load())
	}

	// An object stored without digests: read to check, then skipped.
	prefix := strings.SplitN(strings.TrimPrefix(dst.String(), "s3://pando-blobs/"), " ", 2)[0]
	fake.PutPlain(t, "pando-blobs", prefix+"/packages/p-1", blobs["packages/p-1"])
	if info, err := dst.Stat(t.Context(), "packages/p-1"); err != nil || info.SHA256 != "" {
		t.Fatalf("the object stored without digests stats as %+v, %v", info, err)
	}
	gets.Store(0)
	third, err := Copy(t.Context(), dir, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if third.Skipped != int64(len(blobs)) || gets.Load() != 1 {
		t.Fatalf("third run: %+v with %d GETs, want all skipped and the one blob without digests read", third, gets.Load())
	}
}
