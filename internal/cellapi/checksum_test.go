package cellapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestCheckedBody_failsAtTheEndUnlessTheTrailerMatches(t *testing.T) {
	for _, c := range []struct {
		trailer string
		ok      bool
	}{{sum("droplet"), true}, {sum("droplet!"), false}, {"", false}} {
		b := &checkedBody{rc: io.NopCloser(strings.NewReader("droplet")), h: sha256.New(),
			trailer: http.Header{checksumTrailer: {c.trailer}}, key: "droplets/x"}
		got, err := io.ReadAll(b)
		if (err == nil) != c.ok {
			t.Errorf("trailer %q: read %q, %v; want ok=%v", c.trailer, got, err, c.ok)
		}
	}
}

func TestVerifyingReader_refusesAnUploadThatDoesNotMatch(t *testing.T) {
	for _, c := range []struct {
		trailer string
		ok      bool
	}{{sum("cache"), true}, {sum("other"), false}, {"", false}} {
		v := &verifyingReader{r: strings.NewReader("cache"), h: sha256.New(), want: func() string { return c.trailer }}
		_, err := io.ReadAll(v)
		if (err == nil) != c.ok {
			t.Errorf("trailer %q: %v; want ok=%v", c.trailer, err, c.ok)
		}
	}
}

// flakyBlobs breaks the first breaks downloads after cut bytes.
type flakyBlobs struct {
	pando.Blobstore
	cut    int64
	mu     sync.Mutex
	breaks int
}

func (f *flakyBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := f.Blobstore.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.breaks == 0 {
		return rc, nil
	}
	f.breaks--
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, f.cut), errReader{}), rc}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk hiccup") }

func TestGet_resumesABrokenDownloadAndChecksTheWhole(t *testing.T) {
	flaky := &flakyBlobs{cut: 300 << 10, breaks: 2}
	f := newFixtureWith(t, func(b pando.Blobstore) pando.Blobstore { flaky.Blobstore = b; return flaky })
	c := f.join(t, "cell-a")
	ctx := context.Background()
	want := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
	if _, err := f.blobs.Put(ctx, "droplets/big", bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	f.grants.add("cell-a", "app1", []string{"droplets/big"}, nil)
	rc, err := c.client.Get(ctx, "droplets/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read after two breaks: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want the %d stored", len(got), len(want))
	}
	if flaky.breaks != 0 {
		t.Fatalf("%d breaks left: the download did not go through them", flaky.breaks)
	}
}
