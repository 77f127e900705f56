package layers

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/testenv"
)

func TestFetch_unpacksAsTheTarSays(t *testing.T) {
	requireRoot(t)
	for _, compression := range []string{"gzip", "zstd", ""} {
		t.Run("compression="+compression, func(t *testing.T) {
			setuid := file("usr/bin/su", "#!/bin/sh\n")
			setuid.mode = 0o4755
			owned := file("home/app/data", "mine")
			owned.uid, owned.gid = 1000, 1001
			sgid := dir("srv/shared/")
			sgid.mode = 0o2775
			blob := tarball(t, compression,
				dir("etc/"), file("etc/hosts", "127.0.0.1 localhost\n"), hardlink("etc/hosts.bak", "etc/hosts"),
				dir("usr/"), dir("usr/bin/"), symlink("bin", "usr/bin"), setuid, owned, sgid,
				file("./etc/motd", "hi"), file("/abs/file", "neutralised"))
			src, ls := newSource(blob)
			c, _ := openCache(t, Options{})
			root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
			if err != nil {
				t.Fatal(err)
			}
			read := func(rel string) string {
				b, err := os.ReadFile(filepath.Join(root, rel))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			if read("etc/hosts") != "127.0.0.1 localhost\n" || read("etc/motd") != "hi" || read("abs/file") != "neutralised" {
				t.Fatal("file contents differ")
			}
			if target, err := os.Readlink(filepath.Join(root, "bin")); err != nil || target != "usr/bin" {
				t.Fatalf("bin -> %q, %v", target, err)
			}
			var a, b unix.Stat_t
			unix.Lstat(filepath.Join(root, "etc/hosts"), &a)
			unix.Lstat(filepath.Join(root, "etc/hosts.bak"), &b)
			if a.Ino != b.Ino {
				t.Fatal("the hard link is a copy")
			}
			var st unix.Stat_t
			unix.Lstat(filepath.Join(root, "usr/bin/su"), &st)
			if st.Mode&0o7777 != 0o755 {
				t.Fatalf("setuid file mode %o, want 0755", st.Mode&0o7777)
			}
			unix.Lstat(filepath.Join(root, "home/app/data"), &st)
			if st.Uid != 1000 || st.Gid != 1001 {
				t.Fatalf("owner %d:%d, want 1000:1001", st.Uid, st.Gid)
			}
			unix.Lstat(filepath.Join(root, "srv/shared"), &st)
			if st.Mode&0o7777 != 0o2775 {
				t.Fatalf("setgid dir mode %o", st.Mode&0o7777)
			}
			unix.Lstat(filepath.Join(root, "etc/hosts"), &st)
			if time.Unix(st.Mtim.Unix()).UTC() != epoch {
				t.Fatalf("mtime %v", time.Unix(st.Mtim.Unix()))
			}
			if again, err := c.Fetch(context.Background(), src, ls[0], Shift{}); err != nil || again != root || src.openCount(ls[0].Digest) != 1 {
				t.Fatalf("second fetch: %q %v, %d downloads", again, err, src.openCount(ls[0].Digest))
			}
		})
	}
}

// victim is a file outside the cache that malicious layers aim at.
func victim(t *testing.T) (dir, path string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "outside")
	os.Mkdir(dir, 0o755)
	path = filepath.Join(dir, "victim")
	if err := os.WriteFile(path, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestFetch_refusesLayersThatReachOutside(t *testing.T) {
	requireRoot(t)
	outside, victimPath := victim(t)
	cases := map[string][]ent{
		"dot-dot entry":                {file("../../../../../../"+strings.TrimPrefix(victimPath, "/"), "pwned")},
		"dot-dot inside a path":        {dir("a/"), file("a/../../escape", "pwned")},
		"write through an abs symlink": {symlink("link", outside), file("link/victim", "pwned")},
		"write through a rel symlink":  {symlink("link", "../../../../../../../.."+outside), file("link/victim", "pwned")},
		"symlinked dir then mkdir":     {symlink("d", outside), dir("d/sub/")},
		"hard link to a host file":     {hardlink("passwd", "/etc/passwd")},
		"hard link climbing out":       {hardlink("passwd", "../../../../../../etc/passwd")},
		"hard link via a symlink":      {symlink("s", "/etc"), hardlink("p", "s/passwd")},
		"whiteout through a symlink":   {symlink("s", outside), file("s/.wh.victim", "")},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			src, ls := newSource(tarball(t, "gzip", ents...))
			c, dir := openCache(t, Options{})
			_, err := c.Fetch(context.Background(), src, ls[0], Shift{})
			if !errors.Is(err, ErrUnsafeLayer) {
				t.Fatalf("err %v, want ErrUnsafeLayer", err)
			}
			assertEmptyCache(t, c, dir)
			if b, _ := os.ReadFile(victimPath); string(b) != "original" {
				t.Fatalf("victim now %q", b)
			}
			if n := names(t, outside); len(n) != 1 {
				t.Fatalf("outside dir holds %v", n)
			}
			if n := names(t, filepath.Dir(dir)); len(n) != 1 {
				t.Fatalf("next to the cache: %v", n)
			}
		})
	}
}

