package layers

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// markers lists the layers marked complete.
func markers(t *testing.T, dir string) []string { return names(t, filepath.Join(dir, "complete")) }

func TestFetch_marksALayerCompleteOnceItIsOnDisk(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip", dir("srv"), file("srv/app", "bits")))
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "srv", "app")); err != nil || string(data) != "bits" {
		t.Fatalf("the layer is usable at once: %q %v", data, err)
	}
	// Close waits for the sync worker.
	c.Close()
	if got, want := markers(t, dir), []string{filepath.Base(root)}; !slices.Equal(got, want) {
		t.Fatalf("complete/ holds %v, want %v", got, want)
	}
}

// A crash after the rename into unpacked/ but before the marker leaves a
// layer that is not known to be on disk: after a host restart (another
// boot id) it is removed and fetched again; after a process restart in the
// same boot it is synced and marked, not fetched again.
func TestOpen_aLayerWithoutItsMarkerIsFetchedAgainAfterAHostRestart(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name      string
		boot      string
		downloads int
	}{
		{"host restarted", "boot-2", 2},
		{"same boot", "boot-1", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, ls := newSource(tarball(t, "gzip", file("app", "bits")))
			dir := filepath.Join(t.TempDir(), "cache")
			c, err := Open(dir, Options{bootID: "boot-1"})
			if err != nil {
				t.Fatal(err)
			}
			root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			// The crash: the marker never made it to disk.
			if err := os.Remove(filepath.Join(dir, "complete", filepath.Base(root))); err != nil {
				t.Fatal(err)
			}

			again, err := Open(dir, Options{bootID: tc.boot})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			_, cached := again.Lookup(ls[0].Digest, Shift{})
			if cached != (tc.downloads == 1) {
				t.Fatalf("cached after reopening: %v", cached)
			}
			got, err := again.Fetch(context.Background(), src, ls[0], Shift{})
			if err != nil || got != root {
				t.Fatalf("fetch after reopening: %q %v", got, err)
			}
			if data, err := os.ReadFile(filepath.Join(got, "app")); err != nil || string(data) != "bits" {
				t.Fatalf("layer content: %q %v", data, err)
			}
			if n := src.openCount(ls[0].Digest); n != tc.downloads {
				t.Fatalf("%d downloads, want %d", n, tc.downloads)
			}
			again.Close()
			if got := markers(t, dir); len(got) != 1 {
				t.Fatalf("complete/ holds %v after the layer was synced again", got)
			}
		})
	}
}

func TestOpen_dropsMarkersWithoutLayersAndKeepsLayersOfOlderCaches(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip", file("app", "bits")))
	c, dir := openCache(t, Options{})
	root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	stray := filepath.Join(dir, "complete", "sha256-"+"0000000000000000000000000000000000000000000000000000000000000000")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A cache written before markers existed synced each layer before its
	// rename: no boot file, no markers.
	if err := os.Remove(filepath.Join(dir, "boot")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "complete", filepath.Base(root))); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir, Options{bootID: "another-boot"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, ok := again.Lookup(ls[0].Digest, Shift{}); !ok {
		t.Fatal("a layer of an older cache was dropped")
	}
	if got, want := markers(t, dir), []string{filepath.Base(root)}; !slices.Equal(got, want) {
		t.Fatalf("complete/ holds %v, want %v", got, want)
	}
}

// A prefetch and an instance pulling the same image at once download
// each layer once.
func TestPull_concurrentPullsOfOneImageDownloadEachLayerOnce(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip", file("one", "1")), tarball(t, "gzip", file("two", "2")))
	src.gate = make(chan struct{})
	c, _ := openCache(t, Options{})
	const pulls = 2
	dirs := make([][]string, pulls)
	errs := make([]error, pulls)
	var wg sync.WaitGroup
	for i := range pulls {
		wg.Go(func() {
			var release func()
			dirs[i], release, errs[i] = c.Pull(context.Background(), src, ls, Shift{})
			release()
		})
	}
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, f := range c.flights {
			n += f.waiters
		}
		return len(c.flights) == len(ls) && n == pulls*len(ls)
	})
	close(src.gate)
	wg.Wait()
	for i := range pulls {
		if errs[i] != nil || !slices.Equal(dirs[i], dirs[0]) {
			t.Fatalf("pull %d: %v %v (first %v)", i, dirs[i], errs[i], dirs[0])
		}
	}
	for _, l := range ls {
		if n := src.openCount(l.Digest); n != 1 {
			t.Fatalf("layer %s downloaded %d times, want once", l.Digest, n)
		}
	}
}

// A layer's sync waits for the fetches in flight (the container waiting
// for them should have the disk), but not longer than syncDefer.
func TestSyncWait_yieldsToFetchesInFlightForABoundedTime(t *testing.T) {
	c := &Cache{flights: map[string]*flight{}}
	now := time.Now()
	c.syncQ = []queued{{key: "a", at: now}}
	if w := c.syncWaitLocked(now); w > 0 {
		t.Fatalf("no fetch in flight: waits %s", w)
	}
	c.flights["b"] = &flight{}
	if w := c.syncWaitLocked(now); w != syncDefer {
		t.Fatalf("a fetch in flight: waits %s, want %s", w, syncDefer)
	}
	if w := c.syncWaitLocked(now.Add(syncDefer)); w > 0 {
		t.Fatalf("after %s: still waits %s", syncDefer, w)
	}
}
