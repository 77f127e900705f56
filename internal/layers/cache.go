// Package layers is a cell's content-addressed cache of image layers: each
// layer blob is downloaded once by digest, verified while it streams,
// unpacked safely into an overlayfs-ready directory (whiteouts converted)
// shared by every container of the cell, and removed least recently used
// first when the cache passes its size cap and no container holds it.
package layers

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Errors a Fetch can fail with (wrapped, with details); test with errors.Is.
var (
	// ErrDigestMismatch: the blob's bytes do not hash to its digest (or
	// are not its size). Nothing of it is kept.
	ErrDigestMismatch = errors.New("layer blob does not match its digest")
	// ErrLayerTooLarge: the layer unpacks to more bytes or entries than
	// allowed.
	ErrLayerTooLarge = errors.New("layer too large")
	// ErrUnsafeLayer: an entry would escape the layer directory, a hard
	// link reaches outside the layer, or an owner is outside the shift.
	ErrUnsafeLayer = errors.New("unsafe layer")
)

// Source streams blobs by digest; internal/registry's Blobs is one.
type Source interface {
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
}

// Layer is a layer blob as an image manifest describes it.
type Layer struct {
	Digest    string
	Size      int64
	MediaType string
}

// Options bound the cache. Zero fields take the defaults.
type Options struct {
	// MaxBytes caps the unpacked bytes kept (default 10 GiB). Layers in
	// use are never removed, so the cache can exceed it while they are.
	MaxBytes int64
	// MaxLayerBytes bounds the file bytes one layer may unpack to (the
	// container disk quota is a good value; default 4 GiB).
	MaxLayerBytes int64
	// MaxLayerEntries bounds the entries of one layer (default 1,000,000).
	MaxLayerEntries int
	// NoSync marks layers complete without syncing them to disk. A layer
	// is then safe across process restarts but not across a host crash.
	NoSync bool
	Logger *slog.Logger

	// bootID, when set, replaces the kernel's boot id (tests).
	bootID string
}

// Cache is the layer cache of one cell. Layout under its directory:
//
//	unpacked/sha256-<hex>[-u<uid>-g<gid>-n<size>]/   one layer's files, ready
//	                                                 to be an overlayfs lowerdir
//	complete/<same name>                             empty marker: the layer is on disk
//	tmp/                                             work in progress, emptied on Open
//	boot                                             the boot id of the last Open
//	lock                                             flock(2)ed by the open Cache
//
// A directory appears in unpacked/ only by an atomic rename once its blob
// was verified and fully unpacked, so the directory listing is the index;
// its marker follows once a worker has synced it to disk (see durable.go).
type Cache struct {
	dir, unpacked, complete, tmp string
	opts                         Options
	log                          *slog.Logger
	bootID                       string

	mu      sync.Mutex
	entries map[string]*entry // by directory name
	refs    map[string]int
	flights map[string]*flight
	slots   chan struct{} // one per download running: maxFetches
	total   int64
	clock   uint64
	closed  bool
	wg      sync.WaitGroup
	lock    *os.File // flock(2)ed while the cache is open

	// The sync worker's queue of layers to make durable.
	syncQ    []queued
	syncCond *sync.Cond
	syncStop bool
	syncDone chan struct{}
}

type entry struct {
	size     int64
	lastUsed uint64
	syncing  bool // queued for the sync worker: not collected meanwhile
}

type flight struct {
	done    chan struct{}
	dir     string
	err     error
	waiters int
	cancel  context.CancelFunc
}

