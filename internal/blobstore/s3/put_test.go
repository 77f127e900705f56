package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando/internal/blobstore/blobtest"
	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// copyGate is a fake S3 front that, once armed, holds every server-side
// copy request: it calls onCopy, then fails the copy (a refusal) or waits
// for the client to leave (a cancelled Put).
type copyGate struct {
	mu     sync.Mutex
	onCopy func()
	refuse bool
}

func (g *copyGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		onCopy, refuse := g.onCopy, g.refuse
		g.mu.Unlock()
		if r.Header.Get("X-Amz-Copy-Source") == "" || onCopy == nil {
			next.ServeHTTP(w, r)
			return
		}
		onCopy()
		if refuse {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>no copies</Message></Error>`))
			return
		}
		<-r.Context().Done()
	})
}

func (g *copyGate) arm(onCopy func(), refuse bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onCopy, g.refuse = onCopy, refuse
}

// A multipart Put whose copy into place fails or is cancelled leaves the
// key as it was (no blob, or the previous one), no temporary object and
// no multipart upload.
func TestPut_aFailedOrCancelledCopyIntoPlaceLeavesNothing(t *testing.T) {
	gate := &copyGate{}
	fake := fakes3.StartWith(t, gate.wrap, "pando-blobs")
	s := newStore(t, fake)
	big := bytes.Repeat([]byte("0123456789abcdef"), 11<<20/16)
	old := []byte("the previous droplet")

	for _, tc := range []struct {
		name   string
		refuse bool
	}{{"refused", true}, {"cancelled", false}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, before := range [][]byte{nil, old} {
				key := "droplets/" + tc.name
				if before != nil {
					key += "-replaced"
					gate.arm(nil, false)
					if _, err := s.Put(t.Context(), key, bytes.NewReader(before)); err != nil {
						t.Fatal(err)
					}
				}
				ctx, cancel := context.WithCancel(t.Context())
				var copies atomic.Int64
				gate.arm(func() {
					copies.Add(1)
					if !tc.refuse {
						cancel()
					}
				}, tc.refuse)
				_, err := s.Put(ctx, key, bytes.NewReader(big))
				cancel()
				gate.arm(nil, false)
				if err == nil {
					t.Fatalf("Put of %s succeeded though its copy into place was %s", key, tc.name)
				}
				if !tc.refuse && !errors.Is(err, context.Canceled) {
					t.Fatalf("Put of %s: %v; want the context's error", key, err)
				}
				if copies.Load() == 0 {
					t.Fatalf("Put of %s: no copy into place was tried", key)
				}
				if before == nil {
					if ok, err := s.Exists(t.Context(), key); err != nil || ok {
						t.Fatalf("Exists(%s) = %v, %v after a failed Put; want no blob", key, ok, err)
					}
				} else if got := blobtest.Read(t, s, key); !bytes.Equal(got, before) {
					t.Fatalf("%s holds %d bytes after a failed Put; want the previous %d", key, len(got), len(before))
				}
				if left := fake.Objects(t, "pando-blobs", s.cfg.Prefix+"/"+tempDir+"/"); len(left) != 0 {
					t.Fatalf("temporary uploads left after a failed Put: %v", left)
				}
				if left := leftovers(t, s); len(left) != 0 {
					t.Fatalf("multipart uploads left after a failed Put: %v", left)
				}
			}
		})
	}
}

// A completion of the temporary upload that S3 carries out but whose
// answer is lost (an error to the client) still leaves no temporary
// object: the Put removes it whatever the completion said.
func TestPut_aTemporaryUploadWhoseCompletionAnswerIsLostIsRemoved(t *testing.T) {
	var lost atomic.Int64
	front := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !r.URL.Query().Has("uploadId") || !strings.Contains(r.URL.Path, "/"+tempDir+"/") {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(httptest.NewRecorder(), r) // done, answer lost
			lost.Add(1)
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>lost</Message></Error>`))
		})
	}
	fake := fakes3.StartWith(t, front, "pando-blobs")
	s := newStore(t, fake)
	big := bytes.Repeat([]byte("0123456789abcdef"), 11<<20/16)
	if _, err := s.Put(t.Context(), "droplets/lost", bytes.NewReader(big)); err == nil {
		t.Fatal("Put succeeded though its temporary upload's completion failed")
	}
	if lost.Load() == 0 {
		t.Fatal("no completion of a temporary upload was seen")
	}
	if left := fake.Objects(t, "pando-blobs", s.cfg.Prefix+"/"+tempDir+"/"); len(left) != 0 {
		t.Fatalf("temporary uploads left after a failed Put: %v", left)
	}
}
