package s3

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// maxTrimObjects bounds the objects one Trim holds (about 100 bytes
// each) as candidates to delete: the oldest ones seen. A pass that needs
// to delete more deletes those, and the next Trim goes on from the oldest
// left.
const maxTrimObjects = 200_000

// trimObject is one listed object.
type trimObject struct {
	name string
	size int64
	mod  time.Time
}

// newestFirst is a heap of objects whose top is the newest: the one to
// drop when a newer-than-it object no longer fits among the oldest held.
type newestFirst []trimObject

func (h newestFirst) Len() int           { return len(h) }
func (h newestFirst) Less(i, j int) bool { return h[i].mod.After(h[j].mod) }
func (h newestFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *newestFirst) Push(x any)        { *h = append(*h, x.(trimObject)) }
func (h *newestFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Trim keeps the blobs under prefix (e.g. "resources/") within maxBytes by
// deleting the least recently used first. S3 keeps no access time: use is
// the object's Last-Modified, its upload or, under a prefix in
// Options.TrackUse, its last refresh on use (touch.go: at most a day
// behind). It lists every object under prefix, counting their bytes and
// holding the oldest (maxTrimObjects at most), then deletes those, oldest
// first, until the rest fit. It returns how many it removed. Only caches
// belong under such a prefix: a trimmed blob is re-uploaded by the next
// push that needs it.
func (s *Store) Trim(ctx context.Context, prefix string, maxBytes int64) (int, error) {
	name, err := s.object(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return 0, err
	}
	name += "/"
	hold := s.trimHold
	if hold <= 0 {
		hold = maxTrimObjects
	}
	var oldest newestFirst
	var total int64
	for obj := range s.core.Client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: name, Recursive: true}) {
		if obj.Err != nil {
			return 0, fmt.Errorf("trim %s: list: %w", prefix, obj.Err)
		}
		total += obj.Size
		o := trimObject{obj.Key, obj.Size, obj.LastModified}
		switch {
		case len(oldest) < hold:
			heap.Push(&oldest, o)
		case o.mod.Before(oldest[0].mod):
			oldest[0] = o
			heap.Fix(&oldest, 0)
		}
	}
	if total <= maxBytes {
		return 0, nil
	}
	slices.SortFunc(oldest, func(a, b trimObject) int { return a.mod.Compare(b.mod) })
	removed := 0
	for _, b := range oldest {
		if total <= maxBytes {
			break
		}
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("trim %s: %w", prefix, err)
		}
		if err := s.core.RemoveObject(ctx, s.cfg.Bucket, b.name, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
			return removed, fmt.Errorf("trim %s: delete %s: %w", prefix, strings.TrimPrefix(b.name, name), err)
		}
		total -= b.size
		removed++
	}
	return removed, nil
}
