package runc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Formatted volume images kept ahead. mkfs.ext4 is a process start on
// every container's path (50-130 ms of wall time at a load average of ~20
// here, for ~10 ms of CPU). The backend keeps poolDepth images per size
// formatted ahead as pool-*.img in its volumes dir: sparse (~150 KB each),
// never attached nor mounted, made the way create makes one. Volume
// renames one into place; the pool is refilled once Volume has not been
// called for poolQuiet, so the formatting does not compete with the
// starts it speeds up. The sizes are those of Config.VolumePoolSizes and
// the poolSizes most recently asked.
const (
	poolDepth  = 2
	poolSizes  = 4
	poolQuiet  = time.Second
	poolPrefix = "pool-"
)

type volumePool struct {
	dir string

	mu     sync.Mutex
	sizes  []int64            // image sizes to keep, most recently asked first
	fixed  map[int64]bool     // from the configuration: never dropped
	ready  map[int64][]string // formatted images per image size
	making string             // the image being formatted, "" when none
	last   time.Time          // the last Volume call
	kick   chan struct{}      // wakes the refill
	done   chan struct{}      // closed when the refill has stopped

	// cleaning is set while Cleanup removes the images it does not know
	// of: no new image is started meanwhile (idle is signalled at its end).
	cleaning bool
	idle     *sync.Cond
}

func newVolumePool(dir string, volumeBytes []int64) *volumePool {
	p := &volumePool{dir: dir, fixed: map[int64]bool{}, ready: map[int64][]string{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	p.idle = sync.NewCond(&p.mu)
	for _, n := range volumeBytes {
		if n >= minVolumeBytes && n <= maxVolumeBytes && !p.fixed[imageSize(n)] {
			p.fixed[imageSize(n)] = true
			p.sizes = append(p.sizes, imageSize(n))
		}
	}
	return p
}

// take returns a formatted image of the size, or "", and notes the size
// as one to keep.
func (p *volumePool) take(size int64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = time.Now()
	if k := slices.Index(p.sizes, size); k >= 0 {
		p.sizes = slices.Delete(p.sizes, k, k+1)
	}
	p.sizes = slices.Insert(p.sizes, 0, size)
	p.trimLocked()
	var img string
	if r := p.ready[size]; len(r) > 0 {
		img = r[len(r)-1]
		p.ready[size] = r[:len(r)-1]
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return img
}

// trimLocked drops the sizes asked least recently beyond poolSizes (the
// configured ones stay), and their images.
func (p *volumePool) trimLocked() {
	kept, n := p.sizes[:0], 0
	for _, s := range p.sizes {
		if p.fixed[s] || n < poolSizes {
			kept = append(kept, s)
			if !p.fixed[s] {
				n++
			}
			continue
		}
		for _, img := range p.ready[s] {
			_ = os.Remove(img)
		}
		delete(p.ready, s)
	}
	p.sizes = kept
}

// next says which size to format now (0: none), or how long to wait for
// the starts to be quiet first.
func (p *volumePool) next(now time.Time) (size int64, wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.last.Add(poolQuiet).Sub(now); d > 0 {
		return 0, d
	}
	for _, s := range p.sizes {
		if len(p.ready[s]) < poolDepth {
			return s, 0
		}
	}
	return 0, 0
}

// beginCleanup reports the image files the pool holds or is making,
// which Cleanup must leave, and starts no other image until endCleanup:
// one created after this report would be removed as unknown.
func (p *volumePool) beginCleanup(skip map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleaning = true
	for _, r := range p.ready {
		for _, img := range r {
			skip[img] = true
		}
	}
	if p.making != "" {
		skip[p.making] = true
	}
}

// startMaking notes img as the image being made, once no Cleanup is
// looking at the pool's files.
func (p *volumePool) startMaking(img string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.cleaning {
		p.idle.Wait()
	}
	p.making = img
}

func (p *volumePool) endCleanup() {
	p.mu.Lock()
	p.cleaning = false
	p.mu.Unlock()
	p.idle.Broadcast()
}

// refill keeps the pool full until b closes, then removes its images.
func (b *Backend) refillVolumes() {
	p := b.pool
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-b.closing:
			cancel()
		case <-p.done:
		}
	}()
	for {
		size, wait := p.next(time.Now())
		if size == 0 {
			var timer <-chan time.Time
			if wait > 0 {
				timer = time.After(wait)
			}
			select {
			case <-b.closing:
				p.removeAll()
				return
			case <-p.kick:
			case <-timer:
			}
			continue
		}
		img, err := b.formatPooled(ctx, size)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("format a volume image ahead; volumes are formatted as they are made", "error", err)
			}
			select {
			case <-b.closing:
				p.removeAll()
				return
			case <-time.After(10 * time.Second):
			}
			continue
		}
		p.mu.Lock()
		if slices.Contains(p.sizes, size) {
			p.ready[size] = append(p.ready[size], img)
			img = ""
		}
		p.mu.Unlock()
		if img != "" {
			_ = os.Remove(img)
		}
	}
}

// formatPooled makes one formatted image of the size in the pool's dir.
func (b *Backend) formatPooled(ctx context.Context, size int64) (string, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	img := filepath.Join(b.pool.dir, poolPrefix+hex.EncodeToString(rnd[:])+".img")
	b.pool.startMaking(img)
	defer func() {
		b.pool.mu.Lock()
		b.pool.making = ""
		b.pool.mu.Unlock()
	}()
	if err := b.formatImage(ctx, img, size); err != nil {
		return "", err
	}
	return img, nil
}

// formatImage creates img (which must not exist) as a sparse file of size
// bytes formatted ext4; on error it is removed.
func (b *Backend) formatImage(ctx context.Context, img string, size int64) (err error) {
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("image %s is left from an earlier run; run Cleanup", img)
		}
		return fmt.Errorf("create image: %w", err)
	}
	defer f.Close()
	defer func() {
		if err != nil {
			os.Remove(img)
		}
	}()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("size image: %w", err)
	}
	cmd := exec.CommandContext(ctx, b.mkfs, append(append([]string(nil), mkfsArgs...), img)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// takeFormatted moves a formatted image of the size to img, which must
// not exist, and reports whether it did.
func (b *Backend) takeFormatted(size int64, img string) bool {
	if b.pool == nil {
		return false
	}
	src := b.pool.take(size)
	if src == "" {
		return false
	}
	if err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, img, unix.RENAME_NOREPLACE); err != nil {
		_ = os.Remove(src)
		return false
	}
	return true
}

func (p *volumePool) removeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s, r := range p.ready {
		for _, img := range r {
			_ = os.Remove(img)
		}
		delete(p.ready, s)
	}
}