func TestFetch_neutralisesReplacementsDevicesAndSetuid(t *testing.T) {
	requireRoot(t)
	_, victimPath := victim(t)
	fifo := ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o644}
	char := ent{name: "dev/mem", typ: tar.TypeChar, mode: 0o666}
	block := ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o666}
	src, ls := newSource(tarball(t, "gzip",
		symlink("a", victimPath), file("a", "replaced, not written through"),
		fifo, char, block, file("dev/ok", "x")))
	c, _ := openCache(t, Options{})
	root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victimPath); string(b) != "original" {
		t.Fatalf("victim now %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(root, "a")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("a: %v %v", fi, err)
	}
	for _, gone := range []string{"run/fifo", "dev/mem", "dev/sda"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Fatalf("%s was created (%v)", gone, err)
		}
	}
}

func TestFetch_convertsWhiteoutsToOverlayForm(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip",
		file(".wh.removed", ""), dir("opaque/"), file("opaque/.wh..wh..opq", ""), file("opaque/kept", "k"),
		file("implicit/.wh.gone", ""), file(".wh..wh.plnk", ""), file("both", "b"), file(".wh.both", "")))
	c, _ := openCache(t, Options{})
	root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"removed", "implicit/gone"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Fatalf("%s: mode %o rdev %d, want a 0:0 character device", rel, st.Mode, st.Rdev)
		}
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(root, "opaque"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque xattr %q, %v", buf[:n], err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "both")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the layer's own file under a whiteout: %v %v", fi, err)
	}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".wh.") {
			t.Errorf("%s left in the layer", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFetch_aBlobNotMatchingItsDigestLeavesNothing(t *testing.T) {
	requireRoot(t)
	gz := tarball(t, "gzip", file("app", strings.Repeat("a", 4096)))
	plain := tarball(t, "", file("app", strings.Repeat("a", 4096)))
	flip := func(b []byte) []byte {
		out := append([]byte(nil), b...)
		out[len(out)/3] ^= 0xff
		return out
	}
	cases := map[string]struct {
		blob  []byte
		serve func([]byte) []byte
	}{
		"flipped gzip byte":  {gz, flip},
		"flipped tar byte":   {plain, flip},
		"truncated":          {gz, func(b []byte) []byte { return b[:len(b)-10] }},
		"trailing garbage":   {gz, func(b []byte) []byte { return append(append([]byte(nil), b...), "junk"...) }},
		"another layer":      {gz, func([]byte) []byte { return tarball(t, "gzip", file("evil", "x")) }},
		"an empty answer":    {plain, func([]byte) []byte { return nil }},
		"zero-padded answer": {plain, func(b []byte) []byte { return make([]byte, len(b)) }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src, ls := newSource(tc.blob)
			src.serve = func(_ string, b []byte) []byte { return tc.serve(b) }
			c, dir := openCache(t, Options{})
			_, err := c.Fetch(context.Background(), src, ls[0], Shift{})
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("err %v, want ErrDigestMismatch", err)
			}
			assertEmptyCache(t, c, dir)
		})
	}
}

func TestFetch_aLayerOverItsBoundsFailsClearly(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(
		tarball(t, "gzip", file("big", strings.Repeat("x", 3000))),
		tarball(t, "gzip", file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("x", 600))),
		tarball(t, "gzip", file("1", ""), file("2", ""), file("3", ""), file("4", ""), file("5", "")),
		tarball(t, "gzip", file("a/b/c/d/e", "implicit directories count")),
	)
	c, dir := openCache(t, Options{MaxLayerBytes: 1000, MaxLayerEntries: 4})
	for i, want := range []string{"more than 1000 bytes", "more than 1000 bytes", "more than 4 entries", "more than 4 entries"} {
		_, err := c.Fetch(context.Background(), src, ls[i], Shift{})
		if !errors.Is(err, ErrLayerTooLarge) || !strings.Contains(err.Error(), want) {
			t.Fatalf("layer %d: %v", i, err)
		}
	}
	assertEmptyCache(t, c, dir)
}

func TestFetch_concurrentFetchesOfOneLayerDownloadOnce(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip", file("app", "bits")))
	src.gate = make(chan struct{})
	c, _ := openCache(t, Options{})
	const n = 8
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = c.Fetch(context.Background(), src, ls[0], Shift{}) })
	}
	waitFor(t, func() bool { return waiters(c) == n })
	close(src.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("fetch %d: %q %v (first %q)", i, dirs[i], errs[i], dirs[0])
		}
	}
	if got := src.openCount(ls[0].Digest); got != 1 {
		t.Fatalf("%d downloads, want 1", got)
	}
}

