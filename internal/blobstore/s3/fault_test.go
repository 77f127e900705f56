package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// flaky fails the first attempt of every distinct request (method, path
// and query) in front of the fake S3: with 503 SlowDown or, on odd
// requests, a connection closed before any answer.
type flaky struct {
	mu     sync.Mutex
	seen   map[string]bool
	faults map[string]int // "slowdown" / "reset" → count
	on     bool
}

func (f *flaky) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		id := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
		first := f.on && !f.seen[id]
		f.seen[id] = true
		kind := "slowdown"
		if len(f.seen)%2 == 1 {
			kind = "reset"
		}
		if first {
			f.faults[kind]++
		}
		f.mu.Unlock()
		if !first {
			next.ServeHTTP(w, r)
			return
		}
		if kind == "reset" {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
				return
			}
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
	})
}

// TestStore_retriesTransientErrors: every request a Put (one PUT, or a
// multipart upload's start, parts and completion) and a Get make is
// retried after a 503 SlowDown or a reset connection: their bodies are
// parts held in memory, so a retry sends the same bytes again.
func TestStore_retriesTransientErrors(t *testing.T) {
	f := &flaky{seen: map[string]bool{}, faults: map[string]int{}}
	fake := fakes3.StartWith(t, f.wrap, "pando-blobs")
	s := newStore(t, fake)
	ctx := t.Context()
	f.mu.Lock()
	f.on = true
	f.mu.Unlock()
	for _, size := range []int{1000, 11 << 20} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7 / 5)
		}
		key := "droplets/d-" + strconv.Itoa(size)
		info, err := s.Put(ctx, key, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Put of %d bytes through transient errors: %v", size, err)
		}
		if info.Size != int64(size) {
			t.Fatalf("Put = %+v", info)
		}
		rc, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get through transient errors: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s reads back %d bytes (%v), want its %d", key, len(got), err, size)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// one PUT; start, 3 parts, completion; 2 GETs
	if f.faults["slowdown"] < 3 || f.faults["reset"] < 3 {
		t.Fatalf("faults injected: %v, want several of each kind", f.faults)
	}
}

// TestGet_connectionCutMidBodyFails: a GET whose connection drops after
// half the body reads as an error, never as a shorter blob.
func TestGet_connectionCutMidBodyFails(t *testing.T) {
	cut := false
	var mu sync.Mutex
	fake := fakes3.StartWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			on := cut
			mu.Unlock()
			if !on || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/droplets/") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			body := rec.Body.Bytes()
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2])
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		})
	}, "pando-blobs")
	s := newStore(t, fake)
	ctx := t.Context()
	data := bytes.Repeat([]byte("droplet bytes "), 100_000)
	if _, err := s.Put(ctx, "droplets/d", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	cut = true
	mu.Unlock()
	rc, err := s.Get(ctx, "droplets/d")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "get blob droplets/d") {
		t.Fatalf("a cut read gave %d of %d bytes and err %v, want an unexpected EOF naming the blob", len(got), len(data), err)
	}
	if len(got) >= len(data) {
		t.Fatalf("the cut read gave %d bytes", len(got))
	}
}

// TestWholeReader_failsOnAShortOrLongBody: the size check holds whatever
// the transport delivers.
func TestWholeReader_failsOnAShortOrLongBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		size int64
		want error
	}{
		{"whole", 5, nil},
		{"shor", 5, io.ErrUnexpectedEOF},
		{"longer", 5, errors.New("more bytes than the object's size")},
		{"unknown size", -1, nil},
	} {
		r := &wholeReader{rc: io.NopCloser(strings.NewReader(tc.body)), key: "k", left: tc.size}
		_, err := io.ReadAll(r)
		switch {
		case tc.want == nil && err != nil,
			tc.want != nil && err == nil,
			tc.want != nil && !errors.Is(err, tc.want) && !strings.Contains(err.Error(), tc.want.Error()):
			t.Errorf("body %q of size %d: %v, want %v", tc.body, tc.size, err, tc.want)
		}
	}
}
