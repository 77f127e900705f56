// Package blobtest is the pando.Blobstore contract as one test suite, run
// against every implementation (the fs and s3 blobstores): round trips
// with digests, whole-blob replacement, not-found and invalid keys,
// cancelled and failing uploads that leave nothing behind, large blobs and
// the resource cache's Trim.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore"
)

// Store is what the suite tests: a pando.Blobstore with the resource
// cache's Trim and Stat (size, and digests where recorded).
type Store interface {
	pando.Blobstore
	Trim(ctx context.Context, prefix string, maxBytes int64) (int, error)
	Stat(ctx context.Context, key string) (pando.BlobInfo, error)
}

// Harness adapts the suite to one implementation.
type Harness struct {
	// New returns an empty store.
	New func(t *testing.T) Store
	// PutAt stores data under key so that Trim sees it as last used at at.
	PutAt func(t *testing.T, s Store, key string, data []byte, at time.Time)
	// Leftovers lists what unfinished Puts left in the store (temp files,
	// multipart uploads); the suite wants none after a failed Put.
	Leftovers func(t *testing.T, s Store) []string
	// BigSize is the size of a blob that takes the store's large-blob path
	// (several parts).
	BigSize int
}

// Run runs the contract against h's store.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"roundTrip", roundTrip},
		{"emptyBlob", emptyBlob},
		{"missingBlob", missingBlob},
		{"overwriteReplacesWhole", overwrite},
		{"failingReaderLeavesOldBlob", failingReader},
		{"cancelledPutLeavesNothing", cancelledPut},
		{"cancelMidStreamLeavesNothing", cancelMidStream},
		{"bigBlob", bigBlob},
		{"concurrentPutsOfOneKey", concurrentPuts},
		{"invalidKeys", invalidKeys},
		{"trimDeletesOldestFirst", trim},
		{"statTellsSizeAndRecordedDigests", stat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// Read is the whole blob under key; a failed Get or read fails t.
func Read(t *testing.T, s pando.Blobstore, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func wantInfo(data []byte) pando.BlobInfo {
	h1, h256 := sha1.Sum(data), sha256.Sum256(data)
	return pando.BlobInfo{Size: int64(len(data)), SHA1: hex.EncodeToString(h1[:]), SHA256: hex.EncodeToString(h256[:])}
}

func noLeftovers(t *testing.T, h Harness, s Store) {
	t.Helper()
	if left := h.Leftovers(t, s); len(left) != 0 {
		t.Fatalf("unfinished Puts left %v", left)
	}
}

func roundTrip(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	data := bytes.Repeat([]byte("pando droplet "), 10_000)
	key := pando.DropletBlobKey("6b3c-4d9e")
	info, err := s.Put(ctx, key, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := wantInfo(data); info != want {
		t.Fatalf("Put info = %+v, want %+v", info, want)
	}
	if got := Read(t, s, key); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(data))
	}
	if ok, err := s.Exists(ctx, key); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Exists(ctx, key); ok || err != nil {
		t.Fatalf("Exists after Delete = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, key); !pando.IsNotFound(err) {
		t.Fatalf("Get after Delete = %v, want ENotFound", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
}

func emptyBlob(t *testing.T, h Harness) {
	s := h.New(t)
	info, err := s.Put(t.Context(), "buildcache/app", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if want := wantInfo(nil); info != want {
		t.Fatalf("empty blob info = %+v, want %+v", info, want)
	}
	if got := Read(t, s, "buildcache/app"); len(got) != 0 {
		t.Fatalf("empty blob reads %q", got)
	}
}

func missingBlob(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	if _, err := s.Put(ctx, "droplets/a", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"packages/none", "nodir/none", "droplets"} {
		if _, err := s.Get(ctx, key); !pando.IsNotFound(err) {
			t.Errorf("Get(%s) = %v, want ENotFound", key, err)
		}
		if ok, err := s.Exists(ctx, key); ok || err != nil {
			t.Errorf("Exists(%s) = %v, %v", key, ok, err)
		}
	}
}

func overwrite(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	key := "packages/p1"
	v1, v2 := bytes.Repeat([]byte{1}, 300<<10), bytes.Repeat([]byte{2}, 100<<10)
	if _, err := s.Put(ctx, key, bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(ctx, key, bytes.NewReader(v2))
	if err != nil {
		t.Fatal(err)
	}
	if info != wantInfo(v2) {
		t.Fatalf("second Put info = %+v", info)
	}
	if got := Read(t, s, key); !bytes.Equal(got, v2) {
		t.Fatalf("after overwrite Get returned %d bytes, want the second blob's %d", len(got), len(v2))
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func failingReader(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	key := "packages/p1"
	old := []byte("the blob before")
	if _, err := s.Put(ctx, key, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("client went away")
	for _, n := range []int{1000, h.BigSize} {
		_, err := s.Put(ctx, key, io.MultiReader(bytes.NewReader(make([]byte, n)), errReader{boom}))
		if !errors.Is(err, boom) {
			t.Fatalf("Put failing after %d bytes = %v, want the reader's error", n, err)
		}
		if got := Read(t, s, key); !bytes.Equal(got, old) {
			t.Fatalf("Put failing after %d bytes damaged the existing blob", n)
		}
		_, err = s.Put(ctx, "packages/new", io.MultiReader(bytes.NewReader(make([]byte, n)), errReader{boom}))
		if !errors.Is(err, boom) {
			t.Fatalf("Put failing after %d bytes = %v, want the reader's error", n, err)
		}
		if ok, err := s.Exists(ctx, "packages/new"); ok || err != nil {
			t.Fatalf("Put failing after %d bytes stored a blob (%v)", n, err)
		}
	}
	noLeftovers(t, h, s)
}

func cancelledPut(t *testing.T, h Harness) {
	s := h.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "packages/cancelled", strings.NewReader("data")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled ctx = %v, want context.Canceled", err)
	}
	if ok, _ := s.Exists(t.Context(), "packages/cancelled"); ok {
		t.Fatal("cancelled Put stored a blob")
	}
	noLeftovers(t, h, s)
}

// cancelMidStream cancels a Put that has sent more than a part: nothing
// is stored and nothing is left.
func cancelMidStream(t *testing.T, h Harness) {
	s := h.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, "droplets/cancelled", pr)
		done <- err
	}()
	// The Put has taken all of this (a pipe write returns once read).
	if _, err := pw.Write(make([]byte, h.BigSize)); err != nil {
		t.Fatal(err)
	}
	cancel()
	pw.Close() // a Put waiting on the pipe reads the end
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled mid-stream = %v, want context.Canceled", err)
	}
	if ok, _ := s.Exists(t.Context(), "droplets/cancelled"); ok {
		t.Fatal("cancelled Put stored a blob")
	}
	noLeftovers(t, h, s)
}

func bigBlob(t *testing.T, h Harness) {
	s := h.New(t)
	data := make([]byte, h.BigSize)
	for i := range data {
		data[i] = byte(i * 7 / 13)
	}
	info, err := s.Put(t.Context(), "droplets/big", iotestHalfReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if info != wantInfo(data) {
		t.Fatalf("Put info = %+v, want %+v", info, wantInfo(data))
	}
	if got := Read(t, s, "droplets/big"); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, not the %d put", len(got), len(data))
	}
	noLeftovers(t, h, s)
}

// iotestHalfReader returns short reads, as a network upload does.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:(len(p)+1)/2])
}

func concurrentPuts(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	const writers = 6
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 200<<10)
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Put(ctx, "resources/same", bytes.NewReader(contents[i]))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	got := Read(t, s, "resources/same")
	for _, c := range contents {
		if bytes.Equal(got, c) {
			return
		}
	}
	t.Fatalf("after concurrent Puts the blob (%d bytes) is not any one writer's content", len(got))
}

func invalidKeys(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	bad := []string{"", "/etc/passwd", "../outside", "a/../../b", "..", ".", "a/./b", ".hidden",
		"a//b", "a/", "a b", `a\b`, "a:b", "ünïcode", "a\x00b", strings.Repeat("a", blobstore.MaxKeyLen+1)}
	for _, k := range bad {
		checks := map[string]error{}
		_, checks["Put"] = s.Put(ctx, k, strings.NewReader("x"))
		_, checks["Get"] = s.Get(ctx, k)
		_, checks["Exists"] = s.Exists(ctx, k)
		checks["Delete"] = s.Delete(ctx, k)
		if !strings.HasSuffix(k, "/") { // Trim takes "resources/" or "resources"
			_, checks["Trim"] = s.Trim(ctx, k, 0)
		}
		for op, err := range checks {
			if pando.ErrorKindOf(err) != pando.EInvalid {
				t.Errorf("%s(%q) = %v, want EInvalid", op, k, err)
			}
		}
	}
}

func trim(t *testing.T, h Harness) {
	s, ctx := h.New(t), t.Context()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	blob := bytes.Repeat([]byte("r"), 1000)
	// Put out of age order: Trim sorts.
	for _, i := range []int{3, 1, 4, 0, 2} {
		h.PutAt(t, s, "resources/r"+string(rune('0'+i)), blob, base.Add(time.Duration(i)*time.Minute))
	}
	h.PutAt(t, s, "droplets/d", bytes.Repeat(blob, 10), base)

	if n, err := s.Trim(ctx, "resources/", 5000); n != 0 || err != nil {
		t.Fatalf("Trim within the bound = %d, %v; want 0, nil", n, err)
	}
	n, err := s.Trim(ctx, "resources/", 2500)
	if n != 3 || err != nil {
		t.Fatalf("Trim to 2500 bytes = %d, %v; want 3 removed", n, err)
	}
	for i, want := range []bool{false, false, false, true, true} {
		key := "resources/r" + string(rune('0'+i))
		if ok, err := s.Exists(ctx, key); ok != want || err != nil {
			t.Errorf("after Trim Exists(%s) = %v, %v; want %v (oldest go first)", key, ok, err, want)
		}
	}
	if ok, _ := s.Exists(ctx, "droplets/d"); !ok {
		t.Error("Trim of resources/ removed a droplet")
	}
	if n, err := s.Trim(ctx, "nothing-here/", 0); n != 0 || err != nil {
		t.Errorf("Trim of an empty prefix = %d, %v", n, err)
	}
}

// stat: Stat tells the size of the blob stored now, and digests that are
// the blob's or none (a store records them or not), never stale ones.
func stat(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := t.Context()
	check := func(key string, data []byte) {
		t.Helper()
		got, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%s): %v", key, err)
		}
		want := wantInfo(data)
		if got.Size != want.Size || got.SHA256 != "" && got.SHA256 != want.SHA256 || got.SHA1 != "" && got.SHA1 != want.SHA1 {
			t.Fatalf("Stat(%s) = %+v, want size %d and digests %s/%s or none", key, got, want.Size, want.SHA1, want.SHA256)
		}
	}
	for _, data := range [][]byte{[]byte("first"), []byte("the second, longer"), {}, bytes.Repeat([]byte("big "), h.BigSize/4)} {
		if _, err := s.Put(ctx, "droplets/d", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		check("droplets/d", data)
	}
	if _, err := s.Stat(ctx, "droplets/missing"); !pando.IsNotFound(err) {
		t.Fatalf("Stat(missing) = %v, want ENotFound", err)
	}
	if _, err := s.Stat(ctx, "droplets"); !pando.IsNotFound(err) {
		t.Fatalf("Stat of a key naming blobs below it = %v, want ENotFound", err)
	}
	if _, err := s.Stat(ctx, "../etc/passwd"); err == nil || pando.IsNotFound(err) {
		t.Fatalf("Stat(../etc/passwd) = %v, want an invalid key", err)
	}
}
