package buildpacks_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pandoplatform/pando/internal/buildpacks"
)

// A cell's seed link names only ready seeds: publishing one not finished
// fails and leaves the link as it was; publishing another ready one
// replaces the link (by a rename: no moment without it), and what a killed
// run left beside the link goes.
func TestPublishGoCacheSeed_linksOnlyReadySeeds(t *testing.T) {
	cacheDir, dataDir := t.TempDir(), t.TempDir()
	link := filepath.Join(dataDir, "go-build-seed")
	seed := func(version string, ready bool) string {
		dir := filepath.Join(cacheDir, "go-build-seed", version)
		must(t, os.MkdirAll(dir, 0o755))
		if ready {
			must(t, os.WriteFile(filepath.Join(dir, buildpacks.GoCacheReadyFile), nil, 0o644))
		}
		return dir
	}
	names := func() string {
		t.Helper()
		target, err := os.Readlink(link)
		if err != nil {
			return ""
		}
		return target
	}
	half := seed("go1.0-half", false)
	if err := buildpacks.PublishGoCacheSeed(link, half); err == nil || names() != "" {
		t.Fatalf("publishing a seed not finished: %v, link names %q", err, names())
	}
	leftover := link + ".new-1"
	must(t, os.Symlink(half, leftover))
	first := seed("go1.1", true)
	must(t, buildpacks.PublishGoCacheSeed(link, first))
	if names() != first || !buildpacks.GoCacheReady(link) {
		t.Fatalf("link names %q, want %s", names(), first)
	}
	if _, err := os.Lstat(leftover); !os.IsNotExist(err) {
		t.Fatalf("a killed run's temp link was kept: %v", err)
	}
	if err := buildpacks.PublishGoCacheSeed(link, half); err == nil || names() != first {
		t.Fatalf("publishing a seed not finished over a ready one: %v, link names %q", err, names())
	}
	second := seed("go1.2", true)
	must(t, buildpacks.PublishGoCacheSeed(link, second))
	must(t, buildpacks.PublishGoCacheSeed(link, second))
	if names() != second || !buildpacks.GoCacheReady(first) {
		t.Fatalf("link names %q, want %s; the first seed ready: %t", names(), second, buildpacks.GoCacheReady(first))
	}
	entries, err := os.ReadDir(dataDir)
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d entries, want the link alone", len(entries))
	}
}
