package s3

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// S3 keeps no access time, so Trim's "least recently used" would be
// "oldest uploaded": a cache entry used by every push would age out and be
// uploaded again. A blob under a tracked prefix (Options.TrackUse) that a
// Get or a successful Exists finds last modified over touchAge ago is
// copied onto itself (server-side, its metadata kept), which makes its
// Last-Modified now. The copies run in the background, off the request
// path, at most once per touchAge per blob.
const (
	touchAge = 24 * time.Hour
	// maxTouchQueue bounds the copies waiting; past it, uses are not
	// recorded until the queue drains (a later use records them).
	maxTouchQueue = 1024
	// maxTouched bounds the blobs remembered as touched in the last
	// touchAge (about 100 bytes each).
	maxTouched = 100_000
	// touchTimeout bounds one copy.
	touchTimeout = time.Minute
	// maxCopySize is S3's bound on a CopyObject: larger blobs are not
	// touched.
	maxCopySize = 5 << 30
)

// toucher queues and runs the copies; its worker runs while there is work.
type toucher struct {
	prefixes []string // object-name prefixes whose blobs are tracked
	mu       sync.Mutex
	touched  map[string]time.Time // object name → when its copy was queued
	pruned   time.Time            // when touched was last rid of old entries
	queue    []minio.ObjectInfo
	running  bool
}

// used notes that the blob named name (obj as a HEAD or GET saw it) was
// used, queueing a copy when it is due.
func (s *Store) used(name string, obj minio.ObjectInfo) {
	t := &s.touch
	if !t.tracked(name) || obj.LastModified.IsZero() || obj.Size > maxCopySize {
		return
	}
	now := time.Now()
	if now.Sub(obj.LastModified) < touchAge {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.touched[name]; ok && now.Sub(at) < touchAge {
		return
	}
	if len(t.touched) >= maxTouched && now.Sub(t.pruned) >= time.Minute {
		// Pruning walks the map: once a minute at most, not at every use.
		t.pruned = now
		for k, at := range t.touched {
			if now.Sub(at) >= touchAge {
				delete(t.touched, k)
			}
		}
	}
	if len(t.touched) >= maxTouched || len(t.queue) >= maxTouchQueue {
		return
	}
	if t.touched == nil {
		t.touched = map[string]time.Time{}
	}
	t.touched[name] = now
	obj.Key = name
	t.queue = append(t.queue, obj)
	if !t.running {
		t.running = true
		go s.runTouches()
	}
}

func (t *toucher) tracked(name string) bool {
	for _, p := range t.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// runTouches copies the queued blobs onto themselves, one at a time, and
// ends when the queue is empty.
func (s *Store) runTouches() {
	t := &s.touch
	for {
		t.mu.Lock()
		if len(t.queue) == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		obj := t.queue[0]
		t.queue = t.queue[1:]
		t.mu.Unlock()
		s.copyOntoItself(obj)
	}
}

// copyOntoItself refreshes obj's Last-Modified with a server-side copy
// that keeps its metadata, only if it is still the object seen (ETag): a
// blob replaced meanwhile is new anyway.
func (s *Store) copyOntoItself(obj minio.ObjectInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
	defer cancel()
	meta := map[string]string{
		"x-amz-metadata-directive": "REPLACE",
		"Content-Type":             contentType,
	}
	for k, v := range obj.UserMetadata {
		meta["X-Amz-Meta-"+k] = v
	}
	_, err := s.core.CopyObject(ctx, s.cfg.Bucket, obj.Key, s.cfg.Bucket, obj.Key, meta,
		minio.CopySrcOptions{MatchETag: obj.ETag}, minio.PutObjectOptions{})
	if err == nil || isNotFound(err) || minio.ToErrorResponse(err).Code == "PreconditionFailed" {
		return
	}
	s.log.Warn("refresh the last use of a cached blob: it may be trimmed as unused", "object", obj.Key, "err", err)
}
