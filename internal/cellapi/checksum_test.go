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
	"time"

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

// downBlobs is a server that breaks the first download after cut bytes
// and then answers 503 (as one restarting, or not yet told about the
// cell again) to the next down requests.
type downBlobs struct {
	pando.Blobstore
	cut    int64
	mu     sync.Mutex
	breaks int
	down   int
	gets   int
}

func (d *downBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	d.mu.Lock()
	d.gets++
	if d.breaks == 0 && d.down > 0 {
		d.down--
		d.mu.Unlock()
		return nil, pando.Errorf(pando.EUnavailable, "the server is restarting")
	}
	breaks := d.breaks > 0
	if breaks {
		d.breaks--
	}
	d.mu.Unlock()
	rc, err := d.Blobstore.Get(ctx, key)
	if err != nil || !breaks {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, d.cut), errReader{}), rc}, nil
}

// A download waits for a server that went away (more requests than
// maxResumes, within the retry bound), mid-way or before its first byte,
// and then completes checked; one that stays away past the bound fails
// saying so.
func TestGet_waitsForAnUnavailableServerWithinABound(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for _, c := range []struct {
		name   string
		breaks int
		down   int
		ok     bool
	}{
		{"away mid-download", 1, 3 * maxResumes, true},
		{"away at the start", 0, 3 * maxResumes, true},
		{"away past the bound", 1, 1 << 30, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			down := &downBlobs{cut: 200 << 10, breaks: c.breaks, down: c.down}
			f := newFixtureWith(t, func(b pando.Blobstore) pando.Blobstore { down.Blobstore = b; return down })
			cell := f.join(t, "cell-a")
			cell.client.retry = blobRetry{limit: 5 * time.Second, min: time.Millisecond, max: 5 * time.Millisecond}
			if !c.ok {
				cell.client.retry.limit = 200 * time.Millisecond
			}
			ctx := context.Background()
			if _, err := f.blobs.Put(ctx, "packages/p", bytes.NewReader(want)); err != nil {
				t.Fatal(err)
			}
			f.grants.add("cell-a", "app1", []string{"packages/p"}, nil)
			var got []byte
			rc, err := cell.client.Get(ctx, "packages/p")
			if err == nil {
				got, err = io.ReadAll(rc)
				rc.Close()
			}
			if !c.ok {
				if err == nil || !strings.Contains(err.Error(), "the server was unavailable for") {
					t.Fatalf("a server away past the bound: %v, want an error saying so", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("download: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want the %d stored", len(got), len(want))
			}
			down.mu.Lock()
			defer down.mu.Unlock()
			if down.down != 0 || down.gets <= maxResumes {
				t.Fatalf("%d unavailable answers left after %d requests: the download did not wait through them", down.down, down.gets)
			}
		})
	}
}
