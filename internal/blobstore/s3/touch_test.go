package s3

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// TestTrim_keepsARecentlyUsedBlob: on S3 a cached blob found by Exists (a
// resource match) or read by Get is copied onto itself, at most once a
// day, so Trim removes an older unused blob before it.
func TestTrim_keepsARecentlyUsedBlob(t *testing.T) {
	var copies atomic.Int64
	fake := fakes3.StartWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// S3 refuses a copy onto itself that does not replace the metadata
			if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" && r.Header.Get("X-Amz-Metadata-Directive") == "REPLACE" {
				copies.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}, "pando-blobs")
	cfg, err := ParseURL(fmt.Sprintf("s3://pando-blobs/touch-%d?endpoint=http://%s&region=%s&path_style=true", storeSeq.Add(1), fake.Endpoint, fakes3.Region))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, Options{Getenv: fake.Getenv, TrackUse: []string{"resources/"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	putAt := func(key string, age time.Duration) []byte {
		data := bytes.Repeat([]byte(key), 10)
		fake.SetNow(time.Now().Add(-age))
		defer fake.SetNow(time.Time{})
		if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return data
	}
	popular := putAt("resources/popular", 72*time.Hour)
	putAt("resources/unused", 48*time.Hour)
	putAt("droplets/old", 72*time.Hour)
	idle := func() bool {
		s.touch.mu.Lock()
		defer s.touch.mu.Unlock()
		return !s.touch.running && len(s.touch.queue) == 0
	}

	if ok, err := s.Exists(ctx, "resources/popular"); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		obj, err := s.core.StatObject(ctx, s.cfg.Bucket, s.cfg.Prefix+"/resources/popular", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(obj.LastModified) < time.Hour && idle() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the used blob is still last modified at %v", obj.LastModified)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := copies.Load(); got != 1 {
		t.Fatalf("%d copies, want 1", got)
	}
	// Used again, and a blob outside the tracked prefix used: no copy is
	// queued (they are queued synchronously, so idle tells).
	if rc, err := s.Get(ctx, "resources/popular"); err != nil {
		t.Fatal(err)
	} else if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, popular) {
		t.Fatalf("the touched blob reads %q, %v", b, err)
	} else {
		rc.Close()
	}
	if _, err := s.Exists(ctx, "resources/popular"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exists(ctx, "droplets/old"); err != nil {
		t.Fatal(err)
	}
	if !idle() || copies.Load() != 1 {
		t.Fatalf("a copy was queued for a blob touched today or outside resources/ (%d copies)", copies.Load())
	}
	if info, err := s.Stat(ctx, "resources/popular"); err != nil || info != digests(popular) {
		t.Fatalf("the touched blob lost its recorded digests: %+v, %v", info, err)
	}

	if n, err := s.Trim(ctx, "resources/", int64(len(popular))); n != 1 || err != nil {
		t.Fatalf("Trim = %d, %v; want 1 removed", n, err)
	}
	if ok, _ := s.Exists(ctx, "resources/popular"); !ok {
		t.Fatal("Trim removed the recently used blob")
	}
	if ok, _ := s.Exists(ctx, "resources/unused"); ok {
		t.Fatal("Trim kept the unused blob")
	}
}

// TestTouch_aFailingCopyIsNotRetriedAtEveryUse: when the bucket refuses
// the copy (a policy without it), each blob is tried once a day, not at
// every resource match.
func TestTouch_aFailingCopyIsNotRetriedAtEveryUse(t *testing.T) {
	var copies atomic.Int64
	fake := fakes3.StartWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				copies.Add(1)
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, "pando-blobs")
	cfg, err := ParseURL(fmt.Sprintf("s3://pando-blobs/touch-%d?endpoint=http://%s&region=%s&path_style=true", storeSeq.Add(1), fake.Endpoint, fakes3.Region))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, Options{Getenv: fake.Getenv, TrackUse: []string{"resources"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fake.SetNow(time.Now().Add(-72 * time.Hour))
	_, err = s.Put(t.Context(), "resources/r", bytes.NewReader([]byte("cached")))
	fake.SetNow(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if ok, err := s.Exists(t.Context(), "resources/r"); !ok || err != nil {
			t.Fatalf("Exists = %v, %v", ok, err)
		}
	}
	idle := func() bool {
		s.touch.mu.Lock()
		defer s.touch.mu.Unlock()
		return !s.touch.running && len(s.touch.queue) == 0
	}
	for deadline := time.Now().Add(10 * time.Second); copies.Load() == 0 || !idle(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the touches did not end (%d copies tried)", copies.Load())
		}
	}
	if got := copies.Load(); got != 1 {
		t.Fatalf("%d copies tried for one blob used 5 times, want 1", got)
	}
}

// Trim bounds the whole cache, not the part of it one pass holds: with
// more objects than it holds, it deletes the oldest of all (here the last
// listed, by name), and the next pass goes on until the cache fits.
func TestTrim_moreObjectsThanAPassHolds(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	s := newStore(t, fake)
	s.trimHold = 4
	ctx := t.Context()
	base := time.Now().Add(-100 * time.Hour)
	const n = 12
	for i := range n {
		// Names sort newest first: "resources/a..." is the newest.
		key := fmt.Sprintf("resources/%c-blob", 'a'+n-1-i)
		fake.SetNow(base.Add(time.Duration(i) * time.Hour))
		if _, err := s.Put(ctx, key, bytes.NewReader(bytes.Repeat([]byte{'x'}, 10))); err != nil {
			t.Fatal(err)
		}
	}
	fake.SetNow(time.Time{})
	// 120 bytes; keep 50: the 5 newest stay, after two passes.
	removed := 0
	for range 3 {
		got, err := s.Trim(ctx, "resources/", 50)
		if err != nil {
			t.Fatal(err)
		}
		removed += got
	}
	if removed != n-5 {
		t.Fatalf("Trim removed %d in all, want %d", removed, n-5)
	}
	for i := range n {
		key := fmt.Sprintf("resources/%c-blob", 'a'+n-1-i)
		ok, err := s.Exists(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= n-5; ok != want {
			t.Errorf("%s (put %d of %d) kept = %v, want %v", key, i+1, n, ok, want)
		}
	}
}
