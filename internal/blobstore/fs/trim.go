package fs

import (
	"context"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Trim keeps the blobs under prefix (e.g. "resources/") within maxBytes by
// deleting the least recently used first, where use is the later of the
// blob's modification and access times. It returns how many it removed.
// Only caches belong under such a prefix: a trimmed blob is re-uploaded by
// the next push that needs it.
func (s *Store) Trim(ctx context.Context, prefix string, maxBytes int64) (int, error) {
	if err := ValidateKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return 0, err
	}
	root := filepath.Join(s.dir, filepath.FromSlash(prefix))
	type blob struct {
		path string
		size int64
		used time.Time
	}
	var blobs []blob
	var total int64
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil // temp files are sweepTemps' business
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		used := info.ModTime()
		if at := accessTime(info); at.After(used) {
			used = at
		}
		blobs = append(blobs, blob{p, info.Size(), used})
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("trim %s: %w", prefix, err)
	}
	if total <= maxBytes {
		return 0, nil
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].used.Before(blobs[j].used) })
	removed := 0
	for _, b := range blobs {
		if total <= maxBytes {
			break
		}
		if err := os.Remove(b.path); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("trim %s: %w", prefix, err)
		}
		total -= b.size
		removed++
	}
	return removed, nil
}
