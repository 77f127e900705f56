package cell

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A staging container can leave a sparse file that claims any size while
// taking no room on its volume: the droplet and build cache uploads stop
// at the staging's disk quota.
func TestStagingUploads_stopAtTheDiskQuota(t *testing.T) {
	blobs := newMemBlobs()
	r := &Rep{cfg: Config{Blobs: blobs}}
	ctx := context.Background()
	dir := t.TempDir()
	sparse := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		return p
	}

	droplet := sparse("droplet.tgz", 1<<40)
	_, _, _, err := r.putFile(ctx, "droplets/big", droplet, 16<<20)
	if err == nil || !strings.Contains(err.Error(), "droplet.tgz is 1024.0G, larger than the staging disk quota of 16 MB") {
		t.Errorf("1 TiB sparse droplet under a 16 MB quota: %v", err)
	}
	if _, ok := blobs.get("droplets/big"); ok {
		t.Error("the droplet was stored")
	}
	if _, _, size, err := r.putFile(ctx, "droplets/ok", sparse("ok.tgz", 1<<20), 16<<20); err != nil || size != 1<<20 {
		t.Errorf("a 1 MB droplet under a 16 MB quota: size %d, %v", size, err)
	}

	// 64 MiB of zeros compress to about 64 KiB.
	cache := filepath.Join(dir, "cache")
	if err := os.Mkdir(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(sparse("zeros", 64<<20), filepath.Join(cache, "zeros")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.saveCache(ctx, "buildcache/big", cache, 16<<10); err == nil || !strings.Contains(err.Error(), "larger than the staging disk quota") {
		t.Errorf("build cache past the quota: %v", err)
	}
	if _, ok := blobs.get("buildcache/big"); ok {
		t.Error("the build cache was stored")
	}
	if n, err := r.saveCache(ctx, "buildcache/ok", cache, 16<<20); err != nil || n == 0 {
		t.Errorf("build cache within the quota: %d bytes, %v", n, err)
	}
}