// isDirName reports whether name is a cache directory's:
// sha256-<64 hex> or sha512-<128 hex>, then optionally -u<n>-g<n>-n<n>
// (lowercase hex, decimal n). Checked by hand: a regexp with these repeat
// counts costs every start of the pando binary (CLI commands included) a
// millisecond or more to compile.
func isDirName(name string) bool {
	hexLen := 0
	switch {
	case strings.HasPrefix(name, "sha256-"):
		hexLen = 64
	case strings.HasPrefix(name, "sha512-"):
		hexLen = 128
	default:
		return false
	}
	rest := name[len("sha256-"):]
	if len(rest) < hexLen {
		return false
	}
	for i := range hexLen {
		if c := rest[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	rest = rest[hexLen:]
	for _, tag := range []string{"-u", "-g", "-n"} {
		if rest == "" && tag == "-u" {
			return true
		}
		var ok bool
		if rest, ok = strings.CutPrefix(rest, tag); !ok {
			return false
		}
		digits := 0
		for digits < len(rest) && '0' <= rest[digits] && rest[digits] <= '9' {
			digits++
		}
		if digits == 0 {
			return false
		}
		rest = rest[digits:]
	}
	return rest == ""
}

// Open opens (creating) the cache in dir, removes unfinished work of an
// earlier process, and indexes the layers already unpacked.
func Open(dir string, opts Options) (*Cache, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 10 << 30
	}
	if opts.MaxLayerBytes <= 0 {
		opts.MaxLayerBytes = 4 << 30
	}
	if opts.MaxLayerEntries <= 0 {
		opts.MaxLayerEntries = 1_000_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		dir: dir, unpacked: filepath.Join(dir, "unpacked"), complete: filepath.Join(dir, "complete"), tmp: filepath.Join(dir, "tmp"),
		opts: opts, log: opts.Logger, bootID: opts.bootID,
		entries: map[string]*entry{}, refs: map[string]int{}, flights: map[string]*flight{},
		slots:    make(chan struct{}, maxFetches),
		syncDone: make(chan struct{}),
	}
	c.syncCond = sync.NewCond(&c.mu)
	if c.bootID == "" {
		id, err := currentBootID()
		if err != nil {
			return nil, fmt.Errorf("open layer cache: %w", err)
		}
		c.bootID = id
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open layer cache: %w", err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return nil, fmt.Errorf("open layer cache: %w", err)
	}
	if fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		// Whiteout devices and opaque xattrs written into an overlay mount
		// are taken by that overlay as its own: layers would lose files.
		return nil, fmt.Errorf("open layer cache: %s is on overlayfs; put the layer cache on a plain filesystem (ext4, xfs, btrfs, tmpfs)", dir)
	}
	// One Cache per directory: another one would delete this one's work
	// in progress and miscount its sizes.
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open layer cache: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open layer cache: %s is in use by another layer cache (one per cell, one cell per directory): %w", dir, err)
	}
	c.lock = lock
	if err := c.prepare(); err != nil {
		lock.Close()
		return nil, err
	}
	go c.syncLoop()
	return c, nil
}

// prepare empties tmp/, indexes unpacked/ and records this boot.
func (c *Cache) prepare() error {
	if err := os.RemoveAll(c.tmp); err != nil {
		return fmt.Errorf("open layer cache: %w", err)
	}
	for _, d := range []string{c.dir, c.unpacked, c.complete, c.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("open layer cache: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("open layer cache: %w", err)
		}
	}
	boot, err := c.recordedBoot()
	if err != nil {
		return err
	}
	if err := c.index(boot); err != nil {
		return err
	}
	return c.recordBoot()
}

// index rebuilds the in-memory index from unpacked/, oldest first by
// modification time (the unpack time), so LRU order roughly survives.
// boot is the boot id the cache was last opened in; a layer without its
// marker is kept (and synced again) only when that is this boot.
func (c *Cache) index(boot string) error {
	des, err := os.ReadDir(c.unpacked)
	if err != nil {
		return fmt.Errorf("open layer cache: %w", err)
	}
	var resync []string
	type found struct {
		name  string
		mtime int64
	}
	var all []found
	for _, de := range des {
		full := filepath.Join(c.unpacked, de.Name())
		if !de.IsDir() || !isDirName(de.Name()) {
			c.log.Warn("layer cache: removing a stray entry", "path", full)
			if err := os.RemoveAll(full); err != nil {
				return fmt.Errorf("open layer cache: %w", err)
			}
			continue
		}
		if !c.hasMarker(de.Name()) {
			switch boot {
			case "":
				// Made before markers: synced before its rename.
				if err := c.writeMarker(de.Name(), false); err != nil {
					return fmt.Errorf("open layer cache: %w", err)
				}
			case c.bootID:
				resync = append(resync, de.Name())
			default:
				c.log.Warn("layer cache: removing a layer not known to be on disk (the host restarted)", "layer", de.Name())
				if err := os.RemoveAll(full); err != nil {
					return fmt.Errorf("open layer cache: %w", err)
				}
				continue
			}
		}
		fi, err := os.Lstat(full)
		if err != nil {
			return fmt.Errorf("open layer cache: %w", err)
		}
		all = append(all, found{de.Name(), fi.ModTime().UnixNano()})
	}
	marks, err := os.ReadDir(c.complete)
	if err != nil {
		return fmt.Errorf("open layer cache: %w", err)
	}
	for _, m := range marks {
		if fi, err := os.Lstat(filepath.Join(c.unpacked, m.Name())); err != nil || !fi.IsDir() {
			if err := os.RemoveAll(c.markerPath(m.Name())); err != nil {
				return fmt.Errorf("open layer cache: %w", err)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime < all[j].mtime })
	for _, f := range all {
		size, err := diskUsage(filepath.Join(c.unpacked, f.name))
		if err != nil {
			return fmt.Errorf("open layer cache: %w", err)
		}
		c.clock++
		c.entries[f.name] = &entry{size: size, lastUsed: c.clock}
		c.total += size
	}
	for _, k := range resync {
		c.queueSyncLocked(k)
	}
	return nil
}

// diskUsage sums the sizes of the regular files under dir, each inode once
// (the measure MaxLayerBytes bounds).
func diskUsage(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Size
		}
		return nil
	})
	return total, err
}

