package s3

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// maxTrimObjects bounds the objects one Trim lists (and holds, about 100
// bytes each): past it, Trim works on those listed and the next Trim
// goes on.
const maxTrimObjects = 200_000

// Trim keeps the blobs under prefix (e.g. "resources/") within maxBytes by
// deleting the least recently used first. S3 keeps no access time: use is
// the object's Last-Modified, its upload or, under a prefix in
// Options.TrackUse, its last refresh on use (touch.go: at most a day
// behind). It returns how many it removed. Only caches
// belong under such a prefix: a trimmed blob is re-uploaded by the next
// push that needs it.
func (s *Store) Trim(ctx context.Context, prefix string, maxBytes int64) (int, error) {
	name, err := s.object(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return 0, err
	}
	name += "/"
	type blob struct {
		name string
		size int64
		mod  time.Time
	}
	var blobs []blob
	var total int64
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	for obj := range s.core.Client.ListObjects(lctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: name, Recursive: true}) {
		if obj.Err != nil {
			return 0, fmt.Errorf("trim %s: list: %w", prefix, obj.Err)
		}
		blobs = append(blobs, blob{obj.Key, obj.Size, obj.LastModified})
		total += obj.Size
		if len(blobs) == maxTrimObjects {
			stop() // the listing's goroutine ends; the rest waits for the next Trim
			break
		}
	}
	if total <= maxBytes {
		return 0, nil
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].mod.Before(blobs[j].mod) })
	removed := 0
	for _, b := range blobs {
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
