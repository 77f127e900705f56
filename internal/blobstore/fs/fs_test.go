package fs

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore/blobtest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tempFiles lists in-flight Put files left under s.
func tempFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.Dir(), func(p string, d iofs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStore_roundTrip(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("pando droplet "), 100_000)
	key := pando.DropletBlobKey("6b3c-4d9e")

	info, err := s.Put(ctx, key, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h1, h256 := sha1.Sum(data), sha256.Sum256(data)
	want := pando.BlobInfo{Size: int64(len(data)), SHA1: hex.EncodeToString(h1[:]), SHA256: hex.EncodeToString(h256[:])}
	if info != want {
		t.Fatalf("Put info = %+v, want %+v", info, want)
	}
	if got := blobtest.Read(t, s, key); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(data))
	}
	if ok, err := s.Exists(ctx, key); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}

	path, err := s.Path(key)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.Dir(), "droplets", "6b3c-4d9e"); path != want {
		t.Fatalf("Path = %s, want %s", path, want)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != int64(len(data)) {
		t.Fatalf("Path's file: %v, %v", st, err)
	}
	if st.Mode().Perm() != fileMode {
		t.Errorf("blob mode %v, want %v", st.Mode().Perm(), iofs.FileMode(fileMode))
	}

	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Exists(ctx, key); ok || err != nil {
		t.Fatalf("Exists after Delete = %v, %v", ok, err)
	}
	_, err = s.Get(ctx, key)
	if !pando.IsNotFound(err) {
		t.Fatalf("Get after Delete = %v, want ENotFound", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestStore_missingBlob(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for _, key := range []string{"packages/none", "nodir/none"} {
		_, err := s.Get(ctx, key)
		if !pando.IsNotFound(err) {
			t.Errorf("Get(%s) = %v, want ENotFound", key, err)
		}
		if ok, err := s.Exists(ctx, key); ok || err != nil {
			t.Errorf("Exists(%s) = %v, %v", key, ok, err)
		}
	}
	// A key naming a directory of blobs is not a blob.
	if _, err := s.Put(ctx, "droplets/a", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "droplets"); !pando.IsNotFound(err) {
		t.Errorf("Get(droplets) = %v, want ENotFound", err)
	}
	if ok, err := s.Exists(ctx, "droplets"); ok || err != nil {
		t.Errorf("Exists(droplets) = %v, %v", ok, err)
	}
}

func TestStore_overwriteIsAtomic(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	key := "packages/p1"
	v1 := bytes.Repeat([]byte{1}, 1<<20)
	v2 := bytes.Repeat([]byte{2}, 1<<19)
	if _, err := s.Put(ctx, key, bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}

	// A reader that opened v1 keeps reading v1 whole after v2 lands.
	old, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := s.Put(ctx, key, bytes.NewReader(v2)); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(old); !bytes.Equal(got, v1) {
		t.Fatalf("open reader saw %d bytes of mixed content, want old blob whole", len(got))
	}
	if got := blobtest.Read(t, s, key); !bytes.Equal(got, v2) {
		t.Fatal("new readers do not see the new blob")
	}

	// A Put that fails midway leaves the previous blob untouched.
	boom := errors.New("client went away")
	_, err = s.Put(ctx, key, io.MultiReader(bytes.NewReader(v1[:1000]), errReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("failed Put = %v, want the reader's error", err)
	}
	if got := blobtest.Read(t, s, key); !bytes.Equal(got, v2) {
		t.Fatal("failed Put damaged the existing blob")
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestValidateKey(t *testing.T) {
	good := []string{
		"droplets/6b3c-4d9e",
		"resources/da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"buildpacks/go_buildpack-v1.2.zip",
		"a",
		"A/b.c/D_e-f",
		"x..y",
	}
	bad := []string{
		"",
		"/etc/passwd",
		"../outside",
		"a/../../b",
		"a/..",
		"..",
		".",
		"a/./b",
		".hidden",
		"a/.put-123",
		"a//b",
		"a/",
		"a b",
		`a\b`,
		"a:b",
		"ünïcode",
		"a\x00b",
		strings.Repeat("a", MaxKeyLen+1),
	}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want ok", k, err)
		}
	}
	s := newStore(t)
	ctx := t.Context()
	for _, k := range bad {
		checks := map[string]error{"ValidateKey": ValidateKey(k)}
		_, checks["Put"] = s.Put(ctx, k, strings.NewReader("x"))
		_, checks["Get"] = s.Get(ctx, k)
		_, checks["Exists"] = s.Exists(ctx, k)
		checks["Delete"] = s.Delete(ctx, k)
		_, checks["Path"] = s.Path(k)
		for op, err := range checks {
			if pando.ErrorKindOf(err) != pando.EInvalid {
				t.Errorf("%s(%q) = %v, want EInvalid", op, k, err)
			}
		}
	}
	// Nothing escaped the root.
	entries, err := os.ReadDir(filepath.Dir(s.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("files appeared beside the blobstore: %v", entries)
	}
}

func TestStore_blobWhereDirectoryNeeded(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.Put(ctx, "a", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a/b", strings.NewReader("y")); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Fatalf("Put under a blob = %v, want EInvalid", err)
	}
	if _, err := s.Put(ctx, "d/e", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "d", strings.NewReader("z")); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Fatalf("Put over a directory of blobs = %v, want EInvalid", err)
	}
	if err := s.Delete(ctx, "d"); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Fatalf("Delete of a directory of blobs = %v, want EInvalid", err)
	}
	if got := blobtest.Read(t, s, "d/e"); string(got) != "y" {
		t.Fatalf("d/e = %q", got)
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestNew_sweepsStaleTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "droplets/keep", strings.NewReader("blob")); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "droplets", tempPrefix+"stale")
	fresh := filepath.Join(dir, "droplets", tempPrefix+"fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	s, err = New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("stale temp file survived New: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("New removed an in-flight temp file: %v", err)
	}
	if got := blobtest.Read(t, s, "droplets/keep"); string(got) != "blob" {
		t.Errorf("blob damaged by sweep: %q", got)
	}
}

func TestNew_rejectsEmptyDir(t *testing.T) {
	if _, err := New(""); err == nil {
		t.Fatal("New(\"\") succeeded")
	}
}

// TestStore_withTempDirPutsWriteOnlyThere: an in-flight Put's file lives
// in the temp dir (which the server sweeps at start), never among the
// blobs, and the finished blob is renamed into place.
func TestStore_withTempDirPutsWriteOnlyThere(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	s, err := New(filepath.Join(root, "blobs"), WithTempDir(tmp))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(t.Context(), "packages/big", pr)
		done <- err
	}()
	if _, err := pw.Write([]byte("first half ")); err != nil {
		t.Fatal(err)
	}
	// The Put is now mid-copy: its file is in tmp, nothing among the blobs.
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), tempPrefix) {
		t.Fatalf("temp dir during a Put holds %v, want one %s file", ents, tempPrefix)
	}
	if left := tempFiles(t, s); len(left) != 0 {
		t.Fatalf("in-flight files among the blobs: %v", left)
	}
	pw.Write([]byte("second half"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := blobtest.Read(t, s, "packages/big"); string(got) != "first half second half" {
		t.Fatalf("blob = %q", got)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("temp dir after the Put holds %v", ents)
	}
}

// TestStore_contract runs the pando.Blobstore contract every blobstore
// passes (internal/blobstore/blobtest).
func TestStore_contract(t *testing.T) {
	blobtest.Run(t, blobtest.Harness{
		New: func(t *testing.T) blobtest.Store { return newStore(t) },
		PutAt: func(t *testing.T, s blobtest.Store, key string, data []byte, at time.Time) {
			t.Helper()
			fs := s.(*Store)
			if _, err := fs.Put(t.Context(), key, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			p, _ := fs.Path(key)
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		},
		Leftovers: func(t *testing.T, s blobtest.Store) []string { return tempFiles(t, s.(*Store)) },
		BigSize:   3 << 20,
	})
}
