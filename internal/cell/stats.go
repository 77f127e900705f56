package cell

import (
	"context"
	"errors"
	"fmt"
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
	i.mu.Unlock()
	if wall := now.Sub(prevAt); wall > 0 && st.CPUNanos >= prev {
		out.CPUPercent = float64(st.CPUNanos-prev) / float64(wall.Nanoseconds()) * 100
	}
	out.MemoryBytes = st.MemoryBytes
	// The used room of the instance's volume: the droplet, what the app
	// wrote anywhere (deleted files still open included).
	out.DiskBytes = st.DiskBytes
	if i.stdout != nil {
		out.LogRate = i.stdout.lim.rate()
	}
	return out, nil
}
