package cell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pandoplatform/pando"
)

// Stats reports an instance's resource use. CPU is the share of one core
// used since the previous call (or since the start, on the first).
func (r *Rep) Stats(ctx context.Context, instanceGUID string) (pando.InstanceStats, error) {
	r.mu.Lock()
	i, ok := r.instances[instanceGUID]
	r.mu.Unlock()
	if !ok {
		return pando.InstanceStats{}, pando.Errorf(pando.ENotFound, "instance %s is not on cell %s", instanceGUID, r.cfg.ID)
	}
	out := pando.InstanceStats{
		InstanceGUID: instanceGUID,
		MemoryQuota:  uint64(i.memMB) << 20,
		DiskQuota:    uint64(i.diskMB) << 20,
	}
	ctr := i.container()
	if ctr == nil {
		return out, nil
	}
	st, err := ctr.Stats(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return out, err
		}
		return out, fmt.Errorf("stats of instance %s: %w", instanceGUID, err)
	}
	now := time.Now()
	i.mu.Lock()
	prev, prevAt := i.cpu, i.cpuAt
	if prevAt.IsZero() {
		prev, prevAt = 0, i.startedAt
	}
	i.cpu, i.cpuAt = st.CPUNanos, now
	refreshDisk := now.Sub(i.diskAt) > diskCacheFor
	disk := i.disk
	i.mu.Unlock()
	if wall := now.Sub(prevAt); wall > 0 && st.CPUNanos >= prev {
		out.CPUPercent = float64(st.CPUNanos-prev) / float64(wall.Nanoseconds()) * 100
	}
	if refreshDisk {
		// The droplet lives in the instance dir mounted over the
		// backend's /home/vcap, so it is measured here.
		disk = dirSize(ctx, i.dir, maxDiskWalk)
		i.mu.Lock()
		i.disk, i.diskAt = disk, now
		i.mu.Unlock()
	}
	out.MemoryBytes = st.MemoryBytes
	out.DiskBytes = st.DiskBytes + disk
	return out, nil
}

// Disk measuring bounds.
const (
	diskCacheFor = 10 * time.Second
	maxDiskWalk  = 200_000
)

// dirSize sums the allocated size of the files under dir, visiting at most
// limit entries.
func dirSize(ctx context.Context, dir string, limit int) uint64 {
	var total uint64
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n++; n > limit || ctx.Err() != nil {
			return filepath.SkipAll
		}
		if info, err := d.Info(); err == nil {
			total += uint64(allocated(info))
		}
		return nil
	})
	return total
}