// key validates a digest and names its directory for shift.
func key(digest string, shift Shift) (string, func() hash.Hash, error) {
	if err := shift.validate(); err != nil {
		return "", nil, err
	}
	algo, hexPart, ok := strings.Cut(digest, ":")
	var newHash func() hash.Hash
	switch {
	case ok && algo == "sha256" && len(hexPart) == 64:
		newHash = sha256.New
	case ok && algo == "sha512" && len(hexPart) == 128:
		newHash = sha512.New
	default:
		return "", nil, fmt.Errorf("invalid layer digest %.100q: want sha256:<64 hex>", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil || hexPart != strings.ToLower(hexPart) {
		return "", nil, fmt.Errorf("invalid layer digest %.100q: want lowercase hex", digest)
	}
	return algo + "-" + hexPart + shift.suffix(), newHash, nil
}

// Lookup returns the directory of a cached layer, without fetching.
func (c *Cache) Lookup(digest string, shift Shift) (string, bool) {
	k, _, err := key(digest, shift)
	if err != nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if ok {
		c.touch(e)
	}
	return filepath.Join(c.unpacked, k), ok
}

// Holds reports whether every one of the layers is cached (unshifted),
// without marking them used as Lookup does.
func (c *Cache) Holds(digests ...string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range digests {
		k, _, err := key(d, Shift{})
		if err != nil {
			return false
		}
		if _, ok := c.entries[k]; !ok {
			return false
		}
	}
	return true
}

// Usage reports the bytes and number of layers cached.
func (c *Cache) Usage() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, len(c.entries)
}

func (c *Cache) touch(e *entry) {
	c.clock++
	e.lastUsed = c.clock
}

// Acquire marks layers as in use by a container (shifted by shift) until
// release is called; garbage collection never removes them meanwhile.
// Acquire before Fetch so a layer cannot go between its fetch and its use.
// release is idempotent.
func (c *Cache) Acquire(shift Shift, digests ...string) (release func()) {
	var keys []string
	c.mu.Lock()
	for _, d := range digests {
		k, _, err := key(d, shift)
		if err != nil {
			continue // Fetch will say what is wrong with it
		}
		keys = append(keys, k)
		c.refs[k]++
		if e, ok := c.entries[k]; ok {
			c.touch(e)
		}
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			for _, k := range keys {
				if c.refs[k]--; c.refs[k] <= 0 {
					delete(c.refs, k)
				}
				if e, ok := c.entries[k]; ok {
					c.touch(e)
				}
			}
			doomed := c.collectLocked("")
			c.mu.Unlock()
			c.remove(doomed)
		})
	}
}

// collectLocked picks unreferenced layers, least recently used first, to
// bring the cache under its cap, and moves them out of unpacked/ (so they
// vanish atomically); the caller removes the returned paths unlocked.
// spare is a layer just fetched, kept this once.
func (c *Cache) collectLocked(spare string) []string {
	if c.total <= c.opts.MaxBytes || c.closed {
		return nil
	}
	var victims []string
	for k, e := range c.entries {
		if c.refs[k] == 0 && k != spare && !e.syncing {
			victims = append(victims, k)
		}
	}
	sort.Slice(victims, func(i, j int) bool { return c.entries[victims[i]].lastUsed < c.entries[victims[j]].lastUsed })
	var doomed []string
	for _, k := range victims {
		if c.total <= c.opts.MaxBytes {
			break
		}
		// The marker goes first: a layer must never look complete while
		// it is being removed.
		err := os.Remove(c.markerPath(k))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		var trash string
		if err == nil {
			trash, err = os.MkdirTemp(c.tmp, "gc-")
		}
		if err == nil {
			err = os.Rename(filepath.Join(c.unpacked, k), filepath.Join(trash, "layer"))
		}
		if err != nil {
			c.log.Error("layer cache: cannot remove a layer", "layer", k, "error", err)
			continue
		}
		c.total -= c.entries[k].size
		delete(c.entries, k)
		doomed = append(doomed, trash)
		c.log.Info("layer cache: removed unused layer", "layer", k)
	}
	return doomed
}

func (c *Cache) remove(paths []string) {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			c.log.Error("layer cache: cannot remove a layer", "path", p, "error", err)
		}
	}
}

// Close cancels fetches in flight and waits for them, then for the layers
// unpacked to be synced to disk. Close is idempotent; it releases the
// directory for another Open.
func (c *Cache) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for _, f := range c.flights {
		f.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	c.syncStop = true
	c.syncCond.Broadcast()
	c.mu.Unlock()
	<-c.syncDone
	c.lock.Close()
}
