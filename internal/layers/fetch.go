package layers

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Fetch returns the directory of layer l unpacked with shift, downloading
// it from src unless it is cached (src may be nil when it is, e.g. after a
// restart without registry access). Concurrent fetches of one layer share
// one download; a caller that gives up (ctx) leaves it running for the
// others, and the last one to give up cancels it.
func (c *Cache) Fetch(ctx context.Context, src Source, l Layer, shift Shift) (string, error) {
	k, newHash, err := key(l.Digest, shift)
	if err != nil {
		return "", err
	}
	if l.Size <= 0 {
		return "", fmt.Errorf("layer %s: invalid size %d", l.Digest, l.Size)
	}
	if l.Size > 2*c.opts.MaxLayerBytes {
		// Compressed is smaller than unpacked; twice the bound leaves
		// room for the tar headers of uncompressed layers.
		return "", fmt.Errorf("layer %s: %w: a %d-byte blob for a %d-byte bound", l.Digest, ErrLayerTooLarge, l.Size, c.opts.MaxLayerBytes)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", errors.New("layer cache is closed")
	}
	if e, ok := c.entries[k]; ok {
		c.touch(e)
		c.mu.Unlock()
		return filepath.Join(c.unpacked, k), nil
	}
	f, ok := c.flights[k]
	if !ok && src == nil {
		c.mu.Unlock()
		return "", fmt.Errorf("layer %s is not cached and there is no source to fetch it from", l.Digest)
	}
	if !ok {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[k] = f
		c.wg.Add(1)
		go c.fly(wctx, f, src, l, shift, k, newHash)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.dir, f.err
	case <-ctx.Done():
		c.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			if c.flights[k] == f {
				delete(c.flights, k)
			}
		}
		c.mu.Unlock()
		return "", ctx.Err()
	}
}

func (c *Cache) fly(ctx context.Context, f *flight, src Source, l Layer, shift Shift, k string, newHash func() hash.Hash) {
	defer c.wg.Done()
	defer f.cancel()
	var size int64
	var err error
	select {
	case c.slots <- struct{}{}:
		size, err = c.fetch(ctx, src, l, shift, k, newHash)
		<-c.slots
	case <-ctx.Done():
		err = fmt.Errorf("layer %s: %w", l.Digest, ctx.Err())
	}
	var doomed []string
	c.mu.Lock()
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	if len(c.flights) == 0 {
		c.syncCond.Broadcast() // the syncs waiting for the fetches can go
	}
	if err == nil {
		if _, dup := c.entries[k]; !dup {
			c.entries[k] = &entry{size: size}
			c.total += size
			if !c.opts.NoSync {
				c.queueSyncLocked(k)
			}
		}
		c.touch(c.entries[k])
		f.dir = filepath.Join(c.unpacked, k)
		doomed = c.collectLocked(k)
	} else {
		f.err = err
	}
	c.mu.Unlock()
	close(f.done)
	c.remove(doomed)
}

// fetch downloads, verifies and unpacks one layer into a temporary
// directory and renames it into unpacked/k. It returns the unpacked size.
func (c *Cache) fetch(ctx context.Context, src Source, l Layer, shift Shift, k string, newHash func() hash.Hash) (int64, error) {
	tmp, err := os.MkdirTemp(c.tmp, "layer-")
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	rootUID, rootGID, _ := shift.apply(0, 0)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	if err := os.Lchown(tmp, rootUID, rootGID); err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	start := time.Now()
	rc, err := src.OpenBlob(ctx, l.Digest)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	opened := time.Since(start)

	h := newHash()
	counted := &countingReader{r: io.LimitReader(rc, l.Size+1)}
	blob := io.TeeReader(counted, h)
	u := &unpacker{root: tmp, shift: shift, maxBytes: c.opts.MaxLayerBytes, maxEntries: c.opts.MaxLayerEntries, log: c.log.With("layer", l.Digest)}
	uerr := u.unpack(ctx, blob)
	if uerr != nil && (errors.Is(uerr, ErrUnsafeLayer) || errors.Is(uerr, ErrLayerTooLarge) || ctx.Err() != nil) {
		return 0, fmt.Errorf("layer %s: %w", l.Digest, uerr)
	}
	// The tar ends before the blob does (padding, compression trailers):
	// hash the rest too. A decode error is reported as a digest mismatch
	// when that is what caused it.
	if _, err := io.Copy(io.Discard, blob); err != nil {
		if uerr != nil {
			return 0, fmt.Errorf("layer %s: %w", l.Digest, uerr)
		}
		return 0, fmt.Errorf("layer %s: read blob: %w", l.Digest, err)
	}
	algo, _, _ := strings.Cut(l.Digest, ":")
	got := algo + ":" + hex.EncodeToString(h.Sum(nil))
	if counted.n != l.Size || got != l.Digest {
		return 0, fmt.Errorf("layer %s: %w (got %d bytes hashing to %s, want %d bytes)", l.Digest, ErrDigestMismatch, counted.n, got, l.Size)
	}
	if uerr != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Digest, uerr)
	}
	// Usable now; durable once the sync worker has marked it.
	if err := os.Rename(tmp, filepath.Join(c.unpacked, k)); err != nil {
		if _, statErr := os.Lstat(filepath.Join(c.unpacked, k)); statErr == nil {
			return u.written, nil // another fetch of the same layer won; ours goes
		}
		return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	committed = true
	if c.opts.NoSync {
		if err := c.writeMarker(k, false); err != nil {
			return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	c.log.Info("layer cache: unpacked layer", "layer", k, "bytes", u.written, "entries", u.entries, "shift", shiftString(shift),
		"open_ms", msOf(opened), "ms", msOf(time.Since(start)))
	return u.written, nil
}

func shiftString(s Shift) string {
	if s.IsZero() {
		return "none"
	}
	return strconv.FormatUint(uint64(s.UID), 10) + ":" + strconv.FormatUint(uint64(s.GID), 10) + "+" + strconv.FormatUint(uint64(s.Size), 10)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// msOf is d in milliseconds, for log lines.
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
