package buildpacks

import (
	"fmt"
	"os"
	"path/filepath"
)

// publishSeed points link at dir, a seed ready tells is finished: a
// symlink made beside link and renamed over it, so a staging mounting
// link resolves either the old seed or the new one, whole. A cell's link
// is its own, in its data dir (servers of other versions share the cache
// dir the seeds are in), which the caller holds.
func publishSeed(what, link, dir string, ready func(string) bool) error {
	if !ready(dir) {
		return fmt.Errorf("publish %s: %s is not a ready seed", what, dir)
	}
	target, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("publish %s: %w", what, err)
	}
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	// What a run killed here left.
	if old, err := filepath.Glob(link + ".new-*"); err == nil {
		for _, p := range old {
			_ = os.Remove(p)
		}
	}
	tmp := fmt.Sprintf("%s.new-%d", link, os.Getpid())
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("publish %s: %w", what, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("publish %s: %w", what, err)
	}
	return nil
}