func TestFetch_theLastCallerGivingUpCancelsTheDownload(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip", file("app", "bits")))
	src.gate = make(chan struct{}) // never opened: the download hangs until cancelled
	c, dir := openCache(t, Options{})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { _, err := c.Fetch(ctx1, src, ls[0], Shift{}); done <- err }()
	go func() { _, err := c.Fetch(ctx2, src, ls[0], Shift{}); done <- err }()
	waitFor(t, func() bool { return waiters(c) == 2 })
	cancel1()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	c.mu.Lock()
	stillFlying := len(c.flights) == 1
	c.mu.Unlock()
	if !stillFlying {
		t.Fatal("one caller giving up stopped the download for the other")
	}
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("second caller: %v", err)
	}
	waitFor(t, func() bool { return len(names(t, filepath.Join(dir, "tmp"))) == 0 })
}

// waiters counts the callers waiting on the one fetch in flight.
func waiters(c *Cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.flights {
		return f.waiters
	}
	return 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGC_removesUnusedLayersLeastRecentlyUsedFirst(t *testing.T) {
	requireRoot(t)
	layer := func(name string) []byte { return tarball(t, "gzip", file(name, strings.Repeat("z", 1000))) }
	src, ls := newSource(layer("a"), layer("b"), layer("c"), layer("d"))
	a, b, cc, d := ls[0], ls[1], ls[2], ls[3]
	c, dir := openCache(t, Options{MaxBytes: 2500})
	fetch := func(l Layer) {
		t.Helper()
		if _, err := c.Fetch(context.Background(), src, l, Shift{}); err != nil {
			t.Fatal(err)
		}
	}
	present := func(want map[Layer]bool) {
		t.Helper()
		for l, in := range want {
			if _, ok := c.Lookup(l.Digest, Shift{}); ok != in {
				t.Fatalf("layer %s cached: %v, want %v", l.Digest[:15], ok, in)
			}
		}
	}
	releaseA := c.Acquire(Shift{}, a.Digest)
	fetch(a)
	fetch(b)
	fetch(cc) // 3000 > 2500: b goes (a is in use, c was just fetched)
	present(map[Layer]bool{a: true, b: false, cc: true})
	releaseA()
	releaseA()
	fetch(d) // 3000 again: c is now older than a (released after c's fetch)
	present(map[Layer]bool{a: true, cc: false, d: true})
	if size, n := c.Usage(); size != 2000 || n != 2 {
		t.Fatalf("usage %d bytes in %d layers", size, n)
	}
	waitFor(t, func() bool { return len(names(t, filepath.Join(dir, "tmp"))) == 0 })
	if got := names(t, filepath.Join(dir, "unpacked")); len(got) != 2 {
		t.Fatalf("unpacked/ holds %v", got)
	}
}

func TestOpen_keepsUnpackedLayersAndDropsUnfinishedWork(t *testing.T) {
	requireRoot(t)
	src, ls := newSource(tarball(t, "gzip", file("app", "bits")))
	c, dir := openCache(t, Options{})
	root, err := c.Fetch(context.Background(), src, ls[0], Shift{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another layer cache") {
		t.Fatalf("a second Open of one directory: %v", err)
	}
	c.Close()
	os.MkdirAll(filepath.Join(dir, "tmp", "layer-123", "half"), 0o755)
	os.Mkdir(filepath.Join(dir, "unpacked", "not-a-digest"), 0o755)

	again, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, ok := again.Lookup(ls[0].Digest, Shift{}); !ok || got != root {
		t.Fatalf("lookup after restart: %q %v", got, ok)
	}
	if size, n := again.Usage(); size != 4 || n != 1 {
		t.Fatalf("usage %d bytes in %d layers", size, n)
	}
	if got, err := again.Fetch(context.Background(), nil, ls[0], Shift{}); err != nil || got != root {
		t.Fatalf("fetch of a cached layer needs no source: %q %v", got, err)
	}
	if n := names(t, filepath.Join(dir, "tmp")); len(n) != 0 {
		t.Fatalf("tmp/ holds %v", n)
	}
	if n := names(t, filepath.Join(dir, "unpacked")); len(n) != 1 {
		t.Fatalf("unpacked/ holds %v", n)
	}
}

func TestFetch_aShiftedVariantIsCachedBesideTheOriginal(t *testing.T) {
	requireRoot(t)
	owned := file("home/app/data", "mine")
	owned.uid, owned.gid = 1000, 1001
	src, ls := newSource(tarball(t, "gzip", dir("home/"), owned, file(".wh.gone", "")))
	c, _ := openCache(t, Options{})
	shift := Shift{UID: 200000, GID: 300000, Size: 65536}
	plain, err := c.Fetch(context.Background(), src, ls[0], Shift{})
	if err != nil {
		t.Fatal(err)
	}
	shifted, err := c.Fetch(context.Background(), src, ls[0], shift)
	if err != nil {
		t.Fatal(err)
	}
	if plain == shifted {
		t.Fatal("one directory for both variants")
	}
	for rel, want := range map[string][2]uint32{".": {200000, 300000}, "home/app/data": {201000, 301001}, "home": {200000, 300000}, "home/app": {200000, 300000}, "gone": {200000, 300000}} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(shifted, rel), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Fatalf("%s owned by %d:%d, want %d:%d", rel, st.Uid, st.Gid, want[0], want[1])
		}
	}
	var st syscall.Stat_t
	syscall.Lstat(filepath.Join(plain, "home/app/data"), &st)
	if st.Uid != 1000 {
		t.Fatalf("the unshifted variant changed: uid %d", st.Uid)
	}

	outOfRange := file("x", "")
	outOfRange.uid = 70000
	src2, ls2 := newSource(tarball(t, "gzip", outOfRange))
	if _, err := c.Fetch(context.Background(), src2, ls2[0], shift); !errors.Is(err, ErrUnsafeLayer) || !strings.Contains(err.Error(), "outside the container's 65536 ids") {
		t.Fatalf("uid outside the range: %v", err)
	}
}

