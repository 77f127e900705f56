package runc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"golang.org/x/sys/unix"
)

const enospc = "No space left on device"

// newVolume makes a volume of mb MiB in a temp dir, released at the end.
func newVolume(t *testing.T, b *Backend, mb int64) container.Volume {
	t.Helper()
	v, err := b.Volume(testCtx(t), filepath.Join(t.TempDir(), "vol"), mb<<20)
	if err != nil {
		t.Fatalf("Volume: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Release(testCtx(t)); err != nil {
			t.Errorf("Release: %v", err)
		}
	})
	return v
}

// number returns the integer after key= in out.
func number(t *testing.T, out, key string) int64 {
	t.Helper()
	m := regexp.MustCompile(key + `=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s= in output %q", key, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func TestVolume_deletedOpenFileStopsAtQuota(t *testing.T) {
	b := newBackend(t, t.TempDir())
	v := newVolume(t, b, 16)
	// The file is gone from every directory while dd fills it: no walk
	// can see it, the filesystem still counts it.
	script := `exec 3>/home/vcap/hidden && rm /home/vcap/hidden && dd if=/dev/zero bs=1M count=64 >&3; echo "size=$(stat -L -c %s /proc/self/fd/3)"`
	out, errOut, st := runToEnd(t, b, container.Spec{ID: "deleted-open", Volume: v.Dir(), Args: []string{"sh", "-c", script}})
	if !strings.Contains(errOut, enospc) {
		t.Fatalf("dd did not hit ENOSPC: stdout %q stderr %q status %+v", out, errOut, st)
	}
	if size := number(t, out, "size"); size > 16<<20 || size < 12<<20 {
		t.Errorf("deleted file grew to %d bytes under a 16 MiB quota", size)
	}
}

func TestVolume_manySmallFilesStopAtQuota(t *testing.T) {
	b := newBackend(t, t.TempDir())
	v := newVolume(t, b, 8)
	for _, tc := range []struct{ name, body string }{
		{"empty", "true > f$i"},    // no block each: inodes are the limit
		{"one-byte", "echo > f$i"}, // a block each: room is the limit
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The shell's echo says "I/O error" whatever the errno: dd
			// tells what stopped the loop.
			script := `mkdir -p /tmp/d && cd /tmp/d && i=0; while ` + tc.body + ` 2>/dev/null; do i=$((i+1)); done; echo "files=$i"; ` +
				`echo x | dd of=probe$i; rm -rf /tmp/d`
			out, errOut, _ := runToEnd(t, b, container.Spec{ID: "files-" + tc.name, Volume: v.Dir(), Args: []string{"sh", "-c", script}})
			if !strings.Contains(errOut, enospc) {
				t.Fatalf("no ENOSPC: stdout %q stderr %q", out, errOut)
			}
			// 8 MiB: about 2,000 4-KiB blocks and as many inodes.
			if n := number(t, out, "files"); n < 1000 || n > 3000 {
				t.Errorf("%d files fit in 8 MiB", n)
			}
		})
	}
}

func TestVolume_fastWriterStopsAtQuotaAcrossHomeTmpAndStats(t *testing.T) {
	b := newBackend(t, t.TempDir())
	v := newVolume(t, b, 32)
	ctx := testCtx(t)
	var out, errOut syncBuffer
	// 12 MiB in home and 12 in tmp leave 8 of 32 for the fast writer.
	script := `head -c 12582912 /dev/zero > /home/vcap/a && head -c 12582912 /dev/zero > /tmp/b && ` +
		`dd if=/dev/zero of=/home/vcap/c bs=4M count=64; echo "c=$(stat -c %s /home/vcap/c)"; exec sleep 1000`
	c, err := b.Run(ctx, container.Spec{ID: "fast-writer", Volume: v.Dir(), Args: []string{"sh", "-c", script}, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "c=") {
		if time.Now().After(deadline) {
			t.Fatalf("writer never finished: stdout %q stderr %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(errOut.String(), enospc) {
		t.Fatalf("no ENOSPC: %q", errOut.String())
	}
	if n := number(t, out.String(), "c"); n > 8<<20 {
		t.Errorf("the third file got %d bytes, past the 8 MiB left", n)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if s.DiskBytes < 30<<20 || s.DiskBytes > 33<<20 || s.DiskBytes != u.UsedBytes || !u.Full() {
		t.Errorf("stats %d bytes, volume %+v; want about 32 MiB used, full", s.DiskBytes, u)
	}
}

func TestVolume_imageRootFSWritesCount(t *testing.T) {
	b := newBackend(t, t.TempDir())
	v := newVolume(t, b, 16)
	lower := busyboxRootFS(t)
	_, errOut, st := runToEnd(t, b, container.Spec{
		ID: "rootfs-writer", RootFS: lower, Volume: v.Dir(), Env: []string{"PATH=/bin"},
		Args: []string{"/bin/sh", "-c", "busybox dd if=/dev/zero of=/data/big bs=1M count=64"},
	})
	if st.Code == 0 || !strings.Contains(errOut, enospc) {
		t.Fatalf("a 64 MiB write to the rootfs passed a 16 MiB quota: %+v %q", st, errOut)
	}
	if _, err := os.Stat(filepath.Join(lower, "data", "big")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the write reached the image: %v", err)
	}
}

func TestVolume_releaseAndCleanupFreeMountLoopAndImage(t *testing.T) {
	stateDir := t.TempDir()
	old := newBackend(t, stateDir)
	ctx := testCtx(t)
	released, err := old.Volume(ctx, filepath.Join(t.TempDir(), "released"), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	leaked, err := old.Volume(ctx, filepath.Join(t.TempDir(), "leaked"), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leaked.Dir(), "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if devs, _ := loopDevicesUnder(old.volumes, nil); len(devs) != 2 {
		t.Fatalf("loop devices %v, want 2", devs)
	}
	if err := released.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(released.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("released volume dir: %v", err)
	}
	if _, err := released.Usage(); err == nil {
		t.Error("Usage of a released volume did not fail")
	}

	// The server is killed (leaked is never released; the volume images
	// it formats ahead stop); a new one starts.
	old.Close()
	b := newBackend(t, stateDir)
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mountsUnder(leaked.Dir()); len(ms) > 0 {
		t.Errorf("still mounted: %v", ms)
	}
	if devs, _ := loopDevicesUnder(b.volumes, nil); len(devs) > 0 {
		t.Errorf("loop devices left: %v", devs)
	}
	if ents, _ := os.ReadDir(b.volumes); len(ents) > 0 {
		t.Errorf("images left: %v", ents)
	}
}

func TestVolume_rejectsBadRequests(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir   string
		bytes int64
		kind  pando.ErrorKind
	}{
		{"relative", 4 << 20, pando.EInvalid},
		{filepath.Join(t.TempDir(), "v"), 1000, pando.EInvalid},
		{notEmpty, 4 << 20, pando.EConflict},
	} {
		if _, err := b.Volume(ctx, tc.dir, tc.bytes); pando.ErrorKindOf(err) != tc.kind {
			t.Errorf("Volume(%q, %d): %v, want %s", tc.dir, tc.bytes, err, tc.kind)
		}
	}
	_, err := b.Run(ctx, container.Spec{ID: "no-volume", Volume: t.TempDir(), Args: []string{"true"}})
	if pando.ErrorKindOf(err) != pando.EInvalid {
		t.Errorf("Run with a plain dir as volume: %v", err)
	}
}

// Release shuts a volume's filesystem down before unmounting it; if the
// volume was unmounted behind its back, that must not reach the filesystem
// below (here another volume, standing in for the host's).
func TestVolume_releaseAfterAnOutsideUnmountLeavesTheFilesystemBelowAlone(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	outer := newVolume(t, b, 4)
	inner, err := b.Volume(ctx, filepath.Join(outer.Dir(), "inner"), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(inner.Dir(), 0); err != nil {
		t.Fatal(err)
	}
	if err := inner.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outer.Dir(), "still-writable"), []byte("x"), 0o644); err != nil {
		t.Fatalf("the filesystem below was shut down: %v", err)
	}
}

// BenchmarkVolume_createAndRelease is what a quota costs each container:
// image, mkfs, loop device, mount, and the teardown.
func BenchmarkVolume_createAndRelease(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("volumes need root")
	}
	be, err := New(Config{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		v, err := be.Volume(ctx, filepath.Join(dir, strconv.Itoa(i)), 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
