package cell

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando/internal/container"
)

// Every container's writable files (its /home/vcap, /tmp and rootfs
// layer; for staging, the app, cache, deps and output dirs) live on a
// volume of its disk quota, which the kernel enforces: a write past it
// fails with ENOSPC inside the container. Nothing is measured or polled.

// newVolume makes dir a volume of diskMB.
func (r *Rep) newVolume(ctx context.Context, dir string, diskMB int) (container.Volume, error) {
	v, err := r.cfg.Backend.Volume(ctx, dir, int64(diskMB)<<20)
	if err != nil {
		return nil, fmt.Errorf("disk quota of %d MB: %w", diskMB, err)
	}
	return v, nil
}

// releaseVolume frees a volume once its container is destroyed.
func (r *Rep) releaseVolume(v container.Volume) {
	if v == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
	defer cancel()
	if err := v.Release(ctx); err != nil {
		r.log.Error("release disk volume", "dir", v.Dir(), "error", err)
	}
}

// volumeFull reports whether v is at its quota (false when unknown).
func volumeFull(v container.Volume) bool {
	if v == nil {
		return false
	}
	u, err := v.Usage()
	return err == nil && u.Full()
}

// fillWatch samples a volume's fill while a container runs: a writer that
// ran into the quota and then deleted its files (or exited, closing a
// deleted file) leaves a volume that no longer looks full.
type fillWatch struct {
	full atomic.Bool
	stop chan struct{}
	done chan struct{}
}

// fillSample is how often fillWatch looks; statfs costs microseconds.
const fillSample = 250 * time.Millisecond

func watchFill(v container.Volume) *fillWatch {
	w := &fillWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(fillSample)
		defer t.Stop()
		for {
			if volumeFull(v) {
				w.full.Store(true)
				return
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// End stops the watch and reports whether the volume was full at any look,
// including now.
func (w *fillWatch) End(v container.Volume) bool {
	close(w.stop)
	<-w.done
	return w.full.Load() || volumeFull(v)
}
