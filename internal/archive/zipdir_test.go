package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

// manyEntries is a zip of n empty files named by prefix and their index.
func manyEntries(t *testing.T, n int, prefix string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range n {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%s%x", prefix, i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A zip listing far more entries than allowed is refused while its
// central directory is read: Go's reader would otherwise build a record
// for every entry first (half a million empty files in a 40 MB upload
// cost the API 100 MB), and only then could they be counted.
func TestListZip_tooManyEntriesAreRefusedBeforeTheyAreBuilt(t *testing.T) {
	data := manyEntries(t, 200_000, "f")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ListZip(bytes.NewReader(data), int64(len(data)), 1000)
	runtime.ReadMemStats(&after)
	// 200,000 records would be ~40 MB; 1000 entries' worth is ~0.3 MB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("refusing the zip allocated %d KiB", n>>10)
	}
	wantKind(t, err, pando.ETooLarge, "archive lists too many entries")
	x := ExtractZip(context.Background(), bytes.NewReader(data), int64(len(data)), t.TempDir(), Limits{MaxFiles: 1000, UID: -1, GID: -1})
	wantKind(t, x, pando.ETooLarge, "archive lists too many entries")
}

// Up to the limit, even with long names, a zip is listed whole; just
// past it, the count refuses it as before.
func TestListZip_entriesUpToTheLimitWithLongNamesAreListed(t *testing.T) {
	prefix := strings.Repeat("d/", 100) // 200-byte names
	data := manyEntries(t, 1000, prefix)
	entries, err := ListZip(bytes.NewReader(data), int64(len(data)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1000 {
		t.Fatalf("listed %d entries, want 1000", len(entries))
	}
	if err := ExtractZip(context.Background(), bytes.NewReader(data), int64(len(data)), t.TempDir(), Limits{MaxFiles: 1000, UID: -1, GID: -1}); err != nil {
		t.Fatalf("extract: %v", err)
	}
	data = manyEntries(t, 1001, "f")
	_, err = ListZip(bytes.NewReader(data), int64(len(data)), 1000)
	wantKind(t, err, pando.ETooLarge, "more than the limit of 1000")
}
