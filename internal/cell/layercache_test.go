package cell

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando"
)

// The disk the image layer cache holds is used disk: State reports it
// (rounded up to a MB) in UsedDiskMB and as LayerCacheMB, and work that
// would need it is refused, as the cache grows and shrinks.
func TestCapacity_layerCacheCountsAgainstTheDisk(t *testing.T) {
	var cache atomic.Int64
	r := &Rep{
		cfg: Config{ID: "c", TotalMemoryMB: 8192, TotalDiskMB: 8192, MaxContainers: 10,
			LayerCacheBytes: cache.Load},
		instances: map[string]*instance{}, tasks: map[string]*task{},
	}
	reserve := func(diskMB int) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.reserveLocked(64, diskMB)
	}
	if err := reserve(8192); err != nil {
		t.Fatalf("an empty cache takes nothing: %v", err)
	}
	cache.Store(3<<30 + 1)
	s, err := r.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.LayerCacheMB != 3073 || s.UsedDiskMB != 3073 || s.TotalDiskMB != 8192 {
		t.Errorf("state: layer cache %d MB, used %d of %d MB; want 3073, 3073 of 8192", s.LayerCacheMB, s.UsedDiskMB, s.TotalDiskMB)
	}
	if err := reserve(8192 - 3073 + 1); err == nil || pando.ErrorKindOf(err) != pando.EInsufficient || !strings.Contains(err.Error(), "disk") {
		t.Errorf("work that needs the cache's disk: %v, want insufficient disk", err)
	}
	if err := reserve(8192 - 3073); err != nil {
		t.Errorf("work that fits beside the cache: %v", err)
	}
	cache.Store(0) // collected
	if err := reserve(8192); err != nil {
		t.Errorf("after the cache emptied: %v", err)
	}
}
