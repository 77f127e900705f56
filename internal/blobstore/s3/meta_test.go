package s3

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore/blobtest"
	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

func digests(b []byte) pando.BlobInfo {
	s1, s256 := sha1.Sum(b), sha256.Sum256(b)
	return pando.BlobInfo{Size: int64(len(b)), SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s256[:])}
}

// TestStat_readsDigestsRecordedAtPut: the digests a Put computed come back
// from one HEAD, whatever the blob's size; blobs stored by another tool
// say so with empty digests.
func TestStat_readsDigestsRecordedAtPut(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	s := newStore(t, fake)
	ctx := t.Context()

	small := []byte("a small droplet")
	if _, err := s.Put(ctx, "droplets/small", bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Stat(ctx, "droplets/small"); err != nil || got != digests(small) {
		t.Fatalf("Stat(small) = %+v, %v; want %+v", got, err, digests(small))
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 11<<20/16) // three parts
	if _, err := s.Put(ctx, "droplets/big", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Stat(ctx, "droplets/big"); err != nil || got != digests(big) {
		t.Fatalf("Stat(big) = %+v, %v; want %+v (computed while its parts went up)", got, err, digests(big))
	}
	if got := blobtest.Read(t, s, "droplets/big"); !bytes.Equal(got, big) {
		t.Fatalf("Get(big) after its copy into place: %d bytes, not the %d put", len(got), len(big))
	}
	if left := fake.Objects(t, "pando-blobs", s.cfg.Prefix+"/"+tempDir+"/"); len(left) != 0 {
		t.Fatalf("temporary uploads left: %v", left)
	}
	if _, err := s.PutExpecting(ctx, "droplets/big", bytes.NewReader(big), digests(big)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Stat(ctx, "droplets/big"); err != nil || got != digests(big) {
		t.Fatalf("Stat(big) after PutExpecting = %+v, %v; want %+v", got, err, digests(big))
	}

	fake.PutPlain(t, "pando-blobs", s.cfg.Prefix+"/droplets/plain", small)
	if got, err := s.Stat(ctx, "droplets/plain"); err != nil || got != (pando.BlobInfo{Size: int64(len(small))}) {
		t.Fatalf("Stat(plain) = %+v, %v; want the size and no digests", got, err)
	}
	if _, err := s.Stat(ctx, "droplets/none"); !pando.IsNotFound(err) {
		t.Fatalf("Stat(missing) = %v, want ENotFound", err)
	}
}

// TestPutExpecting_refusesABlobThatStreamsOtherwise: a source that changed
// since its digest was taken stores nothing, small or multipart.
func TestPutExpecting_refusesABlobThatStreamsOtherwise(t *testing.T) {
	s := newStore(t, fakes3.Start(t, "pando-blobs"))
	ctx := t.Context()
	for _, size := range []int{100, 11 << 20} {
		data := bytes.Repeat([]byte{'a'}, size)
		want := digests(data)
		data[size/2] = 'b'
		_, err := s.PutExpecting(ctx, "droplets/changed", bytes.NewReader(data), want)
		if err == nil || !strings.Contains(err.Error(), "changed while uploading") {
			t.Fatalf("size %d: PutExpecting = %v, want a changed blob refused", size, err)
		}
		if ok, err := s.Exists(ctx, "droplets/changed"); ok || err != nil {
			t.Fatalf("size %d: the changed blob was stored (%v, %v)", size, ok, err)
		}
		if left := leftovers(t, s); len(left) != 0 {
			t.Fatalf("size %d: uploads left behind: %v", size, left)
		}
	}
	if _, err := s.PutExpecting(ctx, "droplets/x", strings.NewReader("x"), pando.BlobInfo{Size: 1}); err == nil {
		t.Fatal("PutExpecting without digests succeeded")
	}
}