func TestFetch_refusesBadDescriptors(t *testing.T) {
	c, _ := openCache(t, Options{})
	src, ls := newSource([]byte("x"))
	for _, l := range []Layer{
		{Digest: "md5:abc", Size: 1},
		{Digest: "sha256:" + strings.Repeat("A", 64), Size: 1},
		{Digest: "sha256:../../etc", Size: 1},
		{Digest: ls[0].Digest, Size: 0},
	} {
		if _, err := c.Fetch(context.Background(), src, l, Shift{}); err == nil {
			t.Fatalf("%+v accepted", l)
		}
	}
	if _, err := c.Fetch(context.Background(), src, ls[0], Shift{UID: 5}); err == nil {
		t.Fatal("a shift without a size accepted")
	}
	if _, err := c.Fetch(context.Background(), nil, ls[0], Shift{}); err == nil || !strings.Contains(err.Error(), "not cached") {
		t.Fatalf("no source: %v", err)
	}
	small, _ := openCache(t, Options{MaxLayerBytes: 10})
	if _, err := small.Fetch(context.Background(), src, Layer{Digest: ls[0].Digest, Size: 21}, Shift{}); !errors.Is(err, ErrLayerTooLarge) {
		t.Fatalf("a blob over twice the layer bound: %v", err)
	}
}

func TestOpen_refusesADirectoryOnOverlayfs(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		os.Mkdir(filepath.Join(base, d), 0o755)
	}
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	merged := filepath.Join(base, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		testenv.Missing(t, "cannot mount overlayfs: "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	_, err := Open(filepath.Join(merged, "cache"), Options{})
	if err == nil || !strings.Contains(err.Error(), "is on overlayfs") {
		t.Fatalf("err %v", err)
	}
}

func TestPull_fetchesAnImagesLayersInOrderAndHoldsThem(t *testing.T) {
	requireRoot(t)
	layer := func(name string) []byte { return tarball(t, "gzip", file(name, strings.Repeat("p", 1000))) }
	src, ls := newSource(layer("one"), layer("two"), layer("three"), layer("four"))
	c, _ := openCache(t, Options{MaxBytes: 1000})
	dirs, release, err := c.Pull(context.Background(), src, ls, Shift{})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"one", "two", "three", "four"} {
		if _, err := os.Stat(filepath.Join(dirs[i], name)); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
	}
	if _, n := c.Usage(); n != 4 {
		t.Fatalf("%d layers kept over a 1000-byte cap while in use, want 4", n)
	}
	release()
	if size, n := c.Usage(); n != 1 || size != 1000 {
		t.Fatalf("after release: %d bytes in %d layers, want the cap", size, n)
	}

	bad, badLayers := newSource(layer("ok"))
	badLayers = append(badLayers, Layer{Digest: "sha256:" + strings.Repeat("0", 64), Size: 10})
	if _, _, err := c.Pull(context.Background(), bad, badLayers, Shift{}); !errors.Is(err, errNoBlob) {
		t.Fatalf("a missing blob: %v", err)
	}
	c.mu.Lock()
	held := len(c.refs)
	c.mu.Unlock()
	if held != 0 {
		t.Fatalf("a failed pull holds %d layers", held)
	}
}
