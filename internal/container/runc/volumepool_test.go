package runc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/testenv"
)

// poolImages lists the formatted images b keeps ahead, on disk.
func poolImages(t *testing.T, b *Backend) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(b.volumes, poolPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readyImages(b *Backend, size int64) int {
	b.pool.mu.Lock()
	defer b.pool.mu.Unlock()
	return len(b.pool.ready[size])
}

func waitReady(t *testing.T, b *Backend, size int64, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for readyImages(b, size) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d images of %d bytes formatted ahead after 60s, want %d", readyImages(b, size), size, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A configured size is formatted ahead from the start; a volume of that
// size takes one of those images (no mkfs on its path) and enforces its
// quota as any; the pool is refilled once the starts are quiet, a size
// asked is kept too, and Close removes what is left.
func TestVolume_formattedAheadImagesAreTakenAndRefilled(t *testing.T) {
	requireRunc(t)
	const quota = 8 << 20
	b, err := New(Config{StateDir: t.TempDir(), VolumePoolSizes: []int64{quota}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			b.Close()
		}
	})
	if b.pool == nil {
		t.Fatal("no volume pool although mkfs.ext4 is installed")
	}
	size := imageSize(quota)
	waitReady(t, b, size, poolDepth)
	before := poolImages(t, b)

	v := newVolume(t, b, quota>>20)
	if n := readyImages(b, size); n != poolDepth-1 {
		t.Fatalf("%d images ready after a volume took one, want %d", n, poolDepth-1)
	}
	after := poolImages(t, b)
	if len(after) != len(before)-1 {
		t.Fatalf("pool images on disk %v, then %v: want one fewer", before, after)
	}
	// The volume is a mounted ext4 of the quota's size.
	var st unix.Statfs_t
	if err := unix.Statfs(v.Dir(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		t.Fatalf("volume filesystem type %#x, want ext4", st.Type)
	}
	if got := int64(st.Blocks) * st.Bsize; got < quota*9/10 || got > quota*11/10 {
		t.Errorf("volume of %d bytes for a quota of %d", got, quota)
	}
	big := make([]byte, quota+(1<<20))
	err = os.WriteFile(filepath.Join(v.Dir(), "big"), big, 0o644)
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("writing past the quota: %v, want ENOSPC", err)
	}

	waitReady(t, b, size, poolDepth)

	// Another size asked is kept as well.
	newVolume(t, b, 4)
	waitReady(t, b, imageSize(4<<20), poolDepth)

	b.Close()
	closed = true
	if left := poolImages(t, b); len(left) != 0 {
		t.Errorf("images formatted ahead left after Close: %v", left)
	}
}

// Cleanup removes the images an earlier run formatted ahead and leaves
// the ones the backend holds.
func TestVolume_cleanupRemovesOnlyEarlierRunsPoolImages(t *testing.T) {
	requireRunc(t)
	stateDir := t.TempDir()
	const quota = 4 << 20
	b, err := New(Config{StateDir: stateDir, VolumePoolSizes: []int64{quota}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	leftover := filepath.Join(b.volumes, poolPrefix+"0123456789abcdef.img")
	if err := os.WriteFile(leftover, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitReady(t, b, imageSize(quota), poolDepth)
	if err := b.Cleanup(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("an earlier run's pool image is still there: %v", err)
	}
	if n := len(poolImages(t, b)); n != poolDepth {
		t.Errorf("%d pool images after Cleanup, want the %d held", n, poolDepth)
	}
	newVolume(t, b, quota>>20)
}

// Cleanup lists the pool's images, then removes the files of its dir
// that are not among them: an image started in between would be removed
// under mkfs (seen at a cell's start as "format a volume image ahead:
// ... does not exist"). The pool starts none while Cleanup looks.
func TestVolumePool_startsNoImageWhileCleanupLooks(t *testing.T) {
	p := newVolumePool(t.TempDir(), nil)
	p.beginCleanup(map[string]bool{})
	started := make(chan struct{})
	go func() {
		p.startMaking("pool-1.img")
		close(started)
	}()
	select {
	case <-started:
		t.Fatal("an image was started while Cleanup looked at the pool's files")
	case <-time.After(100 * time.Millisecond):
	}
	p.endCleanup()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no image started after Cleanup ended")
	}
	skip := map[string]bool{}
	p.beginCleanup(skip)
	p.endCleanup()
	if !skip["pool-1.img"] {
		t.Errorf("the next Cleanup would remove the image being made: it leaves %v", skip)
	}
}

// Cleanup at a start runs while the pool formats its first images: the
// image being formatted is not removed as unknown, whether it was made
// before Cleanup looked or after (then the pool waits for Cleanup).
func TestVolume_cleanupLeavesTheImageBeingFormatted(t *testing.T) {
	requireRunc(t)
	real := findMkfs()
	if real == "" {
		testenv.Missing(t, "mkfs.ext4 is not installed")
	}
	// A mkfs.ext4 first on PATH that waits for the gate file.
	bin, gate := t.TempDir(), filepath.Join(t.TempDir(), "gate")
	script := "#!/bin/sh\ntouch " + gate + ".started\nwhile [ ! -e " + gate + " ]; do sleep 0.01; done\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "mkfs.ext4"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	const quota = 4 << 20
	b, err := New(Config{StateDir: t.TempDir(), VolumePoolSizes: []int64{quota}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(gate + ".started"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool did not start formatting within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.pool.mu.Lock()
	making := b.pool.making
	b.pool.mu.Unlock()

	if err := b.Cleanup(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(making); err != nil {
		t.Fatalf("the image being formatted, %s, after Cleanup: %v", making, err)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitReady(t, b, imageSize(quota), poolDepth)
	b.pool.mu.Lock()
	kept := slices.Contains(b.pool.ready[imageSize(quota)], making)
	b.pool.mu.Unlock()
	if !kept {
		t.Errorf("the image formatted during Cleanup, %s, is not among the ready ones", making)
	}
}

// BenchmarkVolume_create times Volume alone (what a container start waits
// for) with an image formatted ahead and with mkfs on the path, the two
// alternating; the refill and the release are not timed.
func BenchmarkVolume_create(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("volumes need root")
	}
	const quota = 1 << 30
	be, err := New(Config{StateDir: b.TempDir(), VolumePoolSizes: []int64{quota}})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	dir := b.TempDir()
	size := imageSize(quota)
	var ahead, onPath time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		deadline := time.Now().Add(time.Minute)
		for readyImages(be, size) < poolDepth {
			if time.Now().After(deadline) {
				b.Fatal("the pool was not refilled within a minute")
			}
			time.Sleep(10 * time.Millisecond)
		}
		fromPool := i%2 == 0
		if !fromPool {
			be.pool.mu.Lock()
			held := be.pool.ready[size]
			be.pool.ready[size] = nil
			be.pool.mu.Unlock()
			defer func() {
				for _, img := range held {
					_ = os.Remove(img)
				}
			}()
		}
		b.StartTimer()
		start := time.Now()
		v, err := be.Volume(ctx, filepath.Join(dir, strconv.Itoa(i)), quota)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if fromPool {
			ahead += took
			n++
		} else {
			onPath += took
		}
		if err := v.Release(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	if n > 0 && b.N-n > 0 {
		b.ReportMetric(float64(ahead.Microseconds())/float64(n)/1000, "ms/ahead")
		b.ReportMetric(float64(onPath.Microseconds())/float64(b.N-n)/1000, "ms/on_path")
	}
}
