package fake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// Volume creates dir as a plain directory: nothing limits what is written
// to it. Usage reports the size asked for, empty, unless SetVolumeUsage
// says otherwise.
func (b *Backend) Volume(ctx context.Context, dir string, bytes int64) (container.Volume, error) {
	if !filepath.IsAbs(dir) || bytes <= 0 {
		return nil, pando.Errorf(pando.EInvalid, "volume %q of %d bytes: need an absolute dir and a size", dir, bytes)
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", dir, err)
	}
	v := &volume{b: b, dir: dir, usage: container.VolumeUsage{
		SizeBytes: uint64(bytes), FreeBytes: uint64(bytes), FreeInodes: 1 << 20,
	}}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.volumes == nil {
		b.volumes = map[string]*volume{}
	}
	if b.volumes[dir] != nil {
		return nil, pando.Errorf(pando.EConflict, "volume %s already exists", dir)
	}
	b.volumes[dir] = v
	return v, nil
}

// SetVolumeUsage sets what the volume at dir reports.
func (b *Backend) SetVolumeUsage(dir string, u container.VolumeUsage) error {
	b.mu.Lock()
	v := b.volumes[filepath.Clean(dir)]
	b.mu.Unlock()
	if v == nil {
		return pando.Errorf(pando.ENotFound, "volume %s not found", dir)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.usage = u
	return nil
}

// Volumes lists the dirs of the volumes not yet released, sorted.
func (b *Backend) Volumes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.volumes))
	for dir := range b.volumes {
		out = append(out, dir)
	}
	sort.Strings(out)
	return out
}

type volume struct {
	b   *Backend
	dir string

	mu       sync.Mutex
	usage    container.VolumeUsage
	released bool
}

func (v *volume) Dir() string { return v.dir }

func (v *volume) Usage() (container.VolumeUsage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.released {
		return container.VolumeUsage{}, fmt.Errorf("volume %s is released", v.dir)
	}
	return v.usage, nil
}

// Release removes the directory and everything in it.
func (v *volume) Release(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.released {
		return nil
	}
	if err := os.RemoveAll(v.dir); err != nil {
		return fmt.Errorf("release volume %s: %w", v.dir, err)
	}
	v.released = true
	v.b.mu.Lock()
	if v.b.volumes[v.dir] == v {
		delete(v.b.volumes, v.dir)
	}
	v.b.mu.Unlock()
	return nil
}
